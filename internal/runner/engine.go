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
	"github.com/strategyops/strategy-operator/internal/live"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/strategy"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
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
