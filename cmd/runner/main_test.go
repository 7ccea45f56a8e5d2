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

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/runner"
)

// TestFileRunStopsAtUntilAndResumes runs six simulated hours on the File backend, then
// again: the second run finds every candle done and changes no ledger entry.
func TestFileRunStopsAtUntilAndResumes(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := runner.Settings{StrategyName: "demo", ExchangeName: "simulated", Symbols: []string{"BTCUSDT", "ETHUSDT"},
		Backend: v1.BackendFile, DataDir: dir, Strategy: "indicator", StrategyOptions: map[string]string{},
		Market: "simulated", Seed: 1, Start: start, Speed: 1, Until: start.Add(6 * time.Hour)}
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
