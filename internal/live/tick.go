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

package live

import (
	"slices"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// Close is the decision to close an open signal.
type Close struct {
	Price  float64
	Reason string
}

// CheckPending decides whether the open signal s closes on the tick at now (Unix ms), with
// avg the average price and low and high the last candle's (CHECK_PENDING_SIGNAL_COMPLETION_FN).
// Time first: at the average price once minuteEstimatedTime has passed since pendingAt.
// Then the stop loss — or the liquidation price when that is nearer — touched by the
// candle's wick, at exactly its price. Then take profit reached by the average price, at
// exactly its price.
func (p Params) CheckPending(s *v1.Signal, now int64, avg, low, high float64) *Close {
	if s.MinuteEstimatedTime != nil && now-s.PendingAt >= *s.MinuteEstimatedTime*minute {
		return &Close{Price: avg, Reason: CloseTimeExpired}
	}
	tp, sl := levelsOf(s)
	liq, hasLiq := 0.0, false
	if s.Isolated == nil || *s.Isolated { // the library reads a missing isolated as true
		liq, hasLiq = p.LiquidationPrice(s)
	}
	stop, reason := sl, CloseStopLoss
	switch s.Position {
	case v1.PositionLong:
		if hasLiq && liq > sl {
			stop, reason = liq, CloseLiquidation
		}
		if low <= stop {
			return &Close{Price: stop, Reason: reason}
		}
		if avg >= tp {
			return &Close{Price: tp, Reason: CloseTakeProfit}
		}
	case v1.PositionShort:
		if hasLiq && liq < sl {
			stop, reason = liq, CloseLiquidation
		}
		if high >= stop {
			return &Close{Price: stop, Reason: reason}
		}
		if avg <= tp {
			return &Close{Price: tp, Reason: CloseTakeProfit}
		}
	}
	return nil
}

// CheckScheduled decides what the tick at now does to the scheduled signal s, with avg
// the average price: cancel it (a reason), activate it, or neither. The timeout comes
// first (CHECK_SCHEDULED_SIGNAL_TIMEOUT_FN: ScheduleAwaitMinutes since scheduledAt), then
// the price (CHECK_SCHEDULED_SIGNAL_PRICE_ACTIVATION_FN): the stop loss reached before
// the entry cancels it, else the entry reached activates it. Live mode judges both on the
// average price, not on wicks.
func (p Params) CheckScheduled(s *v1.Signal, now int64, avg float64) (cancel string, activate bool) {
	if now-s.ScheduledAt >= p.ScheduleAwaitMinutes*minute {
		return CancelTimeout, false
	}
	switch s.Position {
	case v1.PositionLong:
		if avg <= s.PriceStopLoss {
			return CancelPriceReject, false
		}
		return "", avg <= s.PriceOpen
	case v1.PositionShort:
		if avg >= s.PriceStopLoss {
			return CancelPriceReject, false
		}
		return "", avg >= s.PriceOpen
	}
	return "", false
}

// Activate is the scheduled signal s opened on the tick at now
// (ACTIVATE_SCHEDULED_SIGNAL_FN): at its own entry price, pendingAt now, its _peak reset
// and its _fall the PnL at the entry. Its fills keep the time it was scheduled.
func (p Params) Activate(s *v1.Signal, now int64) (*v1.Signal, error) {
	row := s.DeepCopy()
	row.PendingAt, row.IsScheduled = now, false
	if err := p.startExtremes(row, now, v1.ExtremeKeysAtActivation); err != nil {
		return nil, err
	}
	return row, nil
}

// startExtremes sets a new row's _peak and _fall at its entry price and time now: _peak
// all zero, _fall the PnL at the entry for an open row (zero for a scheduled one).
func (p Params) startExtremes(row *v1.Signal, now int64, order []string) error {
	row.Peak = Extreme(PnL{}, row.PriceOpen, now, order)
	row.Fall = Extreme(PnL{}, row.PriceOpen, now, order)
	if row.IsScheduled {
		return nil
	}
	pnl, err := p.ProfitLoss(row, row.PriceOpen)
	if err != nil {
		return err
	}
	row.Fall = Extreme(pnl, row.PriceOpen, now, order)
	return nil
}

// Proposal is a strategy's signal before it becomes a row (backtest-kit's ISignalDto).
type Proposal struct {
	Position v1.Position
	// PriceOpen is a limit entry; nil enters at the average price.
	PriceOpen *float64
	// TakeProfit and StopLoss are prices.
	TakeProfit, StopLoss float64
	// Minutes the signal may stay open; nil is MaxSignalLifetimeMinutes.
	Minutes *int64
	Note    string
}

// Context names the strategy a row belongs to.
type Context struct {
	Symbol, StrategyName, ExchangeName string
}

// NewRow is the row a proposal becomes on the tick at now, with avg the average price
// (GET_SIGNAL_FN). Without a limit entry it opens at once at the average price. A limit
// entry the price has already reached (a long at or above it, a short at or below it)
// opens at once at the limit price; any other is scheduled. The row carries the
// library's defaults: cost, multiplier 1, isolated, one fill, and its _peak and _fall (for
// an open row, _fall is the PnL at the entry).
func (p Params) NewRow(id string, c Context, pr Proposal, now int64, avg float64) (*v1.Signal, error) {
	minutes := p.MaxSignalLifetimeMinutes
	if pr.Minutes != nil {
		minutes = *pr.Minutes
	}
	cost, multiplier, isolated, note := p.EntryCost, 1.0, true, pr.Note
	row := &v1.Signal{ID: id, Position: pr.Position, PriceOpen: avg, PriceTakeProfit: pr.TakeProfit,
		PriceStopLoss: pr.StopLoss, MinuteEstimatedTime: &minutes, Note: &note, Cost: &cost, Multiplier: &multiplier,
		Isolated: &isolated, Symbol: c.Symbol, ExchangeName: c.ExchangeName, StrategyName: c.StrategyName,
		ScheduledAt: now, PendingAt: now, Timestamp: now}
	row.SetKeyOrder(v1.MarketRowKeys)
	if pr.PriceOpen != nil {
		row.PriceOpen = *pr.PriceOpen
		row.SetKeyOrder(v1.LimitRowKeys)
		reached := pr.Position == v1.PositionLong && avg <= row.PriceOpen ||
			pr.Position == v1.PositionShort && avg >= row.PriceOpen
		if !reached {
			row.PendingAt, row.IsScheduled = 0, true
		}
	}
	row.Entry = []v1.EntryFill{{Price: row.PriceOpen, Cost: cost, Timestamp: now}}
	if err := p.startExtremes(row, now, v1.ExtremeKeysAtOpen); err != nil {
		return nil, err
	}
	return row, nil
}

// Progress is what a tick that does not close an open signal changes on it.
type Progress struct {
	// Peak and Fall are the signal's new best and worst points, nil when unchanged.
	Peak, Fall *v1.PriceExtreme
	// Levels are the partial levels reached, with those reached before.
	Levels v1.PartialLevels
	// Breakeven: the breakeven point has been reached (now or before).
	Breakeven bool
}

// Changed reports whether the tick changed anything against the levels and breakeven
// state it started from.
func (g Progress) Changed(before v1.PartialLevels, breakeven bool) bool {
	return g.Peak != nil || g.Fall != nil || g.Breakeven != breakeven ||
		len(g.Levels.ProfitLevels) != len(before.ProfitLevels) || len(g.Levels.LossLevels) != len(before.LossLevels)
}

// levels are the partial levels, in percent of the way to take profit or stop loss
// (ClientPartial's PROFIT_LEVELS and LOSS_LEVELS).
var levels = []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}

