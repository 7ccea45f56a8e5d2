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

package mongostore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// The benchmarks report writes/s against the test's own server (FerretDB over SQLite in
// WAL mode, synchronous=full), which the baselines share with the same client and write
// concern; hack/benchratio prints each beside its baseline from the same run (make bench).
// Every write stores a different value of about an open signal's size. The baselines write
// the same documents the way backtest-kit's MongoDB package does: one updateOne with
// upsert, no revision, no fencing.

type benchValue struct {
	ID   string `json:"id"`
	N    int    `json:"n"`
	Note string `json:"note"`
}

var note = strings.Repeat("x", 1000)

func value(n int) benchValue {
	return benchValue{ID: "1af31ee8-c897-4000-a4dc-55369e459000", N: n, Note: note}
}

var benchStores int

// signalStore is a fenced store of its own in backtest-kit's signal-items collection: one
// symbol of one strategy, as a runner writes its open signal.
func signalStore(b *testing.B, symbol string) *persist.Store[benchValue] {
	benchStores++
	d, err := domain.MongoBackend(db, mongostore.Fencing{Writer: "bench", Token: 1})(context.Background(),
		domain.Signal, domain.StrategyKey(symbol, fmt.Sprintf("bench-%d", benchStores), "e"))
	if err != nil {
		b.Fatal(err)
	}
	s := persist.NewStore[benchValue]("bench", d)
	if _, err := s.Init(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// rawWrite is the plainest durable client write of the same document: backtest-kit's
// package's upsert into signal-items (its fields, its unique index), without revisions or
// fencing.
func rawWrite(ctx context.Context, symbol string, n int) error {
	now := time.Now()
	_, err := db.Collection("signal-items").UpdateOne(ctx,
		bson.D{{Key: "symbol", Value: symbol}, {Key: "strategyName", Value: "bench-raw"}, {Key: "exchangeName", Value: "e"}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "payload", Value: bson.D{{Key: "id", Value: "1af31ee8-c897-4000-a4dc-55369e459000"},
				{Key: "n", Value: int32(n)}, {Key: "note", Value: note}}}, {Key: "updatedDate", Value: now}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}, {Key: "__v", Value: int32(0)}}},
		}, options.UpdateOne().SetUpsert(true))
	return err
}

func BenchmarkRawUpsertOneKey(b *testing.B) {
	signalStore(b, "RAW") // the collection and its indexes, as the store makes them
	ctx := context.Background()
	for n := 0; b.Loop(); n++ {
		if err := rawWrite(ctx, "raw-one", n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkStoreOneKey(b *testing.B) {
	s := signalStore(b, "BTCUSDT")
	ctx := context.Background()
	for n := 0; b.Loop(); n++ {
		if _, err := s.Write(ctx, "BTCUSDT", value(n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawUpsert16Strategies: the baseline of 16 writers at once, each its own document.
func BenchmarkRawUpsert16Strategies(b *testing.B) {
	signalStore(b, "RAW")
	ctx := context.Background()
	testenv.ParallelWrites(b, 16, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-%d", g), i) })
}

// BenchmarkStore16Strategies: 16 strategies, each its own store, writing at once.
func BenchmarkStore16Strategies(b *testing.B) {
	stores := make([]*persist.Store[benchValue], 16)
	for i := range stores {
		stores[i] = signalStore(b, "BTCUSDT")
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, "BTCUSDT", value(i))
		return err
	})
}

// BenchmarkStore100Symbols: one strategy on 100 symbols, each symbol's signal its own store
// (as a runner keeps them), written at once.
func BenchmarkStore100Symbols(b *testing.B) {
	stores := make([]*persist.Store[benchValue], 100)
	symbols := make([]string, len(stores))
	benchStores++
	strategy := fmt.Sprintf("bench-%d", benchStores)
	for i := range stores {
		symbols[i] = fmt.Sprintf("SYM%03dUSDT", i)
		d, err := domain.MongoBackend(db, mongostore.Fencing{Writer: "bench", Token: 1})(context.Background(),
			domain.Signal, domain.StrategyKey(symbols[i], strategy, "e"))
		if err != nil {
			b.Fatal(err)
		}
		stores[i] = persist.NewStore[benchValue]("bench", d)
		b.Cleanup(func() { _ = stores[i].Close() })
	}
	ctx := context.Background()
	testenv.ParallelWrites(b, len(stores), func(g, i int) error {
		_, err := stores[g].Write(ctx, symbols[g], value(i))
		return err
	})
}

// BenchmarkRawUpsert100Symbols: the baseline of 100 writers at once, each its own document.
func BenchmarkRawUpsert100Symbols(b *testing.B) {
	signalStore(b, "RAW")
	ctx := context.Background()
	testenv.ParallelWrites(b, 100, func(g, i int) error { return rawWrite(ctx, fmt.Sprintf("raw-sym-%d", g), i) })
}
