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
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

var (
	server *testenv.Mongo
	client *mongo.Client
	db     *mongo.Database
)

// TestMain starts a MongoDB-protocol server of the test's own (testenv.StartMongo).
func TestMain(m *testing.M) {
	ctx := context.Background()
	var err error
	if server, err = testenv.StartMongo(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "starting the MongoDB-protocol server:", err)
		os.Exit(1)
	}
	if client, db, err = mongostore.Connect(server.URL("strategyops")); err != nil {
		server.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = client.Disconnect(ctx)
	server.Stop()
	os.Exit(code)
}

var stores atomic.Int64

// TestConformance runs the one suite on both kinds of collection: this project's own (every
// store in one collection) and one of backtest-kit's (partial-items: a store per symbol,
// strategy and exchange, a document per signal). Corrupt values are not a case: the server
// keeps BSON, so nothing unreadable can be stored.
func TestConformance(t *testing.T) {
	layouts := map[string]func(n string) dblayout.Layout{
		"own": dblayout.Own,
		"backtest-kit": func(n string) dblayout.Layout {
			return domain.DatabaseLayout(domain.Partial, domain.StrategyKey("BTCUSDT", n, "binance"))
		},
	}
	for name, layout := range layouts {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			of := map[driver.Driver]dblayout.Layout{}
			drivertest.RunConformanceTests(t, drivertest.Harness{
				New: func(*testing.T) driver.Driver {
					l := layout(fmt.Sprintf("conformance-%d", stores.Add(1)))
					d := mongostore.New(db, l, mongostore.Fencing{})
					mu.Lock()
					defer mu.Unlock()
					of[d] = l
					return d
				},
				Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
					mu.Lock()
					defer mu.Unlock()
					return mongostore.New(db, of[d], mongostore.Fencing{})
				},
				Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
					mu.Lock()
					defer mu.Unlock()
					return mongostore.New(db, of[d], mongostore.Fencing{Writer: writer, Token: token})
				},
			})
		})
	}
}

// TestBadConnection: Init against no server, or a host that does not resolve, fails within
// its context, naming the backend, the store, the address and the cause. (The test server
// has no users, so wrong credentials are not a case here; MongoDB's refusal of them is a
// server error like any other, and Init returns it wrapped.)
func TestBadConnection(t *testing.T) {
	cases := []struct{ name, host, cause string }{
		{"unreachable", "127.0.0.1:1", "connection refused"},
		{"unknown host", "strategyops-no-such-host.invalid:27017", "no such host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			cl, bad, err := mongostore.Connect("mongodb://" + c.host + "/strategyops?serverSelectionTimeoutMS=2000")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cl.Disconnect(ctx) }()
			start := time.Now()
			_, err = mongostore.New(bad, dblayout.Own("nowhere"), mongostore.Fencing{}).Init(ctx, true)
			if err == nil || !strings.Contains(err.Error(), "mongodb store nowhere") ||
				!strings.Contains(err.Error(), c.host) || !strings.Contains(err.Error(), c.cause) {
				t.Fatalf("got %v, want an error naming the backend, store, address and %q", err, c.cause)
			}
			if waited := time.Since(start); waited > 4*time.Second {
				t.Errorf("Init waited %s", waited)
			}
		})
	}
	if _, _, err := mongostore.Connect("mongodb://[::1"); err == nil {
		t.Error("Connect accepted a malformed URL")
	}
}

// TestRefusedValue: a value MongoDB cannot hold (a field name starting with "$") is
// ErrInvalidValue and changes nothing.
func TestRefusedValue(t *testing.T) {
	ctx := t.Context()
	s := persist.NewStore[map[string]int]("refused", mongostore.New(db, dblayout.Own("refused"), mongostore.Fencing{}))
	defer func() { _ = s.Close() }()
	if _, err := s.Write(ctx, "k", map[string]int{"fine": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "k", map[string]int{"$set": 2}); !errors.Is(err, persist.ErrInvalidValue) {
		t.Fatalf("a field named $set: got %v, want ErrInvalidValue", err)
	}
	if v, err := s.Read(ctx, "k"); err != nil || v["fine"] != 1 || len(v) != 1 {
		t.Fatalf("after the refused write: %v, %v", v, err)
	}
}

// TestLostAnswer: the connection breaks after a write was sent. The write says
// ErrUnknownOutcome, and reading the key tells: the server applied it.
func TestLostAnswer(t *testing.T) {
	proxy, err := testenv.NewProxy(server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proxy.Close() }()
	cl, pdb, err := mongostore.Connect("mongodb://" + proxy.Addr() + "/strategyops?directConnection=true&maxPoolSize=4")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	s := persist.NewStore[string]("lost", mongostore.New(pdb, dblayout.Own("lost-answer"), mongostore.Fencing{}))
	defer func() { _ = s.Close() }()
	if _, err := s.Write(t.Context(), "k", "before"); err != nil {
		t.Fatal(err)
	}
	proxy.LoseReplies()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	_, err = s.Write(ctx, "k", "after")
	cancel()
	if !errors.Is(err, persist.ErrUnknownOutcome) {
		t.Fatalf("a write whose answer was lost: %v, want ErrUnknownOutcome", err)
	}
	proxy.Down()
	proxy.Up()
	// The client clears its pool after the cut; a read may fail once while it reconnects.
	var v string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if v, err = s.Read(t.Context(), "k"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || v != "after" {
		t.Fatalf("after the lost answer the key reads %q, %v; the server had applied the write", v, err)
	}
}

// TestServerKilled: every write a SIGKILLed server acknowledged is there after it restarts.
func TestServerKilled(t *testing.T) {
	ctx := t.Context()
	srv, err := testenv.StartMongo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cl, kdb, err := mongostore.Connect(srv.URL("strategyops"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Disconnect(context.Background()) }()
	d := mongostore.New(kdb, dblayout.Own("killed"), mongostore.Fencing{Writer: "runner-0", Token: 1})
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	const n = 200
	if left := drivertest.WritesAfterKill(t, d, 1, n, func() {
		srv.Kill()
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}); left != n {
		t.Fatalf("after the kill %d of %d acknowledged writes are left", left, n)
	}
}
