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

package runnercmd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
)

// TestFileRunStopsAtUntilAndResumes runs six simulated hours on the File backend, then
// again: the second run finds every candle done and changes no ledger entry.
func TestFileRunStopsAtUntilAndResumes(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := runner.Settings{StrategyName: "demo", ExchangeName: "simulated", Symbols: []string{"BTCUSDT", "ETHUSDT"},
		Backend: v1.BackendFile, DataDir: dir, Strategy: "indicator", StrategyOptions: map[string]string{},
		Market: "simulated", Seed: 1, Start: start, Speed: 1, Until: start.Add(6 * time.Hour),
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := run(context.Background(), s, log); err != nil {
		t.Fatal(err)
	}
	ledger := func() map[string]time.Time {
		files, err := filepath.Glob(filepath.Join(dir, "history", "*", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]time.Time{}
		for _, f := range files {
			info, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = info.ModTime()
		}
		return out
	}
	first := ledger()
	if len(first) == 0 {
		t.Fatal("six hours of candles and no signal in the ledger")
	}
	if err := run(context.Background(), s, log); err != nil {
		t.Fatal(err)
	}
	second := ledger()
	if len(second) != len(first) {
		t.Fatalf("the second run changed the ledger: %d entries, then %d", len(first), len(second))
	}
	for f, m := range first {
		if !second[f].Equal(m) {
			t.Fatalf("the second run rewrote %s", f)
		}
	}
}

// TestFileRunKeepsItsLedgerBounded: on File the runner archives its own ledger as it goes
// (the operator cannot reach it): after two days of candles the live ledger holds at most
// twice --history-live-entries files a symbol, and the archive at most
// --history-archived-entries.
func TestFileRunKeepsItsLedgerBounded(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := runner.Settings{StrategyName: "bounded", ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
		Backend: v1.BackendFile, DataDir: dir, Strategy: "indicator", StrategyOptions: map[string]string{},
		Market: "simulated", Seed: 1, Start: start, Speed: 1, Until: start.Add(48 * time.Hour),
		LiveEntries: 4, Retention: domain.Retention{Entries: 6}}
	if err := run(context.Background(), s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	count := func(d domain.Domain) int {
		files, err := filepath.Glob(filepath.Join(dir, string(d), "*", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	live, archived := count(domain.History), count(domain.HistoryArchive)
	if live > 8 || archived == 0 || archived > 6 {
		t.Fatalf("%d live ledger files and %d archived, want at most 8 and 1 to 6", live, archived)
	}
}

// TestFileRunFollowsHandEdits: a runner on File reads its open signal back from its
// folder as it trades. New take profit and stop loss levels written into the signal's
// file by hand, as a user would with an editor, are adopted (the risk profile takes them
// before any candle would have written the signal again); the file removed by hand, as
// with rm, is cancelled with reason user, and not written back.
func TestFileRunFollowsHandEdits(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := runner.Settings{StrategyName: "edited", ExchangeName: "simulated", Symbols: []string{"BTCUSDT"},
		Backend: v1.BackendFile, Strategy: "indicator", StrategyOptions: map[string]string{}, Market: "simulated",
		Seed: 1, Speed: 1, FollowPeriod: 200 * time.Millisecond}
	first := longSignal(t, s, quiet)
	s.DataDir, s.Start, s.Until, s.Speed = t.TempDir(), first.Add(-2*time.Minute), first.Add(3*time.Hour), 60
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, s, quiet) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the runner: %v", err)
		}
	}()

	signalFile, open := openSignalFile(t, s.DataDir)
	edited := open
	edited.PriceTakeProfit = open.PriceOpen + (open.PriceTakeProfit-open.PriceOpen)*1.1
	edited.PriceStopLoss = open.PriceOpen + (open.PriceStopLoss-open.PriceOpen)*1.1
	data, err := json.Marshal(&edited)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(signalFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	waitAdopted(t, s.DataDir, signalFile, &edited)
	if err := os.Remove(signalFile); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("signal %s, removed by hand, is not cancelled in the ledger: %+v", open.ID, fileLedger(t, s.DataDir))
		}
		if e := fileLedger(t, s.DataDir)[open.ID]; e != nil && e.Has(runner.KindCancel) {
			if ev := e.Events[len(e.Events)-1]; ev.Reason != runner.ReasonUser || e.Has(runner.KindClose) {
				t.Fatalf("the removed signal's ledger entry: %+v, want a cancel of reason %s", e, runner.ReasonUser)
			}
			break
		}
	}
	time.Sleep(time.Second) // five follow periods, for a write-back to land
	var back v1.Signal
	if data, err := os.ReadFile(signalFile); err == nil && json.Unmarshal(data, &back) == nil && back.ID == open.ID {
		t.Fatalf("the cancelled signal was written back: %s", data)
	}
}

// longSignal runs s from 2026-11-01 for a day, straight through, and returns when its
// feed opens the first signal that lives 15 minutes or more (15 seconds of a run at speed
// 60).
func longSignal(t *testing.T, s runner.Settings, log *slog.Logger) time.Time {
	t.Helper()
	s.DataDir, s.Start = t.TempDir(), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s.Until = s.Start.Add(24 * time.Hour)
	if err := run(t.Context(), s, log); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, e := range fileLedger(t, s.DataDir) {
		opened, ended := time.UnixMilli(e.Events[0].At), time.UnixMilli(e.Events[len(e.Events)-1].At)
		if ended.Sub(opened) >= 15*time.Minute && (first.IsZero() || opened.Before(first)) {
			first = opened
		}
	}
	if first.IsZero() {
		t.Fatal("a day of candles and no signal that lives 15 minutes")
	}
	return first
}

// openSignalFile waits for a File runner's folder dir to hold an open signal, and returns
// its file and value.
func openSignalFile(t *testing.T, dir string) (string, v1.Signal) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no signal opened")
		}
		files, _ := filepath.Glob(filepath.Join(dir, string(domain.Signal), "*", "BTCUSDT.json"))
		for _, f := range files {
			var open v1.Signal
			if data, err := os.ReadFile(f); err == nil && json.Unmarshal(data, &open) == nil && open.ID != "" {
				return f, open
			}
		}
	}
}

