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
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

type val struct {
	Writer int `json:"writer"`
	N      int `json:"n"`
}

func openStore(t *testing.T, c client.Client, name types.NamespacedName) *persist.Store[val] {
	t.Helper()
	s := persist.NewStore[val]("test", configmapstore.New(c, name, configmapstore.Options{Options: kubestore.Options{Create: true}}))
	if _, err := s.Init(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContentionLosesNoWrite: 16 writers, each with its own driver (so they really race
// on the resourceVersion), write their own key and a shared key of one ConfigMap. No write
// may fail, and every key ends at its writer's last value.
func TestContentionLosesNoWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	name := types.NamespacedName{Namespace: env.Namespace(ctx, t), Name: "contended"}
	const writers, each = 16, 25
	stores := make([]*persist.Store[val], writers)
	for w := range stores {
		stores[w] = openStore(t, env.Client, name)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for w, s := range stores {
		wg.Go(func() {
			for n := range each {
				for _, key := range []string{fmt.Sprintf("own-%d", w), "shared"} {
					if _, err := s.Write(ctx, key, val{Writer: w, N: n}); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	g.Expect(failures).To(BeEmpty())
	for w := range writers {
		got, err := stores[0].Read(ctx, fmt.Sprintf("own-%d", w))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(val{Writer: w, N: each - 1}))
	}
	shared, err := stores[0].Read(ctx, "shared")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(shared.N).To(Equal(each-1), "the shared key holds some writer's last write")
	g.Expect(metricValue(t, "strategyops_store_conflicts_retried_total")).To(BeNumerically(">", 0),
		"the lost compare-and-swaps were counted")
	g.Expect(metricValue(t, "strategyops_store_operations_total")).To(BeNumerically(">=", writers*each*2))
}

// metricValue sums a counter's series in controller-runtime's registry.
func metricValue(t *testing.T, name string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestConnectionLoss cuts the connection to the API server for a few seconds while a
// writer writes: every write keeps retrying within its context and succeeds once the API
// server is back, and every write reported successful is stored.
func TestConnectionLoss(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	name := types.NamespacedName{Namespace: env.Namespace(ctx, t), Name: "flaky"}

	proxy := env.APIServerProxy(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + proxy.Addr()
	cfg.Timeout = 2 * time.Second
	viaProxy, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	s := openStore(t, viaProxy, name)
	direct := openStore(t, env.Client, name)

	const writes = 30
	var cutAt, restoredAt time.Time
	slowest := time.Duration(0)
	for n := range writes {
		if n == 10 {
			proxy.Down()
			cutAt = time.Now()
			go func() {
				time.Sleep(3 * time.Second)
				restoredAt = time.Now()
				proxy.Up()
			}()
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, err := s.Write(wctx, "BTCUSDT", val{N: n})
		cancel()
		g.Expect(err).NotTo(HaveOccurred(), "write %d", n)
		slowest = max(slowest, time.Since(start))
		got, err := direct.Read(ctx, "BTCUSDT")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.N).To(Equal(n), "write %d was reported stored", n)
	}
	g.Expect(restoredAt).NotTo(BeZero())
	g.Expect(slowest).To(BeNumerically(">=", 2*time.Second), "a write spanned the outage")
	t.Logf("outage %s; the write during it took %s", restoredAt.Sub(cutAt).Round(time.Millisecond), slowest.Round(time.Millisecond))

	t.Run("a write whose context ends during the outage fails, and says so", func(t *testing.T) {
		g := NewWithT(t)
		proxy.Down()
		defer proxy.Up()
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := s.Write(wctx, "BTCUSDT", val{N: -1})
		g.Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue(), "got %v", err)
		got, err := direct.Read(ctx, "BTCUSDT")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.N).To(Equal(writes - 1))
	})
	t.Run("a first write that cannot even read the object is retried, not left unknown", func(t *testing.T) {
		g := NewWithT(t)
		for n := range 200 { // more writes than the object remembers
			_, err := direct.Write(ctx, "ETHUSDT", val{N: n})
			g.Expect(err).NotTo(HaveOccurred())
		}
		fresh := openStore(t, viaProxy, name) // no cached copy: its first write reads first
		proxy.Down()
		go func() {
			time.Sleep(3 * time.Second) // past the client's 2 s timeout: its read fails
			proxy.Up()
		}()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := fresh.Write(wctx, "SOLUSDT", val{N: 7})
		g.Expect(err).NotTo(HaveOccurred())
		got, err := direct.Read(ctx, "SOLUSDT")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.N).To(Equal(7))
	})
}

// TestRunnerWaitsForADeletedObject: a writer that may not create its ConfigMap (a runner)
// finds it deleted by hand; its write waits until the operator makes the object again,
// then lands there, instead of failing (which would end the runner and, at its restart,
// lose what it held in memory).
func TestRunnerWaitsForADeletedObject(t *testing.T) {
	ctx := context.Background()
	name := types.NamespacedName{Namespace: env.Namespace(ctx, t), Name: "deleted"}
	openStore(t, env.Client, name) // the operator makes it
	runner := persist.NewStore[val]("runner", configmapstore.New(env.Client, name, configmapstore.Options{}))
	if _, err := runner.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Write(ctx, "a", val{N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace,
		Name: name.Name}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := runner.Write(ctx, "b", val{N: 2})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the write ended while the object was gone: %v", err)
	case <-time.After(time.Second):
	}
	openStore(t, env.Client, name) // the operator makes it again
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write did not land in the object made again")
	}
	got, err := openStore(t, env.Client, name).Read(ctx, "b")
	if err != nil || got.N != 2 {
		t.Fatalf("read back %+v, %v", got, err)
	}
}
