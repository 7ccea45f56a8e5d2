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

// Package live is backtest-kit's live trading rules, as pure functions: what a tick does
// to a strategy's open or scheduled signal, and what a new signal looks like. The
// specification is backtest-kit 19.5.0's src/client/ClientStrategy.ts and the helpers it
// calls; every function names the library function it follows, and the arithmetic is done
// in the library's order, so that prices and PnL come out bit for bit the same.
//
// Live mode ticks once a minute. A tick at time T (a minute boundary) sees the five
// complete one-minute candles before T; its average price is their VWAP
// (ClientExchange.getAveragePrice), and the last of them is the candle whose wick a stop
// loss is checked against.
package live

import (
	"errors"
	"fmt"
	"math"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
)

// Params are the library's GLOBAL_CONFIG values the rules use (src/config/params.ts).
type Params struct {
	// PercentFee is charged per side, in percent (CC_PERCENT_FEE).
	PercentFee float64
	// PercentSlippage is assumed per side, in percent (CC_PERCENT_SLIPPAGE).
	PercentSlippage float64
	// BreakevenThreshold is the margin above both sides' costs at which breakeven is
	// reached, in percent (CC_BREAKEVEN_THRESHOLD).
	BreakevenThreshold float64
	// ScheduleAwaitMinutes cancels a scheduled signal not activated in time
	// (CC_SCHEDULE_AWAIT_MINUTES).
	ScheduleAwaitMinutes int64
	// MaxSignalLifetimeMinutes is the lifetime of a signal that names none
	// (CC_MAX_SIGNAL_LIFETIME_MINUTES).
	MaxSignalLifetimeMinutes int64
	// EntryCost is a position's cost in quote currency (CC_POSITION_ENTRY_COST).
	EntryCost float64
	// AvgPriceCandles is how many one-minute candles the average price is taken over
	// (CC_AVG_PRICE_CANDLES_COUNT).
	AvgPriceCandles int
}

// Defaults are the library's defaults.
func Defaults() Params {
	return Params{PercentFee: 0.1, PercentSlippage: 0.1, BreakevenThreshold: 0.2, ScheduleAwaitMinutes: 120,
		MaxSignalLifetimeMinutes: 1440, EntryCost: 100, AvgPriceCandles: 5}
}

// Close reasons (StrategyCloseReason) and cancel reasons (StrategyCancelReason).
const (
	CloseTimeExpired  = "time_expired"
	CloseTakeProfit   = "take_profit"
	CloseStopLoss     = "stop_loss"
	CloseLiquidation  = "liquidation"
	CancelTimeout     = "timeout"
	CancelPriceReject = "price_reject"
)

// minute is a minute in Unix milliseconds, the library's unit of time.
const minute = 60_000

// AveragePrice is the volume-weighted average of the candles' typical prices
// (high+low+close)/3, or the mean close when no volume traded (GET_AVG_PRICE_FN).
func AveragePrice(candles []market.Candle) float64 {
	var sumPriceVolume, totalVolume, sumClose float64
	for _, c := range candles {
		typical := (c.High + c.Low + c.Close) / 3
		sumPriceVolume += float64(typical * c.Volume)
	}
	for _, c := range candles {
		totalVolume += c.Volume
	}
	if totalVolume == 0 {
		for _, c := range candles {
			sumClose += c.Close
		}
		return sumClose / float64(len(candles))
	}
	return sumPriceVolume / totalVolume
}

// PnL is a signal's profit or loss at a price (toProfitLossDto).
type PnL = v1.ProfitLoss

// Extreme is the PnL p as a _peak or _fall record at price and time now, its keys in order.
func Extreme(p PnL, price float64, now int64, order []string) *v1.PriceExtreme {
	e := &v1.PriceExtreme{Price: price, Timestamp: now, PnlPercentage: p.PnlPercentage, PnlCost: p.PnlCost,
		PriceClose: p.PriceClose, PriceOpen: p.PriceOpen, PnlEntries: p.PnlEntries}
	e.SetKeyOrder(order)
	return e
}