// waitAdopted waits for the runner to adopt the levels of edited, written into file by
// hand, into its risk profile. The runner may have rewritten the file (a new _peak)
// between the test's read and its edit, and refused the edit as one of another field:
// the levels are then edited again into what the file holds now.
func waitAdopted(t *testing.T, dir, file string, edited *v1.Signal) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !riskTakes(t, dir, edited.PriceTakeProfit); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the risk profile never took the take profit edited by hand (%v)", edited.PriceTakeProfit)
		}
		var now v1.Signal
		if data, err := os.ReadFile(file); err == nil && json.Unmarshal(data, &now) == nil &&
			now.ID == edited.ID && now.PriceTakeProfit != edited.PriceTakeProfit {
			now.PriceTakeProfit, now.PriceStopLoss = edited.PriceTakeProfit, edited.PriceStopLoss
			if data, err = json.Marshal(&now); err == nil {
				_ = os.WriteFile(file, data, 0o644)
			}
		}
	}
}

// riskTakes reports whether a position of the risk profiles in a File runner's folder has
// take profit tp.
func riskTakes(t *testing.T, dir string, tp float64) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, string(domain.Risk), "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		var positions v1.RiskPositions
		if data, err := os.ReadFile(f); err == nil && json.Unmarshal(data, &positions) == nil {
			for _, p := range positions {
				if p.Position.PriceTakeProfit == tp {
					return true
				}
			}
		}
	}
	return false
}

// fileLedger reads the live ledger files of a File runner's folder, as a user would, by
// signal id.
func fileLedger(t *testing.T, dir string) map[string]*domain.HistoryEntry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, string(domain.History), "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*domain.HistoryEntry{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // moved to the archive meanwhile
		}
		var e domain.HistoryEntry
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(e.Events) > 0 {
			out[strings.TrimSuffix(filepath.Base(f), ".json")] = &e
		}
	}
	return out
}
