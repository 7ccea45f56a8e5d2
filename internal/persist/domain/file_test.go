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

package domain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// writeTree lays out files at literal paths under base.
func writeTree(t *testing.T, base string, files map[string][]byte) {
	t.Helper()
	for path, data := range files {
		full := filepath.Join(base, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFileBackendReadsABacktestKitFolder: a data folder laid out by backtest-kit (the
// paths written out in the test) is read completely through the domain layer.
func TestFileBackendReadsABacktestKitFolder(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	base := t.TempDir()
	files := map[string][]byte{}
	for path, name := range backtestKitTree {
		files[path] = fixture(t, name)
	}
	writeTree(t, base, files)

	p := domain.New(domain.FileBackend(base))
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "trace-immediate", "trace-exchange")
	ks := domain.StrategyKey("ETHUSDT", "trace-scheduled", "trace-exchange")
	const id = "1af31ee8-c897-4000-a4dc-55369e459000"

	sig, err := p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(sig)).To(MatchJSON(fixture(t, "signal-opened.json")))
	sched, err := p.ReadSchedule(ctx, ks)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(sched)).To(MatchJSON(fixture(t, "schedule-scheduled.json")))
	snap, err := p.ReadSnapshot(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(snap)).To(MatchJSON(fixture(t, "strategy-snapshot.json")))
	risk, err := p.ReadRisk(ctx, domain.RiskKey("default", "trace-exchange"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(risk)).To(MatchJSON(fixture(t, "risk-positions.json")))
	partial, err := p.ReadPartial(ctx, k, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(partial)).To(MatchJSON(fixture(t, "partial.json")))
	be, err := p.ReadBreakeven(ctx, k, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(be)).To(MatchJSON(fixture(t, "breakeven.json")))
}

// TestFileBackendMovesEarlierFolders: folders an earlier version of the project named
// "<symbol>%3A<strategy>%3A<exchange>" are moved to backtest-kit's names at first use, and
// logged; a name that cannot be mapped is reported and left.
func TestFileBackendMovesEarlierFolders(t *testing.T) {
	g := NewWithT(t)
	base := t.TempDir()
	signal := fixture(t, "signal-opened.json")
	writeTree(t, base, map[string][]byte{
		"signal/BTCUSDT%3Atrace-immediate%3Atrace-exchange/BTCUSDT.json": signal,
		"risk/default%3Atrace-exchange/positions.json":                   fixture(t, "risk-positions.json"),
		"signal/not%3Aa-context/BTCUSDT.json":                            signal,
		"signal/~0123456789abcdef0123456789abcdef01234567/BTCUSDT.json":  signal, // a hashed long name
	})
	var logged bytes.Buffer
	g.Expect(domain.MoveLegacyFolders(base, slog.New(slog.NewTextHandler(&logged, nil)))).To(Succeed())

	for _, moved := range []string{"signal/BTCUSDT_trace-immediate_trace-exchange/BTCUSDT.json",
		"risk/default_trace-exchange/positions.json"} {
		g.Expect(os.ReadFile(filepath.Join(base, moved))).NotTo(BeEmpty(), moved)
	}
	g.Expect(filepath.Join(base, "signal/BTCUSDT%3Atrace-immediate%3Atrace-exchange")).NotTo(BeADirectory())
	g.Expect(filepath.Join(base, "signal/not%3Aa-context/BTCUSDT.json")).To(BeARegularFile(), "never dropped")
	g.Expect(logged.String()).To(And(ContainSubstring("Moved a state folder of an earlier version"),
		ContainSubstring("Cannot map a state folder of an earlier version"), ContainSubstring("not%3Aa-context"),
		ContainSubstring("~0123456789abcdef0123456789abcdef01234567")))
	g.Expect(filepath.Join(base, "signal/~0123456789abcdef0123456789abcdef01234567/BTCUSDT.json")).
		To(BeARegularFile(), "never dropped")

	p := domain.New(domain.FileBackend(base))
	defer func() { _ = p.Close() }()
	sig, err := p.ReadSignal(context.Background(), domain.StrategyKey("BTCUSDT", "trace-immediate", "trace-exchange"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sig).NotTo(BeNil())
	g.Expect(sig.ID).To(Equal("1af31ee8-c897-4000-a4dc-55369e459000"))
}

func TestFileFolderKeepsNamesInsideTheDomainFolder(t *testing.T) {
	g := NewWithT(t)
	for _, sym := range []string{"BTC/USDT", "../..", "A/../.."} {
		name, err := domain.FileFolder(domain.Signal, domain.StrategyKey(sym, "s", "e"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(name).NotTo(ContainSubstring("/"), sym)
		g.Expect(filepath.Clean(filepath.Join("base", "signal", name))).To(HavePrefix("base/signal/"), sym)
	}
	name, err := domain.FileFolder(domain.Risk, domain.RiskKey("my-risk", "binance"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(name).To(Equal("my-risk_binance"))
}

// TestFileBackendLeavesAFolderAnotherRunnerWrites: an earlier version's runner still
// holding its folder's lock keeps its folder where it writes it, and the new runner does
// not start beside it (ErrLocked, as for two runners of one folder).
func TestFileBackendLeavesAFolderAnotherRunnerWrites(t *testing.T) {
	g := NewWithT(t)
	base := t.TempDir()
	old := "signal/BTCUSDT%3Atrace-immediate%3Atrace-exchange"
	writeTree(t, base, map[string][]byte{old + "/BTCUSDT.json": fixture(t, "signal-opened.json")})
	writer := filestore.New(filepath.Join(base, old))
	_, err := writer.Init(context.Background(), true)
	g.Expect(err).NotTo(HaveOccurred())

	err = domain.MoveLegacyFolders(base, slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.Expect(errors.Is(err, persist.ErrLocked)).To(BeTrue(), "got %v", err)
	g.Expect(filepath.Join(base, old, "BTCUSDT.json")).To(BeARegularFile())
	p := domain.New(domain.FileBackend(base))
	_, err = p.ReadSignal(context.Background(), domain.StrategyKey("BTCUSDT", "trace-immediate", "trace-exchange"))
	g.Expect(errors.Is(err, persist.ErrLocked)).To(BeTrue(), "got %v", err)
	_ = p.Close()

	g.Expect(writer.Close()).To(Succeed()) // the old runner stops: the folder moves
	g.Expect(domain.MoveLegacyFolders(base, slog.New(slog.NewTextHandler(io.Discard, nil)))).To(Succeed())
	g.Expect(filepath.Join(base, "signal/BTCUSDT_trace-immediate_trace-exchange/BTCUSDT.json")).To(BeARegularFile())
}

// TestFileBackendRefusesStateInTwoFolders: when an earlier version's folder and today's
// both hold values, neither is touched and the backend says so; an empty folder under
// today's name (only its lock) makes way.
func TestFileBackendRefusesStateInTwoFolders(t *testing.T) {
	g := NewWithT(t)
	base := t.TempDir()
	old, today := "signal/BTCUSDT%3Atrace-immediate%3Atrace-exchange", "signal/BTCUSDT_trace-immediate_trace-exchange"
	writeTree(t, base, map[string][]byte{old + "/BTCUSDT.json": fixture(t, "signal-opened.json"),
		today + "/BTCUSDT.json": []byte("null")})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := domain.MoveLegacyFolders(base, quiet)
	g.Expect(errors.Is(err, domain.ErrFolderConflict)).To(BeTrue(), "got %v", err)
	g.Expect(filepath.Join(base, old, "BTCUSDT.json")).To(BeARegularFile())
	g.Expect(filepath.Join(base, today, "BTCUSDT.json")).To(BeARegularFile())

	g.Expect(os.Remove(filepath.Join(base, today, "BTCUSDT.json"))).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(base, today, ".lock"), nil, 0o600)).To(Succeed())
	g.Expect(domain.MoveLegacyFolders(base, quiet)).To(Succeed())
	g.Expect(os.ReadFile(filepath.Join(base, today, "BTCUSDT.json"))).To(Equal(fixture(t, "signal-opened.json")))
}
