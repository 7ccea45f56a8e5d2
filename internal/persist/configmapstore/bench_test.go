/*
Copyright 2026 The strategy-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package configmapstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// The benchmarks report writes/s (and failed writes where writers contend);
// hack/benchratio prints each beside its baseline from the same run (make bench).

// Every write stores a different value: the API server skips an update that changes
// nothing, which would flatter a baseline writing the same bytes again.

type row struct {
	ID   string `json:"id"`
	N    int    `json:"n"`
	Note string `json:"note"`
}

var note = strings.Repeat("x", 1000)

// benchRow is about the size of an open signal row.
func benchRow(n int) row { return row{ID: "1af31ee8-c897-4000-a4dc-55369e459000", N: n, Note: note} }

// benchPayload is benchRow(n) as the raw baselines store it.
func benchPayload(n int) string {
	data, _ := json.Marshal(benchRow(n))
	return string(data)
}

func benchNamespace(b *testing.B) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	return ns.Name
}

func benchStore(b *testing.B, c client.Client, name types.NamespacedName) *persist.Store[row] {
	s := persist.NewStore[row]("bench", configmapstore.New(c, name, configmapstore.Options{Options: kubestore.Options{Create: true}}))
	if _, err := s.Init(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	return s
}

func rate(b *testing.B, writes int64) {
	b.ReportMetric(float64(writes)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkRawUpdateOneKey(b *testing.B) {
	_, cfg := env.Unthrottled(b)
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	cm, err := cs.CoreV1().ConfigMaps(benchNamespace(b)).Create(ctx,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "raw"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; b.Loop(); n++ {
		cm.Data = map[string]string{"BTCUSDT": benchPayload(n)}
		if cm, err = cs.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	rate(b, int64(b.N))
}

func BenchmarkStoreOneKey(b *testing.B) {
	s := benchStore(b, unthrottled(b), types.NamespacedName{Namespace: benchNamespace(b), Name: "one"})
	ctx := context.Background()
	for n := 0; b.Loop(); n++ {
		if _, err := s.Write(ctx, "BTCUSDT", benchRow(n)); err != nil {
			b.Fatal(err)
		}
	}
	rate(b, int64(b.N))
}

// BenchmarkStore16Strategies: 16 strategies, each its own ConfigMap, writing at once.
func BenchmarkStore16Strategies(b *testing.B) {
	c := unthrottled(b)
	ns := benchNamespace(b)
	stores := make([]*persist.Store[row], 16)
	for i := range stores {
		stores[i] = benchStore(b, c, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("strategy-%d", i)})
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, "BTCUSDT", benchRow(i))
		return err
	})
}

// BenchmarkStore100Symbols: one strategy's ConfigMap, 100 symbols written at once; group
// commit carries many in each update.
func BenchmarkStore100Symbols(b *testing.B) {
	s := benchStore(b, unthrottled(b), types.NamespacedName{Namespace: benchNamespace(b), Name: "symbols"})
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error {
		_, err := s.Write(ctx, fmt.Sprintf("SYM%dUSDT", g), benchRow(i))
		return err
	})
}

// BenchmarkRawUpdate100Symbols is the per-write baseline: each of 100 writers does get,
// modify, update on the shared ConfigMap, retrying conflicts until it succeeds.
func BenchmarkRawUpdate100Symbols(b *testing.B) {
	c := unthrottled(b)
	ctx := context.Background()
	name := types.NamespacedName{Namespace: benchNamespace(b), Name: "raw-symbols"}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}); err != nil {
		b.Fatal(err)
	}
	forever := retry.DefaultRetry
	forever.Steps = 1 << 30
	testenv.ParallelWrites(b, 100, func(g, i int) error {
		return retry.RetryOnConflict(forever, func() error { return rawSet(ctx, c, name, fmt.Sprintf("SYM%dUSDT", g), i) })
	})
}

func rawSet(ctx context.Context, c client.Client, name types.NamespacedName, key string, n int) error {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, name, &cm); err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[key] = benchPayload(n)
	return c.Update(ctx, &cm)
}

// BenchmarkStore16Contending: 16 writers, each with its own driver as separate processes
// would have, on one ConfigMap.
func BenchmarkStore16Contending(b *testing.B) {
	c := unthrottled(b)
	name := types.NamespacedName{Namespace: benchNamespace(b), Name: "contended"}
	stores := make([]*persist.Store[row], 16)
	for i := range stores {
		stores[i] = benchStore(b, c, name)
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, fmt.Sprintf("writer-%d", g), benchRow(i))
		return err
	})
}

// BenchmarkRetryOnConflict16Contending is client-go's usual answer to the same contention:
// get, modify, update under retry.RetryOnConflict(retry.DefaultRetry, …).
func BenchmarkRetryOnConflict16Contending(b *testing.B) {
	c := unthrottled(b)
	ctx := context.Background()
	name := types.NamespacedName{Namespace: benchNamespace(b), Name: "naive"}
	if err := c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}); err != nil {
		b.Fatal(err)
	}
	testenv.ParallelWrites(b, 16, func(g, i int) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			return rawSet(ctx, c, name, fmt.Sprintf("writer-%d", g), i)
		})
	})
}

func unthrottled(b *testing.B) client.Client {
	c, _ := env.Unthrottled(b)
	return c
}
