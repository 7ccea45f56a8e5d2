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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
)

// The crash-equivalence test runs this test binary again as the runner (childDirEnv names
// its state folder), once without interruption and once killed with SIGKILL at random
// moments and restarted, and compares the two ledgers.
const childDirEnv = "RUNNER_CRASH_CHILD_DIR"

var (
	t0      = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tEnd    = t0.Add(24 * time.Hour)
	symbols = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		if err := runChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newEngine(p *domain.Persistence) (*runner.Engine, error) {
	s, err := strategy.New("indicator", map[string]string{"fast": "5", "slow": "20"})
	if err != nil {
		return nil, err
	}
	return runner.New(runner.Config{
		StrategyName: "crossover", ExchangeName: "simulated", Symbols: symbols,
		Source: market.Simulated{Seed: 2026}, Strategy: s, Persist: p,
		Limits: v1.DefaultSignalLimits, Start: t0,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}), nil
}

// runChild restores from dir and processes every candle up to tEnd.
func runChild(dir string) error {
	ctx := context.Background()
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	e, err := newEngine(p)
	if err != nil {
		return err
	}
	if err := e.Restore(ctx); err != nil {
		return err
	}
	_, err = e.Step(ctx, tEnd)
	return err
}

func child(dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

// ledger is everything the strategy did, by symbol: every signal's history entry, and
// the state it ended in.
func ledger(t *testing.T, dir string) map[string]any {
	t.Helper()
	ctx := context.Background()
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	out := map[string]any{}
	for _, sym := range symbols {
		k := domain.StrategyKey(sym, "crossover", "simulated")
		s, err := p.History.Store(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var entries []*domain.HistoryEntry
		for v, err := range s.Values(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, v)
		}
		sig, err := p.ReadSignal(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		sched, err := p.ReadSchedule(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[sym] = map[string]any{"history": entries, "signal": sig, "schedule": sched}
	}
	risk, err := p.ReadRisk(ctx, domain.RiskKey("crossover", "simulated"))
	if err != nil {
		t.Fatal(err)
	}
	out["risk"] = risk
	return out
}

func closedSignals(l map[string]any) int {
	n := 0
	for _, sym := range symbols {
		for _, e := range l[sym].(map[string]any)["history"].([]*domain.HistoryEntry) {
			if e.Has(runner.KindClose) {
				n++
			}
		}
	}
	return n
}

// TestCrashEquivalenceFile: the same day of candles, once straight through and once
// with the runner SIGKILLed at random moments (at least 50 times) and restarted, leave
// identical ledgers: no signal lost, none twice, every close at the same price.
func TestCrashEquivalenceFile(t *testing.T) {
	reference := t.TempDir()
	if err := child(reference).Run(); err != nil {
		t.Fatalf("the uninterrupted run failed: %v", err)
	}
	want := ledger(t, reference)
	if n := closedSignals(want); n < 10 {
		t.Fatalf("only %d signals closed in a day: the test would prove little", n)
	}

	crashed := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	kills, start := 0, time.Now()
	for {
		cmd := child(crashed)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d failed by itself: %v", kills+1, err)
			}
		case <-time.After(time.Duration(10+rng.IntN(70)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err := <-done
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
				kills++
				if kills > 5000 {
					t.Fatal("5,000 kills and the run is not done: it makes no progress between kills")
				}
				continue
			}
			if err != nil {
				t.Fatalf("run %d: %v", kills+1, err)
			}
		}
		break
	}
	got := ledger(t, crashed)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("the ledgers differ after %d kills:\nuninterrupted: %s\nkilled:        %s", kills, wantJSON, gotJSON)
	}
	t.Logf("%d signals closed; identical ledgers after %d SIGKILLs in %s", closedSignals(got), kills,
		time.Since(start).Round(time.Millisecond))
	if kills < 50 {
		t.Fatalf("only %d kills before the run finished: want at least 50", kills)
	}
}
