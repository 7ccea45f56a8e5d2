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
	"slices"
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// sameBytes fails unless s encodes to exactly what backtest-kit wrote in fixture.
func sameBytes(t *testing.T, s *v1.Signal, fixture string) {
	t.Helper()
	got, err := jsonx.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := testenv.FixtureAsWritten(t, fixture); string(got) != string(want) {
		t.Errorf("made here:\n%s\nbacktest-kit wrote (%s):\n%s", got, fixture, want)
	}
}

// TestNewRowIsBacktestKitsRow follows GET_SIGNAL_FN: the same proposal, tick time and
// average price give the row backtest-kit 19.5.0 wrote, byte for byte.
func TestNewRowIsBacktestKitsRow(t *testing.T) {
	immediate, err := params.NewRow("1af31ee8-c897-4000-a4dc-55369e459000",
		live.Context{Symbol: "BTCUSDT", StrategyName: "trace-immediate", ExchangeName: "trace-exchange"},
		live.Proposal{Position: v1.PositionLong, TakeProfit: 101.5, StopLoss: 98.5, Minutes: new(int64(60)),
			Note: "immediate open"}, t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, immediate, "signal-opened.json")

	ctx := live.Context{Symbol: "ETHUSDT", StrategyName: "trace-scheduled", ExchangeName: "trace-exchange"}
	limit := live.Proposal{Position: v1.PositionLong, PriceOpen: new(99.0), TakeProfit: 101, StopLoss: 97,
		Minutes: new(int64(60)), Note: "limit entry"}
	scheduled, err := params.NewRow("98804477-3369-4000-a2d3-63efff355000", ctx, limit, t0, 99.4)
	if err != nil {
		t.Fatal(err)
	}
	if !scheduled.IsScheduled || scheduled.PendingAt != 0 {
		t.Fatalf("a limit entry above the price is not scheduled: %+v", scheduled)
	}
	sameBytes(t, scheduled, "schedule-scheduled.json")

	// ACTIVATE_SCHEDULED_SIGNAL_FN, three minutes later.
	activated, err := params.Activate(scheduled, at(3))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, activated, "signal-activated-from-schedule.json")
	if !scheduled.IsScheduled {
		t.Error("Activate changed the scheduled row it was given")
	}
}

// TestNewRowRules: where a proposal opens, and its defaults.
func TestNewRowRules(t *testing.T) {
	ctx := live.Context{Symbol: "X", StrategyName: "s", ExchangeName: "e"}
	for _, c := range []struct {
		name      string
		p         live.Proposal
		avg       float64
		open      float64
		scheduled bool
		keys      []string
	}{
		{"market: opens at the average price", live.Proposal{Position: v1.PositionLong, TakeProfit: 110, StopLoss: 90},
			100.37, 100.37, false, v1.MarketRowKeys},
		{"limit already reached (long, price below it): opens at the limit price",
			live.Proposal{Position: v1.PositionLong, PriceOpen: new(101.0), TakeProfit: 110, StopLoss: 90}, 100.37, 101, false,
			v1.LimitRowKeys},
		{"limit not reached (long, price above it): scheduled",
			live.Proposal{Position: v1.PositionLong, PriceOpen: new(99.0), TakeProfit: 110, StopLoss: 90}, 100.37, 99, true,
			v1.LimitRowKeys},
		{"short limit reached (price above it)",
			live.Proposal{Position: v1.PositionShort, PriceOpen: new(100.0), TakeProfit: 90, StopLoss: 110}, 100.37, 100, false,
			v1.LimitRowKeys},
	} {
		s, err := params.NewRow("id", ctx, c.p, t0, c.avg)
		if err != nil {
			t.Fatal(err)
		}
		if s.PriceOpen != c.open || s.IsScheduled != c.scheduled || s.Entry[0].Price != c.open {
			t.Errorf("%s: priceOpen %v scheduled %v, want %v %v", c.name, s.PriceOpen, s.IsScheduled, c.open, c.scheduled)
		}
		if s.MinuteEstimatedTime == nil || *s.MinuteEstimatedTime != 1440 {
			t.Errorf("%s: no minuteEstimatedTime must become CC_MAX_SIGNAL_LIFETIME_MINUTES, got %v", c.name,
				s.MinuteEstimatedTime)
		}
		if s.Note == nil || *s.Note != "" {
			t.Errorf("%s: no note must be written as \"\"", c.name)
		}
		raw, _ := jsonx.Marshal(s)
		if keys, _ := jsonx.Keys(raw); !slices.Equal(keys, c.keys) {
			t.Errorf("%s: keys %v, want %v", c.name, keys, c.keys)
		}
	}
}

