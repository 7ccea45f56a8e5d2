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

package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// The benchmarks report writes/s against the test's own server (default settings: fsync
// on, synchronous_commit on), which the baselines share; hack/benchratio prints each beside
// its baseline from the same run (make bench). Every write stores a different value of
// about an open signal row's size. The baselines write the same rows the way backtest-kit's
// PostgreSQL adapter does: one upsert, no revision, no fencing.

type row struct {
	ID   string `json:"id"`
	N    int    `json:"n"`
	Note string `json:"note"`
}

var note = strings.Repeat("x", 1000)

func benchRow(n int) row { return row{ID: "1af31ee8-c897-4000-a4dc-55369e459000", N: n, Note: note} }

var benchStores int

// benchStore is a fenced store of its own in backtest-kit's partial-items table, keyed by
// signal id as a runner writes its partial levels: through the shared batch when batched.
func benchStore(b *testing.B, batched bool) *persist.Store[row] {
	benchStores++
	l := domain.DatabaseLayout(domain.Partial, domain.StrategyKey("BTCUSDT", fmt.Sprintf("bench-%d", benchStores), "e"))
	d := pgstore.New(pool, l, pgstore.Fencing{Writer: "bench", Token: 1})
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

// rawWrite is the plainest durable client write of the same row: backtest-kit's adapter's
// own upsert into partial-items (its columns, its unique index), without revisions or
// fencing.
func rawWrite(ctx context.Context, key string, n int) error {
	_, err := pool.Exec(ctx, `INSERT INTO "partial-items" ("symbol", "strategyName", "exchangeName", "signalId",
		"payload", "when") VALUES ('BTCUSDT', 'bench-raw', 'e', $1, $2::jsonb, $3)
		ON CONFLICT ("symbol", "strategyName", "exchangeName", "signalId")
		DO UPDATE SET "payload" = EXCLUDED."payload", "when" = EXCLUDED."when"`, key,
		fmt.Sprintf(`{"id":"1af31ee8-c897-4000-a4dc-55369e459000","n":%d,"note":%q}`, n, note), time.Now().UnixMilli())
	return err
}

// rawTable makes the table as the store does (a store's Init).
func rawTable(b *testing.B) { benchStore(b, true) }

func BenchmarkRawUpsertOneKey(b *testing.B) {
	rawTable(b)
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
		if _, err := s.Write(ctx, "sig-1", benchRow(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawUpsert16Strategies: the baseline of 16 writers at once, each its own row.
func BenchmarkRawUpsert16Strategies(b *testing.B) {
	rawTable(b)
	ctx := context.Background()
	testenv.ParallelWrites(b, 16, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-%d", g), i) })
}

// BenchmarkStore16Strategies: 16 strategies, each its own store, writing at once.
func BenchmarkStore16Strategies(b *testing.B) { bench16(b, false) }

// BenchmarkStore16StrategiesUnbatched: the same, each write a round trip of its own.
func BenchmarkStore16StrategiesUnbatched(b *testing.B) { bench16(b, true) }

// benchBatch is the batch the benchmark stores share, as a runner's stores share their
// connection's.
var benchBatch = sync.OnceValue(func() *pgstore.Batch { return pgstore.NewBatch(pool) })

func bench16(b *testing.B, unbatched bool) {
	stores := make([]*persist.Store[row], 16)
	for i := range stores {
		stores[i] = benchStore(b, !unbatched)
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, "sig-1", benchRow(i))
		return err
	})
}

// BenchmarkStore100Symbols: one strategy's store, 100 keys written at once.
func BenchmarkStore100Symbols(b *testing.B) {
	s := benchStore(b, true)
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error {
		_, err := s.Write(ctx, fmt.Sprintf("sig-%03d", g), benchRow(i))
		return err
	})
}

// BenchmarkRawUpsert100Symbols: the baseline of 100 writers at once, each its own row.
func BenchmarkRawUpsert100Symbols(b *testing.B) {
	rawTable(b)
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-sym-%d", g), i) })
}