// Watch is what the tick at now, at average price avg, changes on the open signal s that
// it does not close (RETURN_PENDING_SIGNAL_ACTIVE_FN). Towards take profit: a new best
// price with a positive PnL becomes _peak, breakeven is checked (ClientBreakeven), and
// every profit level the progress has reached is added (ClientPartial). Towards stop
// loss: a new worst price becomes _fall, and every loss level reached is added. Progress
// is the share of the distance from the effective entry to take profit (or stop loss)
// covered, clamped to 0..100 (GET_PROGRESS_PERCENT_FN). At the entry price itself,
// nothing changes.
func (p Params) Watch(s *v1.Signal, reached v1.PartialLevels, breakeven bool, now int64, avg float64) (Progress, error) {
	g := Progress{Levels: v1.PartialLevels{ProfitLevels: slices.Clone(reached.ProfitLevels),
		LossLevels: slices.Clone(reached.LossLevels)}, Breakeven: breakeven}
	if g.Levels.ProfitLevels == nil {
		g.Levels.ProfitLevels = []float64{}
	}
	if g.Levels.LossLevels == nil {
		g.Levels.LossLevels = []float64{}
	}
	long := s.Position == v1.PositionLong
	eff := EffectivePriceOpen(s)
	dist := eff - avg
	if long {
		dist = avg - eff
	}
	tp, sl := levelsOf(s)
	switch {
	case dist > 0:
		total := eff - tp
		if long {
			total = tp - eff
		}
		if s.Peak == nil || (long && avg > s.Peak.Price) || (!long && avg < s.Peak.Price) {
			pnl, err := p.ProfitLoss(s, avg)
			if err != nil {
				return g, err
			}
			if pnl.PnlPercentage > 0 {
				g.Peak = Extreme(pnl, avg, now, v1.ExtremeKeysOnTick)
			}
		}
		g.Breakeven = breakeven || p.breakevenReached(long, eff, avg)
		addLevels(&g.Levels.ProfitLevels, progress(dist, total))
	case dist < 0:
		total := sl - eff
		if long {
			total = eff - sl
		}
		if s.Fall == nil || (long && avg < s.Fall.Price) || (!long && avg > s.Fall.Price) {
			pnl, err := p.ProfitLoss(s, avg)
			if err != nil {
				return g, err
			}
			g.Fall = Extreme(pnl, avg, now, v1.ExtremeKeysOnTick)
		}
		addLevels(&g.Levels.LossLevels, progress(-dist, total))
	}
	return g, nil
}

