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

// Package runner is the live signal lifecycle of one strategy: for every completed
// one-minute candle of each symbol it opens, schedules, activates, closes or cancels
// signals, persisting every step so that a process killed at any moment resumes exactly
// where it stopped.
//
// Each candle's decision is written ahead into the strategy snapshot (its "inflight"
// action) before any of its effects, and the snapshot's lastCandleAt moves on only after
// all of them. Every effect is idempotent (a row set, a risk key added or removed, a
// ledger event recorded once), so a restart replays an inflight action and carries on
// with the next candle — including the candles that closed while it was down.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/strategy"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// Snapshot fields this package keeps beside backtest-kit's (Extra survives every backend).
const (
	extraLastCandle = "lastCandleAt"
	extraInflight   = "inflight"
	// extraHeld records the signals as the runner held them at its last candle, so that a
	// restart tells what was edited while no runner ran (checkHeld).
	extraHeld = "held"
)

// Action kinds; also the ledger's event kinds where they match.
const (
	KindOpen     = domain.EventOpened
	KindSchedule = domain.EventScheduled
	KindActivate = "activated"
	KindClose    = domain.EventClosed
	KindCancel   = domain.EventCancelled
	KindLevels   = "levels"
)

// Config is what an Engine runs.
type Config struct {
	StrategyName, ExchangeName string
	// RiskProfile is the risk profile the strategy's positions are kept under (default:
	// the strategy's name).
	RiskProfile string
	Symbols     []string
	// Draining are symbols of Symbols on which no new signal opens: their open or
	// scheduled signal is watched to its end.
	Draining []string
	Source   market.Source
	Strategy strategy.Strategy
	Persist  *domain.Persistence
	Limits   v1.SignalLimits
	// Notify hears what Follow noticed (besides the log).
	Notify func(Notice)
	// Observer hears the engine's progress (the runner's metrics); nil hears nothing.
	Observer Observer
	// Rules are backtest-kit's settings the lifecycle follows (live.Defaults() when zero).
	Rules live.Params
	// Start is the first candle of a symbol that has no state yet.
	Start time.Time
	Log   *slog.Logger
}

// Engine runs the lifecycle.
type Engine struct {
	cfg    Config
	states map[string]*symbolState
}

type symbolState struct {
	key       domain.Key
	snap      *v1.StrategySnapshot
	active    *v1.Signal
	scheduled *v1.Signal
	partial   v1.PartialData
	breakeven bool
	last      time.Time
	// signalRev and scheduleRev are the revisions at which the engine last saw its signal
	// and scheduled-signal keys ("" while absent): its writes of them are conditional on
	// these, so that a change it did not make is never overwritten unseen (see Follow).
	signalRev, scheduleRev persist.Revision
	// signalInc and scheduleInc are the incarnations of the objects those keys were last
	// seen in.
	signalInc, scheduleInc string
}

// action is one candle's decision, written ahead into the snapshot.
type action struct {
	Kind   string         `json:"kind"`
	Candle int64          `json:"candle"` // Unix ms of the candle's start
	Row    *v1.Signal     `json:"row,omitempty"`
	Price  float64        `json:"price,omitempty"`
	Reason string         `json:"reason,omitempty"`
	Levels v1.PartialData `json:"levels,omitempty"`
	Even   bool           `json:"breakeven,omitempty"`
	// PnL is a close's result.
	PnL *v1.ProfitLoss `json:"pnl,omitempty"`
	// Moved: a levels action's Row has a new _peak or _fall, to be written.
	Moved bool `json:"moved,omitempty"`
}