// invested is the money put into the signal: the sum of its fills' costs, or its cost.
func (p Params) invested(s *v1.Signal) float64 {
	if len(s.Entry) == 0 {
		if s.Cost != nil {
			return *s.Cost
		}
		return p.EntryCost
	}
	var total float64
	for _, e := range s.Entry {
		total += e.Cost
	}
	return total
}

// withSlippage are the entry and exit prices after slippage against the position.
func (p Params) withSlippage(long bool, open, closePrice float64) (po, pc float64) {
	up, down := 1+p.PercentSlippage/100, 1-p.PercentSlippage/100
	if long {
		return float64(open * up), float64(closePrice * down)
	}
	return float64(open * down), float64(closePrice * up)
}

// rawPnL is the percent gained from po to pc, before fees.
func rawPnL(long bool, po, pc float64) float64 {
	if long {
		return float64((pc - po) / po * 100)
	}
	return float64((po - pc) / po * 100)
}

// ErrOverClosed: the signal's partial closes took out more than was invested.
var ErrOverClosed = errors.New("partial closes exceed the money invested")

// ErrNotANumber: the PnL came out as no number (JavaScript's NaN, which it would write as
// null), for want of a price or cost.
var ErrNotANumber = errors.New("PnL is not a number")

// value is *v, or NaN when it is absent: JavaScript's arithmetic on undefined.
func value(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}

// count is *v, or dflt when it is absent (slice's undefined bound).
func count(v *int64, dflt int64) int64 {
	if v == nil {
		return dflt
	}
	return *v
}

// ProfitLoss is the signal's PnL if closed at priceClose (toProfitLossDto): slippage
// against the position on both sides, the fee on entry and, scaled by the price moved, on
// exit, times the multiplier; partial closes weigh in by the money each took out.
func (p Params) ProfitLoss(s *v1.Signal, priceClose float64) (PnL, error) {
	invested := p.invested(s)
	multiplier := 1.0
	if s.Multiplier != nil {
		multiplier = *s.Multiplier
	}
	priceOpen := EffectivePriceOpen(s)
	long := s.Position == v1.PositionLong
	result := func(pct float64) (PnL, error) {
		if math.IsNaN(pct) || math.IsInf(pct, 0) {
			return PnL{}, fmt.Errorf("signal %s: %w (a fill or partial close lacks its price or cost)", s.ID,
				ErrNotANumber)
		}
		return PnL{PnlPercentage: pct, PnlCost: pct / 100 * invested, PnlEntries: invested, PriceOpen: priceOpen,
			PriceClose: priceClose}, nil
	}
	if len(s.Partial) == 0 {
		po, pc := p.withSlippage(long, priceOpen, priceClose)
		fee := float64(p.PercentFee * (1 + pc/po))
		return result((rawPnL(long, po, pc) - fee) * multiplier)
	}
	weighted, fees, closed := 0.0, p.PercentFee, 0.0
	for i, part := range s.Partial {
		dollars := float64(part.Percent / 100 * value(part.CostBasisAtClose))
		weight := dollars / invested
		closed += dollars
		eff := effectivePriceAtPartial(s.Entry, s.Partial, i, s.PriceOpen)
		po, pc := p.withSlippage(long, eff, value(part.CurrentPrice))
		weighted += float64(weight * rawPnL(long, po, pc))
		fees += float64(float64(p.PercentFee*weight) * (pc / po))
	}
	if closed > invested+max(0.001, float64(invested*1e-8)) {
		return PnL{}, fmt.Errorf("signal %s: %w (%.4f of %v)", s.ID, ErrOverClosed, closed, invested)
	}
	if remaining := (invested - closed) / invested; remaining > 0 {
		po, pc := p.withSlippage(long, priceOpen, priceClose)
		weighted += float64(remaining * rawPnL(long, po, pc))
		fees += float64(float64(p.PercentFee*remaining) * (pc / po))
	}
	return result((weighted - fees) * multiplier)
}

