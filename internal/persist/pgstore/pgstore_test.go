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
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

var (
	pool  *pgxpool.Pool
	pgURL string
)

// TestMain starts a PostgreSQL server of the test's own (testenv.StartPostgres).
func TestMain(m *testing.M) {
	ctx := context.Background()
	pg, err := testenv.StartPostgres(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		os.Exit(1)
	}
	pgURL = pg.URL
	if pool, err = pgxpool.New(ctx, pg.URL); err != nil {
		pg.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	pool.Close()
	pg.Stop()
	os.Exit(code)
}

var stores atomic.Int64

// TestConformance runs the one suite on both kinds of table: this project's own (every
// store in one table) and one of backtest-kit's (partial-items: a store per symbol,
// strategy and exchange, a row per signal). Corrupt values are not a case: the server keeps
// only JSON (jsonb), so nothing corrupt can be stored.
func TestConformance(t *testing.T) {
	layouts := map[string]func(n string) dblayout.Layout{
		"own": dblayout.Own,
		"backtest-kit": func(n string) dblayout.Layout {
			return domain.DatabaseLayout(domain.Partial, domain.StrategyKey("BTCUSDT", n, "binance"))
		},
	}
	batch := pgstore.NewBatch(pool)
	for name, layout := range layouts {
		// Each layout twice: every write a round trip of its own, and through one Batch.
		for _, batched := range []bool{false, true} {
			open := func(l dblayout.Layout, f pgstore.Fencing) *pgstore.Driver {
				d := pgstore.New(pool, l, f)
				if batched {
					d = d.WithBatch(batch)
				}
				return d
			}
			if batched {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				of := map[driver.Driver]dblayout.Layout{}
				var mu sync.Mutex
				drivertest.RunConformanceTests(t, drivertest.Harness{
					New: func(*testing.T) driver.Driver {
						l := layout(fmt.Sprintf("conformance-%d", stores.Add(1)))
						d := open(l, pgstore.Fencing{})
						mu.Lock()
						of[d] = l
						mu.Unlock()
						return d
					},
					Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
						mu.Lock()
						defer mu.Unlock()
						return open(of[d], pgstore.Fencing{})
					},
					Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
						mu.Lock()
						defer mu.Unlock()
						return open(of[d], pgstore.Fencing{Writer: writer, Token: token})
					},
				})
			})
		}
	}
}

// TestUnreachableServer: Init against a server that is not there fails within its context,
// naming the backend, the store and the address.
func TestUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	gone, err := pgxpool.New(ctx, "postgres://strategyops@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	start := time.Now()
	_, err = pgstore.New(gone, dblayout.Own("nowhere"), pgstore.Fencing{}).Init(ctx, true)
	if err == nil || !strings.Contains(err.Error(), "postgresql store nowhere") ||
		!strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("got %v, want an error naming the backend, store and address", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("Init waited %s", waited)
	}
}

// TestRefusedValue: a value jsonb cannot hold (a NUL in a string) is ErrInvalidValue
// and changes nothing.
func TestRefusedValue(t *testing.T) {
	ctx := t.Context()
	s := persist.NewStore[string]("refused", pgstore.New(pool, dblayout.Own("refused"), pgstore.Fencing{}))
	defer func() { _ = s.Close() }()
	if _, err := s.Write(ctx, "k", "fine"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "k", "a\x00b"); !errors.Is(err, persist.ErrInvalidValue) {
		t.Fatalf("a NUL in a string: got %v, want ErrInvalidValue", err)
	}
	if v, err := s.Read(ctx, "k"); err != nil || v != "fine" {
		t.Fatalf("after the refused write: %q, %v", v, err)
	}
}
