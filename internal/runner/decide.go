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

package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/market"
)

// tick is what backtest-kit's live tick at the end of a candle sees: the time (the
// candle's close, a minute boundary), the average price of the candles before it and
// the candle itself.
type tick struct {
	candle market.Candle
	now    int64   // Unix ms
	avg    float64 // VWAP of the last Rules.AvgPriceCandles candles, this one last
}

// errNoAverage: a candle needed for the average price is missing; like the library's tick,
// this one does nothing.
var errNoAverage = errors.New("not enough candles for the average price")

// tickAt is the tick at the end of candle c: the candles before it are read from the
// source (ClientExchange.getCandles needs all of them).
func (e *Engine) tickAt(ctx context.Context, st *symbolState, c market.Candle) (tick, error) {
	window, err := e.window(ctx, st, c, max(e.cfg.Rules.AvgPriceCandles, 1)-1)
	if errors.Is(err, market.ErrNoData) {
		return tick{}, fmt.Errorf("%w: %w", errNoAverage, err)
	}
	if err != nil {
		return tick{}, err
	}
	return tick{candle: c, now: c.Time.Add(time.Minute).UnixMilli(), avg: live.AveragePrice(window)}, nil
}

// window is the n candles before c, oldest first, then c.
func (e *Engine) window(ctx context.Context, st *symbolState, c market.Candle, n int) ([]market.Candle, error) {
	out := make([]market.Candle, 0, n+1)
	for i := n; i > 0; i-- {
		prev, err := e.cfg.Source.Candle(ctx, st.key.Symbol, c.Time.Add(-time.Duration(i)*time.Minute))
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return append(out, c), nil
}

// decide is the candle's decision, following backtest-kit's live tick (ClientStrategy.tick):
// an open signal is checked for its close or progress, a scheduled one for its cancel or
// activation, else the strategy may propose a new one. It reads candles from the source and
// asks the strategy, but writes nothing: the same state and candles decide the same way.
func (e *Engine) decide(ctx context.Context, st *symbolState, c market.Candle) (*action, error) {
	t, err := e.tickAt(ctx, st, c)
	if errors.Is(err, errNoAverage) {
		e.cfg.Log.Debug("No tick: a candle of the average price is missing", "symbol", st.key.Symbol,
			"candle", c.Time, "error", err.Error())
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ms, rules := c.Time.UnixMilli(), e.cfg.Rules
	switch {
	case st.active != nil:
		return e.watch(st, t)
	case st.scheduled != nil:
		s := st.scheduled
		cancel, activate := rules.CheckScheduled(s, t.now, t.avg)
		switch {
		case cancel != "":
			return &action{Kind: KindCancel, Candle: ms, Row: s, Price: t.avg, Reason: cancel}, nil
		case activate:
			row, err := rules.Activate(s, t.now)
			if err != nil {
				return nil, err
			}
			return &action{Kind: KindActivate, Candle: ms, Row: row, Price: row.PriceOpen}, nil
		}
		return nil, nil
	case slices.Contains(e.cfg.Draining, st.key.Symbol):
		return nil, nil // drained: flat now, and it stays so
	}
	return e.propose(ctx, st, t)
}

// watch is an open signal's tick: closed (live.Params.CheckPending), or its progress
// recorded (live.Params.Watch) when it moved.
func (e *Engine) watch(st *symbolState, t tick) (*action, error) {
	s, ms, rules := st.active, t.candle.Time.UnixMilli(), e.cfg.Rules
	if c := rules.CheckPending(s, t.now, t.avg, t.candle.Low, t.candle.High); c != nil {
		a := &action{Kind: KindClose, Candle: ms, Row: s, Price: c.Price, Reason: c.Reason}
		if pnl, err := rules.ProfitLoss(s, c.Price); err == nil {
			a.PnL = &pnl
		} else { // the close does not wait for its PnL: the ledger records it without one
			e.cfg.Log.Warn("Cannot compute the PnL of a closing signal", "symbol", st.key.Symbol, "signal", s.ID,
				"error", err.Error())
		}
		return a, nil
	}
	cur := st.partial[s.ID]
	g, err := rules.Watch(s, cur, st.breakeven, t.now, t.avg)
	if err != nil { // the signal is still watched for its close; only its progress is not
		e.cfg.Log.Warn("Cannot follow the progress of an open signal", "symbol", st.key.Symbol, "signal", s.ID,
			"error", err.Error())
		return nil, nil
	}
	if !g.Changed(cur, st.breakeven) {
		return nil, nil
	}
	a := &action{Kind: KindLevels, Candle: ms, Row: s, Levels: v1.PartialData{s.ID: g.Levels}, Even: g.Breakeven}
	if g.Peak != nil || g.Fall != nil {
		row := s.DeepCopy()
		row.Peak, row.Fall = cmp.Or(g.Peak, row.Peak), cmp.Or(g.Fall, row.Fall)
		a.Row, a.Moved = row, true
	}
	return a, nil
}

// propose asks the strategy for a signal on the tick and makes it a row as the library
// would (live.Params.NewRow); one that breaks the signal rules is logged and skipped.
func (e *Engine) propose(ctx context.Context, st *symbolState, t tick) (*action, error) {
	c := t.candle
	window, err := e.window(ctx, st, c, e.cfg.Strategy.Lookback())
	if err != nil {
		return nil, err
	}
	p, err := e.cfg.Strategy.Propose(ctx, st.key.Symbol, window)
	if err != nil || p == nil {
		return nil, err
	}
	pr := live.Proposal{Position: p.Position, TakeProfit: p.TakeProfit, StopLoss: p.StopLoss, Minutes: p.Minutes,
		Note: p.Note}
	if p.PriceOpen != 0 {
		pr.PriceOpen = &p.PriceOpen
	}
	id := fmt.Sprintf("%s-%s-%d", e.cfg.StrategyName, st.key.Symbol, c.Time.Unix())
	row, err := e.cfg.Rules.NewRow(id, live.Context{Symbol: st.key.Symbol, StrategyName: e.cfg.StrategyName,
		ExchangeName: e.cfg.ExchangeName}, pr, t.now, t.avg)
	if err != nil {
		return nil, err
	}
	kind, current := KindOpen, &t.avg
	if row.IsScheduled {
		kind, current = KindSchedule, nil
	}
	if err := v1.ValidateSignal(row, e.cfg.Limits, current); err != nil {
		e.cfg.Log.Info("Strategy proposed an invalid signal; skipped", "symbol", st.key.Symbol, "error", err.Error())
		e.cfg.Observer.Proposed(st.key.Symbol, c.Time, err)
		return nil, nil
	}
	e.cfg.Observer.Proposed(st.key.Symbol, c.Time, nil)
	return &action{Kind: kind, Candle: c.Time.UnixMilli(), Row: row, Price: row.PriceOpen}, nil
}