// watchCase is one tick of TestWatch: the average price, the state before, and what the
// tick should reach.
type watchCase struct {
	name             string
	avg              float64
	before           v1.PartialLevels
	even             bool
	profit, loss     []float64
	wantEven         bool
	newPeak, newFall bool
}

// TestWatch follows RETURN_PENDING_SIGNAL_ACTIVE_FN with ClientPartial and
// ClientBreakeven: progress is measured on the average price against the effective entry.
func TestWatch(t *testing.T) {
	ctx := live.Context{Symbol: "X", StrategyName: "s", ExchangeName: "e"}
	long, err := params.NewRow("id", ctx, live.Proposal{Position: v1.PositionLong, TakeProfit: 110, StopLoss: 95}, t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	short, err := params.NewRow("id", ctx, live.Proposal{Position: v1.PositionShort, TakeProfit: 90, StopLoss: 105},
		t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	none, no := v1.PartialLevels{}, []float64{}
	for _, c := range []watchCase{
		{"at the entry: nothing", 100, none, false, no, no, false, false, false},
		{"0.5 % up is under 10 % of the way; breakeven is 0.6 % away", 100.5, none, false, no, no, false, true, false},
		{"0.61 % up: breakeven", 100.61, none, false, no, no, true, true, false},
		{"35 % of the way to take profit: 10, 20, 30 at once", 103.5, none, false, []float64{10, 20, 30}, no,
			true, true, false},
		{"levels reached before are kept, once", 104.2, v1.PartialLevels{ProfitLevels: []float64{10, 20}}, true,
			[]float64{10, 20, 30, 40}, no, true, true, false},
		{"past take profit: clamped to 100", 111, none, false, []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, no,
			true, true, false},
		{"40 % of the way to stop loss: loss levels, a new fall", 98, none, false, no, []float64{10, 20, 30, 40},
			false, false, true},
	} {
		checkWatch(t, long, c)
	}
	for _, c := range []watchCase{
		{"short, 35 % of the way down to take profit", 96.5, none, false, []float64{10, 20, 30}, no, true, true, false},
		{"short, 0.59 % down: not yet breakeven", 99.41, none, false, no, no, false, true, false},
		{"short, 2 % up: 40 % of the way to stop loss", 102, none, false, no, []float64{10, 20, 30, 40}, false, false,
			true},
	} {
		checkWatch(t, short, c)
	}
}

// checkWatch runs Watch on s for c and checks what it reached.
func checkWatch(t *testing.T, s *v1.Signal, c watchCase) {
	t.Helper()
	g, err := params.Watch(s, c.before, c.even, at(5), c.avg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Levels.ProfitLevels, c.profit) || !slices.Equal(g.Levels.LossLevels, c.loss) ||
		g.Breakeven != c.wantEven || (g.Peak != nil) != c.newPeak || (g.Fall != nil) != c.newFall {
		t.Errorf("%s: got levels %v/%v breakeven %v peak %v fall %v", c.name, g.Levels.ProfitLevels,
			g.Levels.LossLevels, g.Breakeven, g.Peak != nil, g.Fall != nil)
	}
	if g.Peak != nil {
		pnl, _ := params.ProfitLoss(s, c.avg)
		if g.Peak.Price != c.avg || g.Peak.PnlPercentage != pnl.PnlPercentage || g.Peak.Timestamp != at(5) {
			t.Errorf("%s: peak %+v", c.name, g.Peak)
		}
	}
}
