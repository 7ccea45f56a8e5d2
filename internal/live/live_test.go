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

package live_test

import (
	"errors"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/market"
)

// The expected numbers in this file marked "backtest-kit" were computed by backtest-kit
// 19.5.0's own functions (toProfitLossDto, getEffectivePriceOpen, getLiquidationPrice,
// GET_AVG_PRICE_FN, taken from its published bundle and run under node by
// hack/backtest-kit-values.mjs); the others are the fixtures it wrote. They are compared
// with ==: the port does the library's arithmetic in the library's order.

var params = live.Defaults()

func row(pos v1.Position, open float64, fills ...v1.EntryFill) *v1.Signal {
	s := &v1.Signal{Position: pos, PriceOpen: open, Cost: new(100.0), Multiplier: new(1.0), Isolated: new(true)}
	s.Entry = fills
	if len(fills) == 0 {
		s.Entry = []v1.EntryFill{{Price: open, Cost: 100}}
	}
	return s
}

// TestProfitLoss follows toProfitLossDto: slippage 0.1 % against the position on both
// sides, fee 0.1 % on entry and 0.1 % scaled by pc/po on exit, times the multiplier.
func TestProfitLoss(t *testing.T) {
	leveraged := row(v1.PositionLong, 100)
	leveraged.Multiplier = new(10.0)
	dca := row(v1.PositionLong, 100, v1.EntryFill{Price: 100, Cost: 100}, v1.EntryFill{Price: 95, Cost: 50, Timestamp: 1})
	partial := row(v1.PositionLong, 100, v1.EntryFill{Price: 100, Cost: 100}, v1.EntryFill{Price: 90, Cost: 100, Timestamp: 1})
	partial.Partial = []v1.PartialClose{
		{Type: "profit", Percent: 25, EntryCountAtClose: new(int64(1)), CurrentPrice: new(104.0), CostBasisAtClose: new(100.0), Timestamp: new(int64(2))},
		{Type: "loss", Percent: 50, EntryCountAtClose: new(int64(2)), CurrentPrice: new(91.0), CostBasisAtClose: new(175.0), Timestamp: new(int64(3))},
	}
	for _, c := range []struct {
		name       string
		signal     *v1.Signal
		close      float64
		pct, cost  float64
		open, paid float64
	}{
		// signal-opened.json's _fall: the PnL at the entry itself.
		{"fixture: long at its entry 100", row(v1.PositionLong, 100), 100, -0.39960039960038823, -0.39960039960038823, 100, 100},
		{"fixture: long at its entry 99", row(v1.PositionLong, 99), 99, -0.39960039960039284, -0.39960039960039284, 99, 100},
		{"backtest-kit: long at take profit", row(v1.PositionLong, 100), 101.5, 1.0959055944055986, 1.0959055944055986, 100, 100},
		{"backtest-kit: long at stop loss", row(v1.PositionLong, 100), 98.5, -1.8951063936063894, -1.8951063936063894, 100, 100},
		{"backtest-kit: short at take profit", row(v1.PositionShort, 2500), 2450, 1.605607607607615, 1.605607607607615, 2500, 100},
		{"backtest-kit: short at stop loss", row(v1.PositionShort, 2500), 2540.25, -2.0152368468468294, -2.0152368468468294, 2500, 100},
		{"backtest-kit: two fills", dca, 103, 4.39301530048899, 6.589522950733485, 98.27586206896552, 150},
		{"backtest-kit: two partial closes", partial, 99, 0.9989746503496733, 1.9979493006993465, 94.02985074626865, 200},
		{"backtest-kit: multiplier 10", leveraged, 97, -33.906123876123765, -33.906123876123765, 100, 100},
	} {
		got, err := params.ProfitLoss(c.signal, c.close)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := live.PnL{PnlPercentage: c.pct, PnlCost: c.cost, PnlEntries: c.paid, PriceOpen: c.open, PriceClose: c.close}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, want)
		}
	}
	older := row(v1.PositionLong, 100, v1.EntryFill{Price: 100, Cost: 100}, v1.EntryFill{Price: 90, Cost: 100, Timestamp: 1})
	older.Partial = []v1.PartialClose{{Type: "profit", Percent: 25, CurrentPrice: new(104.0),
		CostBasisAtClose: new(200.0), Timestamp: new(int64(2))}} // no entryCountAtClose: every fill
	got, err := params.ProfitLoss(older, 99)
	if want := (live.PnL{PnlPercentage: 5.402408966033987, PnlCost: 10.804817932067975, PnlEntries: 200,
		PriceOpen: 94.73684210526315, PriceClose: 99}); err != nil || got != want { // backtest-kit
		t.Errorf("a partial close without entryCountAtClose: got %+v, %v; want %+v", got, err, want)
	}
	older.Partial[0].CostBasisAtClose = nil
	if _, err := params.ProfitLoss(older, 99); !errors.Is(err, live.ErrNotANumber) {
		t.Errorf("a partial close without its cost basis: got %v, want ErrNotANumber", err)
	}
	over := row(v1.PositionLong, 100)
	over.Partial = []v1.PartialClose{{Type: "profit", Percent: 60, EntryCountAtClose: new(int64(1)), CurrentPrice: new(101.0), CostBasisAtClose: new(100.0)},
		{Type: "profit", Percent: 60, EntryCountAtClose: new(int64(1)), CurrentPrice: new(102.0), CostBasisAtClose: new(100.0)}}
	if _, err := params.ProfitLoss(over, 103); err == nil {
		t.Error("partial closes over 100 % of the money invested: no error")
	}
}

