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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// putSignal writes the open signal (nil: none) at the revision last seen, and records
// the new one.
func (e *Engine) putSignal(ctx context.Context, st *symbolState, s *v1.Signal) error {
	return put(ctx, e.cfg.Persist.Signal, e.cfg.Persist.WriteSignalAt, st.key, s, &st.signalRev, &st.signalInc)
}

// putSchedule is putSignal for the scheduled signal.
func (e *Engine) putSchedule(ctx context.Context, st *symbolState, s *v1.Signal) error {
	return put(ctx, e.cfg.Persist.Schedule, e.cfg.Persist.WriteScheduleAt, st.key, s, &st.scheduleRev, &st.scheduleInc)
}

type writeAt func(context.Context, domain.Key, *v1.Signal, persist.Revision) (persist.Revision, error)

func put(ctx context.Context, a *domain.Adapter[*v1.Signal], write writeAt, k domain.Key, s *v1.Signal,
	rev *persist.Revision, inc *string) error {
	next, err := write(ctx, k, s, *rev)
	if errors.Is(err, persist.ErrConflict) {
		return fmt.Errorf("%w: %w", errStoreChanged, err)
	}
	if err != nil {
		return err
	}
	*rev = next
	if i := revisionIncarnation(ctx, a, k, next); i != "" {
		*inc = i
	}
	return nil
}

// act writes a ahead into the snapshot, then applies it; commitCandle clears it.
func (e *Engine) act(ctx context.Context, st *symbolState, a *action) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	st.snap.Extra = withExtra(st.snap.Extra, extraInflight, raw)
	if err := e.cfg.Persist.WriteSnapshot(ctx, st.key, st.snap); err != nil {
		return err
	}
	return e.apply(ctx, st, a)
}

// commitCandle records t as processed and clears the inflight action, in one write.
func (e *Engine) commitCandle(ctx context.Context, st *symbolState, t time.Time) error {
	raw, _ := json.Marshal(t.UnixMilli())
	st.snap.Extra = withExtra(st.snap.Extra, extraLastCandle, raw)
	delete(st.snap.Extra, extraInflight)
	held, _ := json.Marshal(heldSignals{Signal: st.active, Schedule: st.scheduled, SignalInc: st.signalInc,
		ScheduleInc: st.scheduleInc})
	st.snap.Extra = withExtra(st.snap.Extra, extraHeld, held)
	if st.active != nil {
		st.snap.PendingSignalID, st.snap.LastPendingID = &st.active.ID, &st.active.ID
	} else {
		st.snap.PendingSignalID = nil
	}
	if err := e.cfg.Persist.WriteSnapshot(ctx, st.key, st.snap); err != nil {
		return err
	}
	st.last = t
	e.report(st)
	return nil
}

func withExtra(m map[string]apiextensionsv1.JSON, k string, raw []byte) map[string]apiextensionsv1.JSON {
	if m == nil {
		m = map[string]apiextensionsv1.JSON{}
	}
	m[k] = apiextensionsv1.JSON{Raw: raw}
	return m
}

