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

package testenv

import (
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Unthrottled is a client of the environment without client-side rate limiting, as
// controller-runtime sets one up, for benchmarks of the stores and their baselines alike.
func (e *Environment) Unthrottled(tb testing.TB) (client.Client, *rest.Config) {
	tb.Helper()
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		tb.Fatal(err)
	}
	return c, cfg
}

// ParallelWrites spreads b.N writes over n goroutines (write(g, i) is goroutine g's i-th),
// times only them, and reports writes/s of the ones that succeeded and the failed count.
func ParallelWrites(b *testing.B, n int, write func(g, i int) error) {
	var wg sync.WaitGroup
	var next, failed atomic.Int64
	b.ResetTimer()
	for g := range n {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := write(g, i); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(int64(b.N)-failed.Load())/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(failed.Load()), "failed")
}