// breakevenReached: the price has moved past the entry by both sides' slippage and fees
// and the threshold (ClientBreakeven's HANDLE_BREAKEVEN_FN).
func (p Params) breakevenReached(long bool, priceOpen, avg float64) bool {
	threshold := float64((p.PercentSlippage+p.PercentFee)*2) + p.BreakevenThreshold
	if long {
		return avg >= priceOpen*(1+threshold/100)
	}
	return avg <= priceOpen*(1-threshold/100)
}

// levelsOf is the signal's take profit and stop loss, a trailing one in place of each.
func levelsOf(s *v1.Signal) (tp, sl float64) {
	tp, sl = s.PriceTakeProfit, s.PriceStopLoss
	if s.TrailingPriceTakeProfit != nil {
		tp = *s.TrailingPriceTakeProfit
	}
	if s.TrailingPriceStopLoss != nil {
		sl = *s.TrailingPriceStopLoss
	}
	return tp, sl
}

// progress is GET_PROGRESS_PERCENT_FN.
func progress(covered, total float64) float64 {
	if total <= 0 {
		return 100
	}
	return min(max(covered/total*100, 0), 100)
}

// addLevels adds every level at or below pct not yet in have, in ascending order.
func addLevels(have *[]float64, pct float64) {
	for _, l := range levels {
		if pct >= l && !slices.Contains(*have, l) {
			*have = append(*have, l)
		}
	}
}