// apply carries out an action. Every write sets a value, so applying it twice is applying
// it once.
func (e *Engine) apply(ctx context.Context, st *symbolState, a *action) error {
	// Its writes belong to the candle it was decided on (backtest-kit's when), which a
	// database keeps in its rows.
	ctx = driver.WithWriteTime(ctx, time.UnixMilli(a.Candle))
	p, k, s := e.cfg.Persist, st.key, a.Row
	ev := domain.HistoryEvent{Kind: a.Kind, At: a.Candle, Price: a.Price, Reason: a.Reason, PnL: a.PnL}
	switch a.Kind {
	case KindOpen, KindSchedule, KindActivate: // the levels it begins with
		ev.After = domain.LevelsOf(s)
	case KindCancel, kindCancelOpen: // the levels it ended with
		ev.Before = domain.LevelsOf(s)
	}
	var err error
	// The signal keys are written at the revisions the engine last saw. Once one of them
	// is stored, the action is finished even over a change made since (the next Follow
	// handles that change); until then a change stops it, to be decided again.
	landed := false
	put := func(write func(context.Context, *symbolState, *v1.Signal) error, s *v1.Signal) func() error {
		return func() error {
			err := write(ctx, st, s)
			if errors.Is(err, errStoreChanged) && landed {
				if err = e.refreshRevisions(ctx, st); err == nil {
					err = write(ctx, st, s)
				}
			}
			landed = landed || err == nil
			return err
		}
	}
	switch a.Kind {
	case KindOpen:
		if err = firstErr(
			put(e.putSignal, s),
			func() error { return e.risk(ctx, st, s) },
			func() error { return p.RecordHistory(ctx, k, s, s.ID, ev) }); err == nil {
			st.active, st.partial, st.breakeven = s, nil, false
		}
	case KindSchedule:
		if err = firstErr(
			put(e.putSchedule, s),
			func() error { return p.RecordHistory(ctx, k, s, s.ID, ev) }); err == nil {
			st.scheduled = s
		}
	case KindActivate:
		ev.Kind = KindOpen
		if err = firstErr(
			put(e.putSignal, s),
			put(e.putSchedule, nil),
			func() error { return e.risk(ctx, st, s) },
			func() error { return p.RecordHistory(ctx, k, s, s.ID, ev) }); err == nil {
			st.active, st.scheduled, st.partial, st.breakeven = s, nil, nil, false
		}
	case KindLevels:
		levelsMoved := !sameLevels(st.partial[s.ID], a.Levels[s.ID])
		if err = firstErr(
			func() error {
				if !a.Moved {
					return nil
				}
				return put(e.putSignal, s)()
			},
			func() error {
				if !levelsMoved {
					return nil
				}
				return p.WritePartial(ctx, k, s.ID, a.Levels)
			},
			func() error {
				if !a.Even || st.breakeven {
					return nil
				}
				return p.WriteBreakeven(ctx, k, s.ID, v1.BreakevenData{s.ID: {Reached: true}})
			}); err == nil {
			st.partial, st.breakeven = a.Levels, a.Even
			if a.Moved {
				st.active = s
			}
		}
	case KindClose, kindCancelOpen:
		if a.Kind == kindCancelOpen {
			ev.Kind = KindCancel
		}
		if err = firstErr(
			func() error { return p.WritePartial(ctx, k, s.ID, v1.PartialData{}) },
			func() error { return p.WriteBreakeven(ctx, k, s.ID, v1.BreakevenData{}) },
			func() error { return e.risk(ctx, st, nil) },
			put(e.putSignal, nil),
			func() error { return p.RecordHistory(ctx, k, nil, s.ID, ev) },
			func() error { return p.ForgetSignal(ctx, k, s.ID) }); err == nil {
			st.active, st.partial, st.breakeven = nil, nil, false
		}
	case KindCancel:
		if err = firstErr(
			put(e.putSchedule, nil),
			func() error { return p.RecordHistory(ctx, k, nil, s.ID, ev) }); err == nil {
			st.scheduled = nil
		}
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	if err != nil {
		return err
	}
	if a.Kind != KindLevels {
		e.cfg.Observer.Recorded(k.Symbol, ev)
	}
	level := slog.LevelInfo
	if a.Kind == KindLevels {
		level = slog.LevelDebug // every candle of an open signal: the log's detail, not its news
	}
	e.cfg.Log.Log(ctx, level, "Signal "+a.Kind, "strategy", e.cfg.StrategyName, "symbol", k.Symbol, "signal", s.ID,
		"position", s.Position, "priceOpen", s.PriceOpen, "takeProfit", s.PriceTakeProfit, "stopLoss", s.PriceStopLoss,
		"price", a.Price, "reason", a.Reason, "candle", time.UnixMilli(a.Candle).UTC())
	return nil
}

// sameLevels reports whether two records of partial levels list the same levels.
func sameLevels(a, b v1.PartialLevels) bool {
	return slices.Equal(a.ProfitLevels, b.ProfitLevels) && slices.Equal(a.LossLevels, b.LossLevels)
}

func firstErr(steps ...func() error) error {
	for _, f := range steps {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// risk adds this symbol's position, opened as row, to the risk profile's list, or removes
// it when row is nil, keyed as backtest-kit keys it.
func (e *Engine) risk(ctx context.Context, st *symbolState, row *v1.Signal) error {
	rk := domain.RiskKey(cmp.Or(e.cfg.RiskProfile, e.cfg.StrategyName), e.cfg.ExchangeName)
	key := e.cfg.StrategyName + "_" + e.cfg.ExchangeName + "_" + st.key.Symbol
	cur, err := e.cfg.Persist.ReadRisk(ctx, rk)
	if err != nil {
		return err
	}
	next := slices.DeleteFunc(slices.Clone(cur), func(r v1.RiskEntry) bool { return r.Key == key })
	if row != nil {
		next = append(next, v1.RiskEntry{Key: key, Position: v1.ActivePosition{
			StrategyName: row.StrategyName, ExchangeName: row.ExchangeName, Symbol: row.Symbol, Position: row.Position,
			PriceOpen: row.PriceOpen, PriceStopLoss: row.PriceStopLoss, PriceTakeProfit: row.PriceTakeProfit,
			MinuteEstimatedTime: row.MinuteEstimatedTime, OpenTimestamp: row.PendingAt}})
	}
	return e.cfg.Persist.WriteRisk(ctx, rk, next)
}