// EffectivePriceOpen is the signal's entry price over all its fills: their cost-weighted
// harmonic mean, replayed across partial closes (getEffectivePriceOpen).
func EffectivePriceOpen(s *v1.Signal) float64 {
	if len(s.Entry) == 0 {
		return s.PriceOpen
	}
	if len(s.Partial) == 0 {
		var cost, coins float64
		for _, e := range s.Entry {
			cost += e.Cost
		}
		for _, e := range s.Entry {
			coins += e.Cost / e.Price
		}
		if coins == 0 {
			return 0
		}
		return cost / coins
	}
	last := s.Partial[len(s.Partial)-1]
	eff := effectivePriceAtPartial(s.Entry, s.Partial, len(s.Partial)-1, s.PriceOpen)
	remaining := float64(value(last.CostBasisAtClose) * (1 - last.Percent/100))
	oldCoins := 0.0
	if eff != 0 {
		oldCoins = remaining / eff
	}
	newCoins, newCost := fills(s.Entry, count(last.EntryCountAtClose, 0), int64(len(s.Entry)))
	if oldCoins+newCoins == 0 {
		return eff
	}
	return (remaining + newCost) / (oldCoins + newCoins)
}

// fills sums coins (cost/price) and cost of entries[from:to], clamped as JavaScript's
// slice clamps.
func fills(entries []v1.EntryFill, from, to int64) (coins, cost float64) {
	n := int64(len(entries))
	from, to = min(max(from, 0), n), min(max(to, 0), n)
	for i := from; i < to; i++ {
		coins += entries[i].Cost / entries[i].Price
	}
	for i := from; i < to; i++ {
		cost += entries[i].Cost
	}
	return coins, cost
}

// effectivePriceAtPartial is the entry price at partial close i
// (computeEffectivePriceAtPartial).
func effectivePriceAtPartial(entries []v1.EntryFill, partials []v1.PartialClose, i int, fallback float64) float64 {
	p0 := partials[0]
	coins, _ := fills(entries, 0, count(p0.EntryCountAtClose, int64(len(entries))))
	eff := fallback
	if coins != 0 {
		eff = value(p0.CostBasisAtClose) / coins
	}
	for j := 1; j <= i; j++ {
		prev, cur := partials[j-1], partials[j]
		remaining := float64(value(prev.CostBasisAtClose) * (1 - prev.Percent/100))
		oldCoins := 0.0
		if eff != 0 {
			oldCoins = remaining / eff
		}
		n := int64(len(entries))
		newCoins, newCost := fills(entries, count(prev.EntryCountAtClose, 0), count(cur.EntryCountAtClose, n))
		if total := oldCoins + newCoins; total != 0 {
			eff = (remaining + newCost) / total
		}
	}
	return eff
}

// LiquidationPrice is the price at which an isolated position loses 100 % of its margin,
// found on the line through the PnL at the entry and at 90 % of it (getLiquidationPrice);
// false when there is none.
func (p Params) LiquidationPrice(s *v1.Signal) (float64, bool) {
	p0 := s.PriceOpen
	p1 := float64(s.PriceOpen * 0.9)
	pnl0, err0 := p.ProfitLoss(s, p0)
	pnl1, err1 := p.ProfitLoss(s, p1)
	if err0 != nil || err1 != nil {
		return 0, false
	}
	k := (pnl1.PnlPercentage - pnl0.PnlPercentage) / (p1 - p0)
	if math.IsInf(k, 0) || math.IsNaN(k) || math.Abs(k) < epsilon {
		return 0, false
	}
	liq := p0 + (-100-pnl0.PnlPercentage)/k
	if math.IsInf(liq, 0) || math.IsNaN(liq) || liq <= 0 {
		return 0, false
	}
	return liq, true
}

// epsilon is JavaScript's Number.EPSILON.
const epsilon = 2.220446049250313e-16
