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
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	. "github.com/onsi/gomega"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

func fixture(t *testing.T, name string) []byte { return testenv.Fixture(t, name) }

func decode[T any](t *testing.T, name string) T { return testenv.FixtureValue[T](t, name) }

// The files backtest-kit 19.5.0 keeps the fixtures' contexts in, written out by hand (see
// the reference's "On disk, exactly"): never computed with the project's code.
const (
	signalFile    = "signal/BTCUSDT_trace-immediate_trace-exchange/BTCUSDT.json"
	scheduleFile  = "schedule/ETHUSDT_trace-scheduled_trace-exchange/ETHUSDT.json"
	strategyFile  = "strategy/BTCUSDT_trace-immediate_trace-exchange/strategy.json"
	riskFile      = "risk/default_trace-exchange/positions.json"
	partialFile   = "partial/BTCUSDT_trace-immediate_trace-exchange/1af31ee8-c897-4000-a4dc-55369e459000.json"
	breakevenFile = "breakeven/BTCUSDT_trace-immediate_trace-exchange/1af31ee8-c897-4000-a4dc-55369e459000.json"
)

// backtestKitTree maps each literal path to the fixture it holds.
var backtestKitTree = map[string]string{
	signalFile: "signal-opened.json", scheduleFile: "schedule-scheduled.json", strategyFile: "strategy-snapshot.json",
	riskFile: "risk-positions.json", partialFile: "partial.json", breakevenFile: "breakeven.json",
}

// TestFixturesRoundTripThroughFiles writes every fixture through its domain, checks the
// bytes on disk, and reads it back from a fresh process's view (a new Persistence).
func TestFixturesRoundTripThroughFiles(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	base := t.TempDir()
	defer syscall.Umask(syscall.Umask(0o022)) // the modes below are before the umask
	p := domain.New(domain.FileBackend(base))

	opened := decode[*v1.Signal](t, "signal-opened.json")
	scheduled := decode[*v1.Signal](t, "schedule-scheduled.json")
	k := domain.StrategyKey(opened.Symbol, opened.StrategyName, opened.ExchangeName)
	ks := domain.StrategyKey(scheduled.Symbol, scheduled.StrategyName, scheduled.ExchangeName)
	rk := domain.RiskKey("default", "trace-exchange")

	g.Expect(p.WriteSignal(ctx, k, opened)).To(Succeed())
	g.Expect(p.WriteSchedule(ctx, ks, scheduled)).To(Succeed())
	g.Expect(p.WriteSnapshot(ctx, k, decode[*v1.StrategySnapshot](t, "strategy-snapshot.json"))).To(Succeed())
	g.Expect(p.WriteRisk(ctx, rk, decode[v1.RiskPositions](t, "risk-positions.json"))).To(Succeed())
	g.Expect(p.WritePartial(ctx, k, opened.ID, decode[v1.PartialData](t, "partial.json"))).To(Succeed())
	g.Expect(p.WriteBreakeven(ctx, k, opened.ID, decode[v1.BreakevenData](t, "breakeven.json"))).To(Succeed())
	g.Expect(p.Close()).To(Succeed())

	for path, name := range backtestKitTree {
		data, err := os.ReadFile(filepath.Join(base, path))
		g.Expect(err).NotTo(HaveOccurred(), name)
		g.Expect(string(data)).To(Equal(string(testenv.FixtureAsWritten(t, name))), "%s is not byte for byte what backtest-kit writes", name)
	}
	// Nothing else but the folders' lock files, which backtest-kit does not list (*.json).
	var files []string
	g.Expect(filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if err != nil || path == base {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, path)
		switch {
		case e.IsDir():
			g.Expect(info.Mode().Perm()).To(Equal(fs.FileMode(0o755)), rel)
		case filepath.Ext(rel) == ".json":
			g.Expect(info.Mode().Perm()).To(Equal(fs.FileMode(0o644)), rel)
			files = append(files, rel)
		default:
			g.Expect(filepath.Base(rel)).To(Equal(".lock"), rel)
		}
		return nil
	})).To(Succeed())
	g.Expect(files).To(ConsistOf(slices.Collect(maps.Keys(backtestKitTree))))

	again := domain.New(domain.FileBackend(base))
	defer func() { _ = again.Close() }()
	sig, err := again.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(sig)).To(MatchJSON(fixture(t, "signal-opened.json")))
	risk, err := again.ReadRisk(ctx, rk)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(json.Marshal(risk)).To(MatchJSON(fixture(t, "risk-positions.json")))
	partial, err := again.ReadPartial(ctx, k, opened.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(partial[opened.ID].ProfitLevels).To(Equal([]float64{10}))
}

func TestNullClearsAndEmptyReadsAsNone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	base := t.TempDir()
	p := domain.New(domain.FileBackend(base))
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "s", "e")

	none, err := p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(none).To(BeNil())

	sig := decode[*v1.Signal](t, "signal-opened.json")
	sig.MinuteEstimatedTime = nil // unbounded
	g.Expect(p.WriteSignal(ctx, k, sig)).To(Succeed())
	back, err := p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back.MinuteEstimatedTime).To(BeNil())
	data, _ := os.ReadFile(filepath.Join(base, "signal/BTCUSDT_s_e/BTCUSDT.json"))
	g.Expect(string(data)).To(ContainSubstring(`"minuteEstimatedTime":null`))

	g.Expect(p.WriteSignal(ctx, k, nil)).To(Succeed())
	data, _ = os.ReadFile(filepath.Join(base, "signal/BTCUSDT_s_e/BTCUSDT.json"))
	g.Expect(string(data)).To(Equal("null"), "a closed signal is written as null, as backtest-kit does")
	cleared, err := p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cleared).To(BeNil())

	g.Expect(p.WritePartial(ctx, k, "sig", nil)).To(Succeed())
	data, _ = os.ReadFile(filepath.Join(base, "partial/BTCUSDT_s_e/sig.json"))
	g.Expect(string(data)).To(Equal("{}"))
	g.Expect(p.WriteRisk(ctx, domain.RiskKey("r", "e"), nil)).To(Succeed())
	data, _ = os.ReadFile(filepath.Join(base, "risk/r_e/positions.json"))
	g.Expect(string(data)).To(Equal("[]"))
}