// TestLiquidationPrice follows getLiquidationPrice: with the default multiplier 1 a long's
// liquidation is far below any allowed stop loss (so it never closes one).
func TestLiquidationPrice(t *testing.T) {
	lev := row(v1.PositionLong, 100)
	lev.Multiplier = new(10.0)
	short := row(v1.PositionShort, 100)
	short.Multiplier = new(5.0)
	for _, c := range []struct {
		name string
		s    *v1.Signal
		want float64
	}{
		{"backtest-kit: long x1", row(v1.PositionLong, 100), 0.10030050070099605},
		{"backtest-kit: long x10", lev, 90.3707511315119},
		{"backtest-kit: short x5", short, 119.54089866177779},
	} {
		got, ok := params.LiquidationPrice(c.s)
		if !ok || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, ok, c.want)
		}
	}
}

func candle(h, l, c, v float64) market.Candle {
	return market.Candle{High: h, Low: l, Close: c, Volume: v}
}

// TestAveragePrice follows GET_AVG_PRICE_FN: the VWAP of the typical price (h+l+c)/3, or
// the mean close when no volume traded.
func TestAveragePrice(t *testing.T) {
	for _, c := range []struct {
		name    string
		candles []market.Candle
		want    float64
	}{
		{"backtest-kit: VWAP", []market.Candle{candle(101, 99, 100.5, 10), candle(102, 100, 101.7, 30),
			candle(101.9, 100.2, 100.9, 5), candle(101.3, 100.1, 101.1, 12.5), candle(101.6, 100.8, 101.4, 7)},
			100.97596899224807},
		{"backtest-kit: no volume", []market.Candle{candle(1, 1, 100.1, 0), candle(1, 1, 100.2, 0),
			candle(1, 1, 100.4, 0), candle(1, 1, 99.9, 0), candle(1, 1, 100.05, 0)}, 100.13000000000001},
	} {
		if got := live.AveragePrice(c.candles); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

const t0 = int64(1795643580000) // the fixtures' tick time

func at(minutes int) int64 { return t0 + int64(time.Duration(minutes)*time.Minute/time.Millisecond) }

// open is a long at 100, take profit 101.5, stop loss 98.5, 60 minutes, opened at t0 (the
// fixture signal-opened.json), or its short mirror.
func open(pos v1.Position) *v1.Signal {
	s := row(pos, 100)
	s.PriceTakeProfit, s.PriceStopLoss, s.MinuteEstimatedTime = 101.5, 98.5, new(int64(60))
	if pos == v1.PositionShort {
		s.PriceTakeProfit, s.PriceStopLoss = 98.5, 101.5
	}
	s.ScheduledAt, s.PendingAt = t0, t0
	return s
}

// TestCheckPending follows CHECK_PENDING_SIGNAL_COMPLETION_FN: time, then the stop loss
// touched by the last candle's wick (at exactly its price), then take profit reached by
// the average price (at exactly its price).
func TestCheckPending(t *testing.T) {
	long, short := open(v1.PositionLong), open(v1.PositionShort)
	unbounded := open(v1.PositionLong)
	unbounded.MinuteEstimatedTime = nil
	trailed := open(v1.PositionLong)
	trailed.TrailingPriceStopLoss = new(100.2)
	for _, c := range []struct {
		name           string
		s              *v1.Signal
		now            int64
		avg, low, high float64
		want           *live.Close
	}{
		{"a wick through take profit, the average below it: stays open", long, at(10), 101.2, 100.9, 101.9, nil},
		{"the average reaches take profit: closes at exactly TP", long, at(10), 101.6, 101.1, 101.9,
			&live.Close{Price: 101.5, Reason: live.CloseTakeProfit}},
		{"a wick touches stop loss, the average above it: closes at exactly SL", long, at(10), 99.4, 98.5, 99.9,
			&live.Close{Price: 98.5, Reason: live.CloseStopLoss}},
		{"stop loss by wick and take profit by average in one tick: stop loss first", long, at(10), 101.5, 98.4, 102,
			&live.Close{Price: 98.5, Reason: live.CloseStopLoss}},
		{"expired: at the average price, before take profit", long, at(60), 101.7, 101.6, 101.8,
			&live.Close{Price: 101.7, Reason: live.CloseTimeExpired}},
		{"one minute short of expiry: stays open", long, at(59), 100.3, 100.1, 100.5, nil},
		{"no lifetime (null, Infinity): never expires", unbounded, at(100000), 100.3, 100.1, 100.5, nil},
		{"a trailing stop loss replaces the stop loss", trailed, at(10), 100.6, 100.2, 100.8,
			&live.Close{Price: 100.2, Reason: live.CloseStopLoss}},
		{"short: a wick up to stop loss", short, at(5), 100.9, 100.4, 101.5, &live.Close{Price: 101.5, Reason: live.CloseStopLoss}},
		{"short: the average down to take profit", short, at(5), 98.5, 98.2, 98.9,
			&live.Close{Price: 98.5, Reason: live.CloseTakeProfit}},
		{"short: a wick below take profit only", short, at(5), 98.7, 98.1, 99.1, nil},
	} {
		got := params.CheckPending(c.s, c.now, c.avg, c.low, c.high)
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestCheckScheduled follows CHECK_SCHEDULED_SIGNAL_TIMEOUT_FN, then
// CHECK_SCHEDULED_SIGNAL_PRICE_ACTIVATION_FN: the timeout first, then the stop loss
// before the entry, both on the average price.
func TestCheckScheduled(t *testing.T) {
	sched := func(pos v1.Position, entry, sl float64) *v1.Signal {
		s := row(pos, entry)
		s.PriceStopLoss, s.IsScheduled, s.ScheduledAt = sl, true, t0
		return s
	}
	long, short := sched(v1.PositionLong, 99, 97), sched(v1.PositionShort, 101, 103)
	for _, c := range []struct {
		name     string
		s        *v1.Signal
		now      int64
		avg      float64
		cancel   string
		activate bool
	}{
		{"above the entry: waits", long, at(3), 99.5, "", false},
		{"the average at the entry: activates", long, at(3), 99, "", true},
		{"the average below the stop loss: cancelled, never activated", long, at(3), 96.9, live.CancelPriceReject, false},
		{"120 minutes: timed out, even at the entry", long, at(120), 98.9, live.CancelTimeout, false},
		{"119 minutes: still activates", long, at(119), 98.9, "", true},
		{"short: below the entry waits", short, at(3), 100.5, "", false},
		{"short: at the entry activates", short, at(3), 101.2, "", true},
		{"short: above the stop loss is cancelled", short, at(3), 103, live.CancelPriceReject, false},
	} {
		cancel, activate := params.CheckScheduled(c.s, c.now, c.avg)
		if cancel != c.cancel || activate != c.activate {
			t.Errorf("%s: got (%q, %v), want (%q, %v)", c.name, cancel, activate, c.cancel, c.activate)
		}
	}
}
