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

package runner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
)

// TestDrainWatchesTheOpenSignalAndOpensNone: a symbol removed from a strategy with a
// signal open is watched until that signal closes, and no new signal opens on it; the
// same run without draining opens more (so the check could fail).
func TestDrainWatchesTheOpenSignalAndOpensNone(t *testing.T) {
	const sym = "BTCUSDT"
	run := func(dir string, draining []string, until time.Time) (*v1.Signal, []*domain.HistoryEntry) {
		return drainRun(t, dir, draining, until)
	}
	// Run minute by minute until a signal is open: that is when the symbol is removed.
	dir := t.TempDir()
	var open *v1.Signal
	at := t0
	for open == nil {
		if at = at.Add(time.Minute); at.After(tEnd) {
			t.Fatal("no signal opened in a day")
		}
		open, _ = run(dir, nil, at)
	}
	control := t.TempDir()
	copyState(t, dir, control)

	sig, entries := run(dir, []string{sym}, tEnd)
	if len(entries) != 1 || entries[0].ID != open.ID || !entries[0].Has(runner.KindClose) {
		t.Fatalf("drained: want only signal %s, closed; got %d entries", open.ID, len(entries))
	}
	kinds := make([]string, 0, len(entries[0].Events))
	for _, ev := range entries[0].Events {
		kinds = append(kinds, ev.Kind)
	}
	if want := []string{runner.KindOpen, domain.EventDraining, runner.KindClose}; !slices.Equal(kinds, want) {
		t.Fatalf("the drained signal's ledger reads %v, want %v", kinds, want)
	}
	if sig != nil {
		t.Fatalf("drained: signal %s is open at the end", sig.ID)
	}
	if _, all := run(control, nil, tEnd); len(all) < 2 {
		t.Fatalf("the control run, not drained, opened no more signals (%d entries): the test proves nothing", len(all))
	}
}

// drainRun runs the engine on BTCUSDT from the state in dir to until, with draining
// drained, and returns the signal and ledger it left.
func drainRun(t *testing.T, dir string, draining []string, until time.Time) (*v1.Signal, []*domain.HistoryEntry) {
	t.Helper()
	ctx := context.Background()
	k := domain.StrategyKey("BTCUSDT", "crossover", "simulated")
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	s, err := strategy.New("indicator", map[string]string{"fast": "5", "slow": "20"})
	if err != nil {
		t.Fatal(err)
	}
	e := runner.New(runner.Config{StrategyName: "crossover", ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
		Draining: draining, Source: market.Simulated{Seed: 2026}, Strategy: s, Persist: p,
		Limits: v1.DefaultSignalLimits, Start: t0, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(ctx, until); err != nil {
		t.Fatal(err)
	}
	sig, err := p.ReadSignal(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	return sig, historyOf(t, p, k)
}

// TestDrainFinishesAnOpenThatLanded: a runner is killed while it opens a signal, after the
// signal's write landed and before the risk profile and the ledger took it; the symbol is
// drained meanwhile. Its successor finishes that open (the ledger records it opened) and
// watches the signal to its close. An open whose signal write never landed is dropped: no
// signal opens on a drained symbol.
func TestDrainFinishesAnOpenThatLanded(t *testing.T) {
	ctx := context.Background()
	k := domain.StrategyKey("BTCUSDT", "crossover", "simulated")
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			dir := t.TempDir()
			var open *v1.Signal
			for at := t0; open == nil; {
				if at = at.Add(time.Minute); at.After(tEnd) {
					t.Fatal("no signal opened in a day")
				}
				open, _ = drainRun(t, dir, nil, at)
			}
			// Undo what the open wrote after the signal, and record it inflight, as the
			// killed runner left it.
			p := domain.New(domain.FileBackend(dir))
			hist, err := p.History.Store(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := hist.Remove(ctx, open.ID); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteRisk(ctx, domain.RiskKey("crossover", "simulated"), v1.RiskPositions{}); err != nil {
				t.Fatal(err)
			}
			leaveInflight(t, p, k, map[string]any{"kind": runner.KindOpen, "candle": open.PendingAt - 60_000,
				"row": open, "price": open.PriceOpen})
			if !landed {
				if err := p.WriteSignal(ctx, k, nil); err != nil {
					t.Fatal(err)
				}
			}
			_ = p.Close()

			sig, entries := drainRun(t, dir, []string{"BTCUSDT"}, tEnd)
			if sig != nil {
				t.Fatalf("signal %s is open on the drained symbol at the end", sig.ID)
			}
			if !landed {
				if len(entries) != 0 {
					t.Fatalf("an open that never landed left %d ledger entries: %+v", len(entries), entries[0])
				}
				return
			}
			if len(entries) != 1 || entries[0].ID != open.ID || !entries[0].Has(runner.KindOpen) ||
				!entries[0].Has(runner.KindClose) {
				t.Fatalf("want signal %s opened and closed in the ledger, got %d entries: %+v", open.ID, len(entries),
					entries)
			}
		})
	}
}

func historyOf(t *testing.T, p *domain.Persistence, k domain.Key) []*domain.HistoryEntry {
	t.Helper()
	s, err := p.History.Store(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	var out []*domain.HistoryEntry
	for v, err := range s.Values(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func copyState(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}
