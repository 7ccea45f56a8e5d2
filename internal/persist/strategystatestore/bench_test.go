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

package strategystatestore_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	sss "github.com/strategyops/strategy-operator/internal/persist/strategystatestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// benchSetup returns an unthrottled client, a fresh namespace and the keys of 16
// strategies.
func benchSetup(b *testing.B) (client.Client, string, []sss.Key) {
	c, _ := env.Unthrottled(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	keys := make([]sss.Key, 16)
	for i := range keys {
		keys[i] = sss.Key{StrategyName: fmt.Sprintf("strategy-%d", i), ExchangeName: "simulated", Symbol: "BTCUSDT"}
	}
	return c, ns.Name, keys
}

// benchSignal is the n-th signal of k; each differs, so that no update is a no-op.
func benchSignal(k sss.Key, n int) *v1.Signal {
	minutes := int64(60)
	return &v1.Signal{ID: fmt.Sprintf("sig-%d", n), Position: v1.PositionLong, PriceOpen: 100,
		PriceTakeProfit: 101.5 + float64(n%100)/100, PriceStopLoss: 98.5, MinuteEstimatedTime: &minutes,
		Symbol: k.Symbol, ExchangeName: k.ExchangeName, StrategyName: k.StrategyName,
		ScheduledAt: 1795643580000, PendingAt: 1795643580000, Timestamp: 1795643580000}
}

// BenchmarkStrategyState16Strategies: 16 strategies, each writing its own StrategyState's
// signal at once (make bench holds the total to 1,000 writes/s).
func BenchmarkStrategyState16Strategies(b *testing.B) {
	c, ns, keys := benchSetup(b)
	stores := make([]*persist.Store[*v1.Signal], len(keys))
	for i, k := range keys {
		stores[i] = persist.NewStore[*v1.Signal]("bench", sss.New(c, ns, k, sss.FieldSignal,
			sss.Options{Options: kubestore.Options{Create: true}}))
		if _, err := stores[i].Init(context.Background(), true); err != nil {
			b.Fatal(err)
		}
	}
	testenv.ParallelWrites(b, len(keys), func(i, n int) error {
		_, err := stores[i].Write(context.Background(), keys[i].Symbol, benchSignal(keys[i], n))
		return err
	})
}

// BenchmarkRawUpdateStrategyState16 is the baseline: the same writes as plain updates of
// the object, nothing around them: what the API server itself allows.
func BenchmarkRawUpdateStrategyState16(b *testing.B) {
	c, ns, keys := benchSetup(b)
	objs := make([]*v1.StrategyState, len(keys))
	for i, k := range keys {
		objs[i] = sss.NewObject(types.NamespacedName{Namespace: ns, Name: sss.ObjectName(k)}, k)
		if err := c.Create(context.Background(), objs[i]); err != nil {
			b.Fatal(err)
		}
	}
	testenv.ParallelWrites(b, len(keys), func(i, n int) error {
		objs[i].Spec.Signal = benchSignal(keys[i], n)
		objs[i].Spec.Phase = v1.PhaseOpen
		return c.Update(context.Background(), objs[i])
	})
}