// New returns an engine; Restore must run before Step.
func New(cfg Config) *Engine {
	if cfg.Rules == (live.Params{}) {
		cfg.Rules = live.Defaults()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Engine{cfg: cfg, states: map[string]*symbolState{}}
}

// Restore reads each symbol's state, skips rows of another strategy or exchange, and
// finishes the action a killed process left inflight.
func (e *Engine) Restore(ctx context.Context) error {
	for _, sym := range e.cfg.Symbols {
		st := &symbolState{key: domain.StrategyKey(sym, e.cfg.StrategyName, e.cfg.ExchangeName),
			last: e.cfg.Start.Truncate(time.Minute).Add(-time.Minute)}
		p := e.cfg.Persist
		var err error
		if st.snap, err = p.ReadSnapshot(ctx, st.key); err != nil {
			return err
		}
		if st.snap == nil {
			st.snap = &v1.StrategySnapshot{CommitQueue: []apiextensionsv1.JSON{}}
		}
		if st.active, st.signalRev, err = readRevision(ctx, p.Signal, st.key); err != nil {
			return err
		}
		if st.scheduled, st.scheduleRev, err = readRevision(ctx, p.Schedule, st.key); err != nil {
			return err
		}
		st.signalInc = revisionIncarnation(ctx, p.Signal, st.key, st.signalRev)
		st.scheduleInc = revisionIncarnation(ctx, p.Schedule, st.key, st.scheduleRev)
		activeID := "" // the stored row's, even one skipped below: its levels are not ours to drop
		if st.active != nil {
			activeID = st.active.ID
		}
		st.active, st.scheduled = e.mine(st.active), e.mine(st.scheduled)
		if raw, ok := st.snap.Extra[extraLastCandle]; ok {
			var ms int64
			if err := json.Unmarshal(raw.Raw, &ms); err != nil {
				return fmt.Errorf("%s: snapshot %s: %w", sym, extraLastCandle, err)
			}
			st.last = time.UnixMilli(ms).UTC()
		}
		if err := e.readAux(ctx, st); err != nil {
			return err
		}
		if raw, ok := st.snap.Extra[extraInflight]; !ok || string(raw.Raw) == "null" {
			// Between two candles: what changed in the store since is a hand edit.
			if err := e.checkHeld(ctx, st); err != nil {
				return fmt.Errorf("%s: %w", sym, err)
			}
			if st.active != nil {
				activeID = st.active.ID
			}
		}
		if err := p.ForgetClosedSignals(ctx, st.key, activeID); err != nil {
			return err
		}
		e.states[sym] = st
		for msg, sig := range map[string]*v1.Signal{"Resuming an open signal": st.active, "Resuming a scheduled signal": st.scheduled} {
			if sig != nil {
				e.cfg.Log.Info(msg, "strategy", e.cfg.StrategyName, "symbol", sym,
					"signal", sig.ID, "position", sig.Position, "priceOpen", sig.PriceOpen,
					"takeProfit", sig.PriceTakeProfit, "stopLoss", sig.PriceStopLoss, "through", st.last)
			}
		}
		if raw, ok := st.snap.Extra[extraInflight]; ok && string(raw.Raw) != "null" {
			var a action
			if err := json.Unmarshal(raw.Raw, &a); err != nil {
				return fmt.Errorf("%s: snapshot %s: %w", sym, extraInflight, err)
			}
			e.cfg.Log.Info("Finishing the action a previous run left inflight", "symbol", sym, "kind", a.Kind,
				"candle", time.UnixMilli(a.Candle).UTC())
			if replay := e.replayable(st, &a); replay == nil {
				id := ""
				if a.Row != nil {
					id = a.Row.ID
				}
				e.cfg.Log.Info("The inflight action is of a signal no longer stored, or one not opened on a "+
					"drained symbol; dropped", "symbol", sym, "signal", id)
			} else if err := e.apply(ctx, st, replay); err != nil {
				return err
			}
			if err := e.commitCandle(ctx, st, time.UnixMilli(a.Candle).UTC()); err != nil {
				return err
			}
		}
		if slices.Contains(e.cfg.Draining, sym) {
			if err := e.recordDraining(ctx, st); err != nil {
				return err
			}
		}
		e.report(st)
	}
	return nil
}

// recordDraining records in the ledger, once, that the signals of st's symbol are watched
// to their end because the symbol drains.
func (e *Engine) recordDraining(ctx context.Context, st *symbolState) error {
	for _, sig := range []*v1.Signal{st.active, st.scheduled} {
		if sig == nil {
			continue
		}
		ev := domain.HistoryEvent{Kind: domain.EventDraining, At: st.last.UnixMilli(), Before: domain.LevelsOf(sig)}
		once := func(events []domain.HistoryEvent) bool {
			return slices.ContainsFunc(events, func(o domain.HistoryEvent) bool { return o.Kind == domain.EventDraining })
		}
		if err := e.cfg.Persist.RecordHistoryUnless(ctx, st.key, nil, sig.ID, ev, once); err != nil {
			return err
		}
	}
	return nil
}

// readAux reads the partial levels and breakeven state of the open signal of st.
func (e *Engine) readAux(ctx context.Context, st *symbolState) error {
	st.partial, st.breakeven = nil, false
	if st.active == nil {
		return nil
	}
	p := e.cfg.Persist
	var err error
	if st.partial, err = p.ReadPartial(ctx, st.key, st.active.ID); err != nil {
		return err
	}
	be, err := p.ReadBreakeven(ctx, st.key, st.active.ID)
	st.breakeven = be[st.active.ID].Reached
	return err
}

// Position is the start of the last candle that every symbol has been processed through
// (after Restore: where the previous run stopped).
func (e *Engine) Position() time.Time {
	var pos time.Time
	for _, st := range e.states {
		if pos.IsZero() || st.last.Before(pos) {
			pos = st.last
		}
	}
	return pos
}

// replayable is the inflight action a as it can be finished now. A progress (levels)
// action concerns the open signal as it was stored when it was decided; a signal closed or
// replaced by hand since then drops it, and one edited by hand keeps the edit, taking only
// the new _peak and _fall. An open or a schedule on a symbol drained since is dropped (a
// draining symbol gets no new signal) unless its signal's write landed: that signal is in
// the store, so the open is finished (the risk profile and the ledger take it) and the
// signal watched as any other. Every other action is finished as it was decided.
func (e *Engine) replayable(st *symbolState, a *action) *action {
	if (a.Kind == KindOpen || a.Kind == KindSchedule) && slices.Contains(e.cfg.Draining, st.key.Symbol) {
		stored := st.active
		if a.Kind == KindSchedule {
			stored = st.scheduled
		}
		if stored == nil || a.Row == nil || stored.ID != a.Row.ID {
			return nil
		}
	}
	if a.Kind != KindLevels {
		return a
	}
	if st.active == nil || st.active.ID != a.Row.ID {
		return nil
	}
	if a.Moved {
		row := st.active.DeepCopy()
		row.Peak, row.Fall = a.Row.Peak, a.Row.Fall
		a.Row = row
	}
	return a
}

// mine drops a row of another strategy or exchange (a shared folder or object).
func (e *Engine) mine(s *v1.Signal) *v1.Signal {
	if s == nil || s.StrategyName != e.cfg.StrategyName || s.ExchangeName != e.cfg.ExchangeName {
		return nil
	}
	return s
}

// Step processes every candle that closed before now, symbol by symbol, and returns how
// many it processed.
func (e *Engine) Step(ctx context.Context, now time.Time) (int, error) {
	n := 0
	end := now.Truncate(time.Minute) // candles before this minute are complete
	for _, sym := range e.cfg.Symbols {
		st := e.states[sym]
		for t := st.last.Add(time.Minute); t.Before(end); t = t.Add(time.Minute) {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := e.candle(ctx, st, t); err != nil {
				return n, fmt.Errorf("%s at %s: %w", sym, t.Format(time.RFC3339), err)
			}
			e.cfg.Observer.Processed(sym, t)
			n++
		}
	}
	return n, nil
}

func (e *Engine) candle(ctx context.Context, st *symbolState, t time.Time) error {
	c, err := e.cfg.Source.Candle(ctx, st.key.Symbol, t)
	if err != nil {
		return err
	}
	a, err := e.decide(ctx, st, c)
	if err != nil {
		return err
	}
	for changed := 0; a != nil; changed++ {
		err := e.act(ctx, st, a)
		storeChanged := errors.Is(err, errStoreChanged)
		if storeChanged {
			e.cfg.Observer.StoreChanged(st.key.Symbol)
		}
		if !storeChanged || changed == maxStoreChanges {
			if err != nil {
				return err
			}
			break
		}
		// Another writer (a person) changed the signal since the engine last saw it:
		// follow the change, then decide this candle again. A close stopped so had
		// already cleared the signal's levels and risk position: they are written back.
		if a.Kind == KindClose || a.Kind == kindCancelOpen {
			if err := e.writeAux(ctx, st); err != nil {
				return err
			}
		}
		if err := e.followSymbol(ctx, st, true); err != nil {
			return err
		}
		if a, err = e.decide(ctx, st, c); err != nil {
			return err
		}
	}
	return e.commitCandle(ctx, st, t)
}

// maxStoreChanges bounds how often one candle is decided again after its writes found
// the store changed by another writer.
const maxStoreChanges = 3

// errStoreChanged: a conditional write found its key changed by another writer.
var errStoreChanged = errors.New("the store changed under the runner")