func TestOneMemoizedStorePerContext(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	a := domain.NewAdapter[int](domain.Signal, domain.MemoryBackend())
	k1 := domain.StrategyKey("BTCUSDT", "s", "e")
	k2 := domain.StrategyKey("ETHUSDT", "s", "e")

	var wg sync.WaitGroup
	got := make([]*persist.Store[int], 32)
	for i := range got {
		wg.Go(func() {
			s, err := a.Store(ctx, k1)
			if err == nil {
				got[i] = s
			}
		})
	}
	wg.Wait()
	for _, s := range got {
		g.Expect(s).NotTo(BeNil())
		g.Expect(s).To(BeIdenticalTo(got[0]), "concurrent first uses must share one instance")
	}
	other, err := a.Store(ctx, k2)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other).NotTo(BeIdenticalTo(got[0]))
}

func TestSwapBackend(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	k := domain.StrategyKey("BTCUSDT", "s", "e")
	first, second := domain.MemoryBackend(), domain.MemoryBackend()
	p := domain.New(first)
	sig := decode[*v1.Signal](t, "signal-opened.json")
	g.Expect(p.WriteSignal(ctx, k, sig)).To(Succeed())

	g.Expect(p.Use(second)).To(Succeed())
	got, err := p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeNil(), "the new backend holds nothing yet")

	g.Expect(p.Use(first)).To(Succeed())
	got, err = p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.ID).To(Equal(sig.ID))

	g.Expect(p.Use(domain.NopBackend())).To(Succeed())
	g.Expect(p.WriteSignal(ctx, k, sig)).To(Succeed())
	got, err = p.ReadSignal(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeNil(), "the no-op backend forgets writes")
}

func TestMissingKeyPartsAreNamed(t *testing.T) {
	g := NewWithT(t)
	p := domain.New(domain.MemoryBackend())
	err := p.WriteSignal(context.Background(), domain.StrategyKey("BTCUSDT", "", ""), nil)
	g.Expect(err).To(MatchError(ContainSubstring("strategyName, exchangeName must not be empty")))
	_, err = p.ReadRisk(context.Background(), domain.RiskKey("", "e"))
	g.Expect(err).To(MatchError(ContainSubstring("riskName must not be empty")))
}

func TestHistoryRecordsEachEventOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := domain.New(domain.MemoryBackend())
	sig := decode[*v1.Signal](t, "signal-opened.json")
	k := domain.StrategyKey(sig.Symbol, sig.StrategyName, sig.ExchangeName)
	opened := domain.HistoryEvent{Kind: "opened", At: 1, Price: 100}
	g.Expect(p.RecordHistory(ctx, k, sig, sig.ID, opened)).To(Succeed())
	g.Expect(p.RecordHistory(ctx, k, sig, sig.ID, opened)).To(Succeed(), "a restart records it again")
	g.Expect(p.RecordHistory(ctx, k, nil, sig.ID, domain.HistoryEvent{Kind: "closed", At: 2, Price: 101.5,
		Reason: "take_profit"})).To(Succeed())
	s, err := p.History.Store(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	entry, err := s.Read(ctx, sig.ID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entry.Events).To(HaveLen(2))
	g.Expect(entry.Signal.ID).To(Equal(sig.ID))
	g.Expect(entry.Has("closed")).To(BeTrue())
	g.Expect([]int{entry.Events[0].Seq, entry.Events[1].Seq}).To(Equal([]int{1, 2}))
}

// TestHistoryShowsASecondClose: a close that differs from the one recorded (another
// candle, another price) is appended, not dropped, so that a signal closed twice shows in
// the ledger the crash and restart tests compare.
func TestHistoryShowsASecondClose(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := domain.New(domain.MemoryBackend())
	k := domain.StrategyKey("BTCUSDT", "s", "e")
	for _, ev := range []domain.HistoryEvent{{Kind: "opened", At: 1, Price: 100},
		{Kind: "closed", At: 2, Price: 101.5, Reason: "take_profit"},
		{Kind: "closed", At: 2, Price: 101.5, Reason: "take_profit"}, // the same close, written again
		{Kind: "closed", At: 3, Price: 99, Reason: "stop_loss"}} {
		g.Expect(p.RecordHistory(ctx, k, nil, "sig", ev)).To(Succeed())
	}
	s, err := p.History.Store(ctx, k)
	g.Expect(err).NotTo(HaveOccurred())
	entry, err := s.Read(ctx, "sig")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(entry.Events).To(HaveLen(3))
	g.Expect(entry.Events[2]).To(Equal(domain.HistoryEvent{Kind: "closed", At: 3, Price: 99, Reason: "stop_loss", Seq: 3}))
}
