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
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/strategy"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// c is one candle of a test, high, low, close and volume; its open does not count.
type c struct{ h, l, cl, v float64 }

// flat is n candles at price with volume 1.
func flat(n int, price float64) []c {
	out := make([]c, n)
	for i := range out {
		out[i] = c{price, price, price, 1}
	}
	return out
}

func seq(parts ...[]c) []c {
	var out []c
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// script proposes its signals at the candles (by index) they are keyed by.
type script map[int]strategy.Proposal

func (script) Lookback() int { return 0 }

func (s script) Propose(_ context.Context, _ string, candles []market.Candle) (*strategy.Proposal, error) {
	i := int(candles[len(candles)-1].Time.Sub(lifecycleT0) / time.Minute)
	if p, ok := s[i]; ok {
		return &p, nil
	}
	return nil, nil
}

var lifecycleT0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// ev is a ledger event expected at a candle (by index): the tick at that candle's close.
type ev struct {
	kind   string
	candle int
	price  float64
	reason string
	pnl    float64 // a close's pnlPercentage
}

// TestLiveLifecycle runs the engine over candles written out here, all at once (the
// catch-up after downtime is the same candle-by-candle loop), and checks each signal's
// ledger against backtest-kit's live rules; the numbers marked "backtest-kit" are its
// own toProfitLossDto's (see internal/live's tests).
func TestLiveLifecycle(t *testing.T) {
	long := func(tp, sl float64, minutes int64) strategy.Proposal {
		return strategy.Proposal{Position: v1.PositionLong, TakeProfit: tp, StopLoss: sl, Minutes: &minutes}
	}
	limit := func(entry, tp, sl float64) strategy.Proposal {
		return strategy.Proposal{Position: v1.PositionLong, PriceOpen: entry, TakeProfit: tp, StopLoss: sl,
			Minutes: new(int64(60))}
	}
	for _, tc := range []struct {
		name    string
		candles []c
		script  script
		want    []ev
	}{{
		// CHECK_PENDING_SIGNAL_COMPLETION_FN: take profit on the average price only.
		name: "a wick through take profit books nothing; the average reaching it closes at exactly TP",
		candles: seq(flat(5, 100),
			[]c{{102, 99.9, 100, 1}},       // 5: a wick to 102; the average stays near 100
			[]c{{102.5, 101.9, 102, 100}}), // 6: heavy trade at 102: the average is past 101.5
		script: script{4: long(101.5, 98.5, 60)},
		want: []ev{{runner.KindOpen, 4, 100, "", 0},
			{runner.KindClose, 6, 101.5, live.CloseTakeProfit, 1.0959055944055986}}, // backtest-kit
	}, {
		// The stop loss is judged on the last candle's wick, before take profit.
		name:    "a wick touching the stop loss closes at exactly SL",
		candles: seq(flat(5, 100), []c{{100.2, 98.4, 100, 1}}),
		script:  script{4: long(101.5, 98.5, 60)},
		want: []ev{{runner.KindOpen, 4, 100, "", 0},
			{runner.KindClose, 5, 98.5, live.CloseStopLoss, -1.8951063936063894}}, // backtest-kit
	}, {
		// Time first: minuteEstimatedTime after pendingAt, at the average price.
		name:    "expiry closes at the average price",
		candles: flat(12, 100),
		script:  script{4: long(101.5, 98.5, 3)},
		want: []ev{{runner.KindOpen, 4, 100, "", 0},
			{runner.KindClose, 7, 100, live.CloseTimeExpired, -0.39960039960038823}}, // the fixture's _fall
	}, {
		// GET_SIGNAL_FN: a missing minuteEstimatedTime is CC_MAX_SIGNAL_LIFETIME_MINUTES.
		name:    "no minuteEstimatedTime: expires after 1440 minutes, not never",
		candles: flat(1450, 100),
		script:  script{4: {Position: v1.PositionLong, TakeProfit: 101.5, StopLoss: 98.5}},
		want: []ev{{runner.KindOpen, 4, 100, "", 0},
			{runner.KindClose, 4 + 1440, 100, live.CloseTimeExpired, -0.39960039960038823}},
	}, {
		// CHECK_SCHEDULED_SIGNAL_PRICE_ACTIVATION_FN: live activation is on the average.
		name: "a limit entry waits through a wick and activates on the average, at its own price",
		candles: seq(flat(5, 100),
			[]c{{100, 98.9, 99.8, 1}}, // 5: a wick below 99
			[]c{{99, 98, 98.5, 50}},   // 6: the average falls below 99
			flat(3, 99.5)),
		script: script{4: limit(99, 101, 97)},
		want:   []ev{{runner.KindSchedule, 4, 99, "", 0}, {runner.KindOpen, 6, 99, "", 0}},
	}, {
		// A cancel records the average price of its tick: ((4×100)×1 + 96×100) / 104.
		name:    "the stop loss reached before the entry cancels it: price_reject",
		candles: seq(flat(5, 100), []c{{97, 95, 96, 100}}),
		script:  script{4: limit(99, 101, 97)},
		want: []ev{{runner.KindSchedule, 4, 99, "", 0},
			{runner.KindCancel, 5, 10000.0 / 104, live.CancelPriceReject, 0}},
	}, {
		// CHECK_SCHEDULED_SIGNAL_TIMEOUT_FN: CC_SCHEDULE_AWAIT_MINUTES after scheduledAt.
		name:    "a limit entry never reached is cancelled after 120 minutes: timeout",
		candles: flat(130, 100),
		script:  script{4: limit(99, 101, 97)},
		want:    []ev{{runner.KindSchedule, 4, 99, "", 0}, {runner.KindCancel, 4 + 120, 100, live.CancelTimeout, 0}},
	}, {
		// GET_SIGNAL_FN: a limit the price has already passed opens at once, at the limit.
		name:    "a limit entry already reached opens at once at the limit price",
		candles: flat(6, 100),
		script:  script{4: limit(100.2, 102, 98)},
		want:    []ev{{runner.KindOpen, 4, 100.2, "", 0}},
	}, {
		// The short mirror: stop loss by the wick up, take profit by the average down.
		name: "short: a wick down through take profit books nothing; a wick up to the stop loss closes at it",
		candles: seq(flat(5, 2500),
			[]c{{2500, 2440, 2500, 1}},  // 5: a wick below take profit 2450
			[]c{{2541, 2499, 2500, 1}}), // 6: a wick up through stop loss 2540.25
		script: script{4: {Position: v1.PositionShort, TakeProfit: 2450, StopLoss: 2540.25, Minutes: new(int64(60))}},
		want: []ev{{runner.KindOpen, 4, 2500, "", 0},
			{runner.KindClose, 6, 2540.25, live.CloseStopLoss, -2.0152368468468294}}, // backtest-kit
	}, {
		name:    "short: the average down to take profit closes at exactly TP",
		candles: seq(flat(5, 2500), []c{{2445, 2435, 2440, 100}}),
		script:  script{4: {Position: v1.PositionShort, TakeProfit: 2450, StopLoss: 2540.25, Minutes: new(int64(60))}},
		want: []ev{{runner.KindOpen, 4, 2500, "", 0},
			{runner.KindClose, 5, 2450, live.CloseTakeProfit, 1.605607607607615}}, // backtest-kit
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := runLifecycle(t, tc.candles, tc.script)
			if len(got) != len(tc.want) {
				t.Fatalf("ledger %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				if g := got[i]; g != w {
					t.Errorf("event %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

// runLifecycle runs one symbol over candles from lifecycleT0 and returns its ledger.
func runLifecycle(t *testing.T, candles []c, s script) []ev {
	t.Helper()
	p := runLifecycleState(t, candles, s)
	var out []ev
	for _, h := range historyOf(t, p, domain.StrategyKey("X", "s", "e")) {
		for _, x := range h.Events {
			e := ev{kind: x.Kind, candle: int(time.UnixMilli(x.At).Sub(lifecycleT0) / time.Minute), price: x.Price,
				reason: x.Reason}
			if x.PnL != nil {
				e.pnl = x.PnL.PnlPercentage
			}
			out = append(out, e)
		}
	}
	return out
}

// runLifecycleState runs one symbol over candles from lifecycleT0 and returns its state.
func runLifecycleState(t *testing.T, candles []c, s script) *domain.Persistence {
	t.Helper()
	return runLifecycleOn(t, domain.MemoryBackend(), candles, s)
}

// runLifecycleOn is runLifecycleState with the state on backend b.
func runLifecycleOn(t *testing.T, b domain.Backend, candles []c, s script) *domain.Persistence {
	t.Helper()
	var csv strings.Builder
	csv.WriteString("timestamp,open,high,low,close,volume\n")
	for i, k := range candles {
		fmt.Fprintf(&csv, "%d,%v,%v,%v,%v,%v\n", lifecycleT0.Add(time.Duration(i)*time.Minute).UnixMilli(),
			k.cl, k.h, k.l, k.cl, k.v)
	}
	src, err := market.ReadCSV(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := domain.New(b)
	e := runner.New(runner.Config{StrategyName: "s", ExchangeName: "e", Symbols: []string{"X"}, Source: src,
		Strategy: s, Persist: p, Limits: v1.DefaultSignalLimits, Start: lifecycleT0,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Step(ctx, lifecycleT0.Add(time.Duration(len(candles))*time.Minute)); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLiveProgressIsStored: an open signal's progress on a tick (ClientPartial's levels,
// ClientBreakeven, RETURN_PENDING_SIGNAL_ACTIVE_FN's _peak) is what the store holds.
func TestLiveProgressIsStored(t *testing.T) {
	ctx := context.Background()
	candles := seq(flat(5, 100), []c{{103.75, 103.25, 103.5, 100}})
	p := runLifecycleState(t, candles, script{4: {Position: v1.PositionLong, TakeProfit: 110, StopLoss: 95,
		Minutes: new(int64(60))}})
	k := domain.StrategyKey("X", "s", "e")
	sig, err := p.ReadSignal(ctx, k)
	if err != nil || sig == nil {
		t.Fatalf("no open signal: %v", err)
	}
	const avg = (4*100 + 103.5*100) / 104.0 // typical prices, exact in binary: 100 ×1 four times, 103.5 ×100
	if sig.Peak == nil || sig.Peak.Price != avg || sig.Peak.Timestamp != lifecycleT0.Add(6*time.Minute).UnixMilli() {
		t.Errorf("_peak %+v: want the average %v at the tick", sig.Peak, avg)
	}
	partial, err := p.ReadPartial(ctx, k, sig.ID)
	if err != nil {
		t.Fatal(err)
	}
	// (avg-100)/(110-100) is a little over 33 %: three levels at once.
	if got := partial[sig.ID].ProfitLevels; fmt.Sprint(got) != "[10 20 30]" {
		t.Errorf("profit levels %v, want [10 20 30]", got)
	}
	be, err := p.ReadBreakeven(ctx, k, sig.ID)
	if err != nil || !be[sig.ID].Reached {
		t.Errorf("breakeven %v, %v: 3 %% up is past the 0.6 %% threshold", be, err)
	}
}

// TestWritesCarryTheCandleTime: the engine's writes of risk positions, partial levels and
// breakeven carry the time of the candle they were decided on (backtest-kit's when, which a
// database keeps), not the wall clock's.
func TestWritesCarryTheCandleTime(t *testing.T) {
	var recorded testenv.WriteTimes
	memory := domain.MemoryBackend()
	b := func(ctx context.Context, d domain.Domain, k domain.Key) (driver.Driver, error) {
		drv, err := memory(ctx, d, k)
		return recorded.Wrap(string(d), drv), err
	}
	candles := seq(flat(5, 100), []c{{103.75, 103.25, 103.5, 100}})
	runLifecycleOn(t, b, candles, script{4: {Position: v1.PositionLong, TakeProfit: 110, StopLoss: 95,
		Minutes: new(int64(60))}})
	end := lifecycleT0.Add(time.Duration(len(candles)) * time.Minute)
	for _, d := range []domain.Domain{domain.Risk, domain.Partial, domain.Breakeven} {
		times := recorded.Of(string(d))
		if len(times) == 0 {
			t.Errorf("no %s write: the test proves nothing", d)
		}
		for _, w := range times {
			if w.Before(lifecycleT0) || w.After(end) {
				t.Errorf("a %s write carries %s, not a candle's time in [%s, %s]", d, w, lifecycleT0, end)
			}
		}
	}
}

// TestInflightProgressOfARemovedSignalIsDropped: a progress write (new _peak) left inflight
// by a killed runner does not bring back a signal a person removed while it was down, and
// keeps a hand edit of one still there.
func TestInflightProgressOfARemovedSignalIsDropped(t *testing.T) {
	ctx := context.Background()
	k := domain.StrategyKey("X", "s", "e")
	for _, removed := range []bool{true, false} {
		p := runLifecycleState(t, flat(6, 100), script{4: {Position: v1.PositionLong, TakeProfit: 110, StopLoss: 95,
			Minutes: new(int64(60))}})
		sig, err := p.ReadSignal(ctx, k)
		if err != nil || sig == nil {
			t.Fatalf("no open signal: %v", err)
		}
		// What a runner killed in the middle of a progress action leaves in the snapshot.
		moved := sig.DeepCopy()
		moved.Peak = &v1.PriceExtreme{Price: 104, Timestamp: sig.PendingAt + 60_000}
		leaveInflight(t, p, k, map[string]any{"kind": runner.KindLevels, "candle": sig.PendingAt,
			"row": moved, "moved": true, "levels": v1.PartialData{sig.ID: {ProfitLevels: []float64{10, 20, 30, 40},
				LossLevels: []float64{}}}})
		edited := sig.DeepCopy()
		edited.PriceTakeProfit = 111 // by hand, while the runner was down
		if removed {
			edited = nil
		}
		if err := p.WriteSignal(ctx, k, edited); err != nil {
			t.Fatal(err)
		}

		e := runner.New(runner.Config{StrategyName: "s", ExchangeName: "e", Symbols: []string{"X"},
			Source: market.Simulated{Seed: 1}, Strategy: script{}, Persist: p, Limits: v1.DefaultSignalLimits,
			Start: lifecycleT0, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err := e.Restore(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := p.ReadSignal(ctx, k)
		switch {
		case err != nil:
			t.Fatal(err)
		case removed && got != nil:
			t.Errorf("the removed signal came back: %+v", got)
		case !removed && (got == nil || got.PriceTakeProfit != 111 || got.Peak == nil || got.Peak.Price != 104):
			t.Errorf("want the hand edit kept and the new _peak written, got %+v", got)
		}
	}
}

// leaveInflight records action in k's snapshot as inflight, as a runner killed in the
// middle of it leaves it.
func leaveInflight(t *testing.T, p *domain.Persistence, k domain.Key, action map[string]any) {
	t.Helper()
	ctx := context.Background()
	inflight, err := json.Marshal(action)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := p.ReadSnapshot(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	snap.Extra["inflight"] = apiextensionsv1.JSON{Raw: inflight}
	if err := p.WriteSnapshot(ctx, k, snap); err != nil {
		t.Fatal(err)
	}
}
