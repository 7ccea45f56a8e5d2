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

package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/redisstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The benchmarks report writes/s against the test's own server, whose settings
// (testenv.RedisSettings: append-only file, fsync on every write) the baselines share;
// hack/benchratio prints each beside its baseline from the same run (make bench). Every
// write stores a different value of about an open signal row's size.

type row struct {
	ID   string `json:"id"`
	N    int    `json:"n"`
	Note string `json:"note"`
}

var note = strings.Repeat("x", 1000)

func benchRow(n int) row { return row{ID: "1af31ee8-c897-4000-a4dc-55369e459000", N: n, Note: note} }

var benchStores int

// benchBatch is the batch the benchmark stores share, as a runner's stores share their
// connection's.
var benchBatch = sync.OnceValue(func() *redisstore.Batch { return redisstore.NewBatch(client) })

// benchStore is a fenced store of its own, as a runner writes: through the shared batch
// when batched.
func benchStore(b *testing.B, batched bool) *persist.Store[row] {
	benchStores++
	d := redisstore.New(client, fmt.Sprintf("bench-%d", benchStores), redisstore.Fencing{Writer: "bench", Token: 1})
	if batched {
		d = d.WithBatch(benchBatch())
	}
	s := persist.NewStore[row]("bench", d)
	if _, err := s.Init(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// rawWrite is the plainest durable write of the same bytes: SET, no revision, no fencing.
func rawWrite(ctx context.Context, key string, n int) error {
	return client.Set(ctx, key, fmt.Sprintf(`{"id":"1af31ee8-c897-4000-a4dc-55369e459000","n":%d,"note":%q}`, n, note), 0).Err()
}

func BenchmarkRawSetOneKey(b *testing.B) {
	ctx := context.Background()
	for n := 0; b.Loop(); n++ {
		if err := rawWrite(ctx, "raw-one", n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkStoreOneKey(b *testing.B) {
	s := benchStore(b, true)
	ctx := context.Background()
	for n := 0; b.Loop(); n++ {
		if _, err := s.Write(ctx, "BTCUSDT", benchRow(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawSet16Strategies: the baseline of 16 writers at once, each its own key.
func BenchmarkRawSet16Strategies(b *testing.B) {
	ctx := context.Background()
	testenv.ParallelWrites(b, 16, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-%d", g), i) })
}

// BenchmarkStore16Strategies: 16 strategies, each its own store, writing at once (their
// writes share pipelines).
func BenchmarkStore16Strategies(b *testing.B) { bench16(b, false) }

// BenchmarkStore16StrategiesUnbatched: the same, each write a round trip of its own.
func BenchmarkStore16StrategiesUnbatched(b *testing.B) { bench16(b, true) }

func bench16(b *testing.B, unbatched bool) {
	stores := make([]*persist.Store[row], 16)
	for i := range stores {
		stores[i] = benchStore(b, !unbatched)
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, "BTCUSDT", benchRow(i))
		return err
	})
}

// BenchmarkStore100Symbols: one strategy's store, 100 symbols written at once.
func BenchmarkStore100Symbols(b *testing.B) {
	s := benchStore(b, true)
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error {
		_, err := s.Write(ctx, fmt.Sprintf("SYM%03d", g), benchRow(i))
		return err
	})
}

// BenchmarkRawSet100Symbols: the baseline of 100 writers at once, each its own key.
func BenchmarkRawSet100Symbols(b *testing.B) {
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-sym-%d", g), i) })
}

// benchReads reads one key of size bytes over and over, through the bare driver or
// through a cache in front of it (cachestore: a revision probe, then the cached value).
func benchReads(b *testing.B, size int, cached bool) {
	benchStores++
	var d driver.Driver = redisstore.New(client, fmt.Sprintf("bench-reads-%d", benchStores), redisstore.Fencing{})
	if cached {
		var err error
		if d, err = cachestore.New(d, cachestore.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := d.Init(ctx, true); err != nil {
		b.Fatal(err)
	}
	value := fmt.Appendf(nil, `{"note":%q}`, strings.Repeat("x", size))
	if _, err := d.Put(ctx, "BTCUSDT", value, driver.Precondition{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.Get(ctx, "BTCUSDT"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

func BenchmarkBareReads1KiB(b *testing.B)     { benchReads(b, 1<<10, false) }
func BenchmarkCachedReads1KiB(b *testing.B)   { benchReads(b, 1<<10, true) }
func BenchmarkBareReads256KiB(b *testing.B)   { benchReads(b, 256<<10, false) }
func BenchmarkCachedReads256KiB(b *testing.B) { benchReads(b, 256<<10, true) }
