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
package stateapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/stateserver"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/stateapi"
	"github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// serve runs the runner's server of the strategy client on b on a Unix socket, and returns
// the client a process under runner exec makes (FromEnv).
func serve(t *testing.T, b domain.Backend) *stateapi.Client {
	t.Helper()
	srv := stateserver.New(stateserver.Config{StrategyName: "client", ExchangeName: "simulated",
		Symbols: []string{"BTCUSDT"}, Backend: b, Limits: v1.DefaultSignalLimits})
	socket := filepath.Join(t.TempDir(), "state.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = srv.Close() })
	t.Setenv(stateapi.SocketEnv, socket)
	c, err := stateapi.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientSpeaksTheAPI: the public client against the runner's own server on a Unix
// socket, as a Go process under runner exec uses it: revisions, preconditions, and each
// refusal as the error of package store it stands for.
func TestClientSpeaksTheAPI(t *testing.T) {
	c := serve(t, domain.MemoryBackend())
	ctx := t.Context()
	at := stateapi.Context{Symbol: "BTCUSDT", StrategyName: "client", ExchangeName: "simulated"}

	if _, _, err := c.Get(ctx, "strategy", "BTCUSDT", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing value: %v, want ErrNotFound", err)
	}
	rev, err := c.Put(ctx, "partial", "sig-1", at, json.RawMessage(`{"a":1}`), driver.Precondition{IfAbsent: true})
	if err != nil || rev == "" {
		t.Fatalf("Put if absent: %q, %v", rev, err)
	}
	if _, err := c.Put(ctx, "partial", "sig-1", at, json.RawMessage(`{"a":2}`), driver.Precondition{IfAbsent: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second Put if absent: %v, want ErrConflict", err)
	}
	v, got, err := c.Get(ctx, "partial", "sig-1", at)
	if err != nil || got != rev || string(v) != `{"a":1}` {
		t.Fatalf("Get: %s at %q (%v), want {\"a\":1} at %q", v, got, err, rev)
	}
	next, err := c.Put(ctx, "partial", "sig-1", at, json.RawMessage(`{"a":3}`), driver.Precondition{IfRevision: rev})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "partial", "sig-1", at, json.RawMessage(`{"a":4}`), driver.Precondition{IfRevision: rev}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a Put at a stale revision: %v, want ErrConflict", err)
	}
	if keys, err := c.Keys(ctx, "partial", at); err != nil || !slices.Equal(keys, []string{"sig-1"}) {
		t.Fatalf("Keys: %v, %v", keys, err)
	}
	other := at
	other.Symbol = "ETHUSDT"
	if _, _, err := c.Get(ctx, "partial", "sig-1", other); !errors.Is(err, stateapi.ErrForeignContext) {
		t.Fatalf("another strategy's context: %v, want ErrForeignContext", err)
	}
	if _, err := c.Put(ctx, "signal", "BTCUSDT", at, json.RawMessage(`{"id":"x"}`), driver.Precondition{}); !errors.Is(err, store.ErrInvalidValue) {
		t.Fatalf("a signal row that breaks the rules: %v, want ErrInvalidValue", err)
	}
	if err := c.Delete(ctx, "partial", "sig-1", at, driver.Precondition{IfRevision: next}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, "partial", "sig-1", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Delete: %v, want ErrNotFound", err)
	}
}

// TestClientSendsTheWriteTime: the write time a Put's context carries (backtest-kit's when)
// reaches the runner's store; a Put without one gives the store the write's own time.
func TestClientSendsTheWriteTime(t *testing.T) {
	var recorded testenv.WriteTimes
	memory := domain.MemoryBackend()
	c := serve(t, func(ctx context.Context, d domain.Domain, k domain.Key) (driver.Driver, error) {
		drv, err := memory(ctx, d, k)
		return recorded.Wrap(string(d), drv), err
	})
	at := stateapi.Context{Symbol: "BTCUSDT", StrategyName: "client", ExchangeName: "simulated"}
	tick := time.UnixMilli(1764107640000)
	if _, err := c.Put(driver.WithWriteTime(t.Context(), tick), "partial", "sig-1", at, json.RawMessage(`{}`),
		driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := c.Put(t.Context(), "partial", "sig-1", at, json.RawMessage(`{}`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := recorded.Of(string(domain.Partial)); len(got) != 2 || !got[0].Equal(tick) || got[1].Before(before) {
		t.Fatalf("the store was given the write times %v; want %v, then the wall clock's", got, tick)
	}
}
