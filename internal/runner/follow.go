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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"

	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Reasons of what Follow notices: each is a Warning event on the Strategy.
const (
	// NoticeCancelledByUser: an open or scheduled signal was removed from the store by
	// hand; the runner cancels it (ledger: cancelled, reason "user").
	NoticeCancelledByUser = "SignalCancelledByUser"
	// NoticeEditAdopted: take profit, stop loss or lifetime of a signal were edited by hand
	// and the runner now trades the edited signal.
	NoticeEditAdopted = "SignalEditAdopted"
	// NoticeEditRefused: a hand edit the runner cannot adopt; it wrote its own signal back.
	NoticeEditRefused = "SignalEditRefused"
	// NoticeWrittenBack: a store object was deleted (and made again empty by the
	// operator); the runner wrote its state back.
	NoticeWrittenBack = "StateWrittenBack"
)

// ReasonUser is the ledger reason of a signal cancelled by hand.
const ReasonUser = "user"

// kindCancelOpen cancels an open signal: a close at no price, recorded as KindCancel.
const kindCancelOpen = "cancel-open"

// Notice is a change in the store the engine did not make, and what it did about it.
type Notice struct {
	Symbol, Reason, Message string
}

// Follow reads every open and scheduled signal back from the store and handles a change
// the engine did not make as its user's intent: a signal removed by hand is cancelled; an
// edit of take profit, stop loss or minuteEstimatedTime that passes validation is adopted,
// any other edit is refused and the engine's own signal written back; a store object that
// was deleted (made again empty by the operator) gets the engine's state written back.
// Each is reported to Config.Notify. A signal written by hand where the engine holds none
// is found when the engine's own conditional write of that key fails, and removed.
func (e *Engine) Follow(ctx context.Context) error {
	for _, sym := range e.cfg.Symbols {
		// A drained symbol is read even when flat: a signal written there by hand would
		// keep it from being released, and no write of the engine's would find it.
		if err := e.followSymbol(ctx, e.states[sym], slices.Contains(e.cfg.Draining, sym)); err != nil {
			return err
		}
	}
	return nil
}

// heldSignals are the signals of a symbol as the runner held them at its last candle, and
// the incarnations of their store objects then (snapshot extra "held").
type heldSignals struct {
	Signal      *v1.Signal `json:"signal"`
	Schedule    *v1.Signal `json:"schedule"`
	SignalInc   string     `json:"signalIncarnation,omitempty"`
	ScheduleInc string     `json:"scheduleIncarnation,omitempty"`
}

// checkHeld applies Follow's rules to what a restart finds: the store's signals, just read
// into st, against the ones the runner held at its last candle. An edit made while no
// runner ran is taken as one made while it runs: a removed signal is cancelled, an
// adoptable edit adopted, any other refused and the held signal written back. A snapshot
// of an earlier version, which records nothing held, is taken as it is.
func (e *Engine) checkHeld(ctx context.Context, st *symbolState) error {
	raw, ok := st.snap.Extra[extraHeld]
	if !ok {
		return nil
	}
	var h heldSignals
	if err := json.Unmarshal(raw.Raw, &h); err != nil {
		return fmt.Errorf("snapshot %s: %w", extraHeld, err)
	}
	if same(h.Signal, st.active) && same(h.Schedule, st.scheduled) {
		return nil
	}
	st.active, st.scheduled, st.signalInc, st.scheduleInc = h.Signal, h.Schedule, h.SignalInc, h.ScheduleInc
	if err := e.readAux(ctx, st); err != nil { // the held signal's levels, which a write-back keeps
		return err
	}
	return e.followSymbol(ctx, st, true)
}

// followSymbol follows the open and the scheduled signal of st; all reads the keys of
// those the engine holds none of too.
func (e *Engine) followSymbol(ctx context.Context, st *symbolState, all bool) error {
	p := e.cfg.Persist
	if err := e.follow(ctx, st, signalKey{p.Signal, e.putSignal, &st.active, &st.signalRev, &st.signalInc}, all); err != nil {
		return fmt.Errorf("%s: following the signal: %w", st.key.Symbol, err)
	}
	if err := e.follow(ctx, st, signalKey{p.Schedule, e.putSchedule, &st.scheduled, &st.scheduleRev, &st.scheduleInc},
		all); err != nil {
		return fmt.Errorf("%s: following the scheduled signal: %w", st.key.Symbol, err)
	}
	return nil
}

// signalKey is one of a symbol's two signal keys as the engine holds it: the value, the
// revision and the object incarnation it last saw, and how to write it.
type signalKey struct {
	store *domain.Adapter[*v1.Signal]
	put   func(context.Context, *symbolState, *v1.Signal) error
	held  **v1.Signal
	rev   *persist.Revision
	inc   *string
}

// follow compares one held signal with its stored copy.
func (e *Engine) follow(ctx context.Context, st *symbolState, sk signalKey, all bool) error {
	held := *sk.held
	if held == nil && !all {
		return nil
	}
	stored, rev, err := readRevision(ctx, sk.store, st.key)
	if errors.Is(err, persist.ErrGone) {
		// The object is gone; the operator makes it again, and the next pass writes the
		// engine's state back into it. Until then the state is kept here.
		e.cfg.Log.Warn("A store object is missing; keeping the state until the operator makes it again",
			"symbol", st.key.Symbol, "error", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	*sk.rev = rev // seen now: the writes below are conditional on it
	what := "open signal"
	if sk.held == &st.scheduled {
		what = "scheduled signal"
	}
	switch {
	case same(stored, held):
		if rev != "" {
			*sk.inc = revisionIncarnation(ctx, sk.store, st.key, rev)
		}
		return nil
	case held == nil:
		e.notify(st, NoticeEditRefused, fmt.Sprintf("removed the %s %s written by hand for %s: the runner opens "+
			"its own signals", what, stored.ID, st.key.Symbol))
		return sk.put(ctx, st, nil)
	case stored == nil:
		now, err := incarnation(ctx, sk.store, st.key)
		if err != nil {
			return err
		}
		if now != *sk.inc {
			*sk.inc = now
			e.notify(st, NoticeWrittenBack, fmt.Sprintf("the store object of %s was deleted; wrote back %s %s",
				st.key.Symbol, what, held.ID))
			return e.writeBack(ctx, st)
		}
		e.notify(st, NoticeCancelledByUser, fmt.Sprintf("%s %s of %s was removed from the store by hand: cancelled it",
			what, held.ID, st.key.Symbol))
		kind := KindCancel
		if sk.held == &st.active {
			kind = kindCancelOpen
		}
		if err := e.act(ctx, st, &action{Kind: kind, Candle: st.last.UnixMilli(), Row: held, Reason: ReasonUser}); err != nil {
			return err
		}
		return e.commitCandle(ctx, st, st.last) // clears the action, keeps the position
	}
	edit := domain.HistoryEvent{At: st.last.UnixMilli(), Reason: ReasonUser, Before: domain.LevelsOf(held),
		After: domain.LevelsOf(stored)}
	if why := adoptable(stored, held, e.cfg.Limits); why != "" {
		e.notify(st, NoticeEditRefused, fmt.Sprintf("refused a hand edit of %s %s of %s: %s; wrote back the runner's own",
			what, held.ID, st.key.Symbol, why))
		edit.Kind, edit.Note = domain.EventEditRefused, why
		again := func(events []domain.HistoryEvent) bool { // a tool that writes the edit back every time
			return slices.ContainsFunc(events, edit.SameEdit)
		}
		if err := e.cfg.Persist.RecordHistoryUnless(ctx, st.key, nil, held.ID, edit, again); err != nil {
			return err
		}
		return sk.put(ctx, st, held)
	}
	e.notify(st, NoticeEditAdopted, fmt.Sprintf("adopted a hand edit of %s %s of %s: %s", what, held.ID, st.key.Symbol,
		changes(held, stored)))
	// Recorded first: a failed write leaves the edit to be adopted again next pass.
	edit.Kind = domain.EventEdited
	// Adopted again after a restart that came between this record and the write of the
	// held state, it is the entry's last event; an edit back and forth is recorded each time.
	last := func(events []domain.HistoryEvent) bool {
		return len(events) > 0 && edit.SameEdit(events[len(events)-1])
	}
	if err := e.cfg.Persist.RecordHistoryUnless(ctx, st.key, stored, held.ID, edit, last); err != nil {
		return err
	}
	*sk.held, *sk.inc = stored, revisionIncarnation(ctx, sk.store, st.key, rev)
	if sk.held != &st.active {
		return nil
	}
	return e.risk(ctx, st, stored) // the risk profile lists the position's levels
}

// adoptable says why stored cannot replace held ("" when it can): only take profit, stop
// loss and minuteEstimatedTime may change, and the result must be a valid signal.
func adoptable(stored, held *v1.Signal, limits v1.SignalLimits) string {
	levels := *held
	levels.PriceTakeProfit, levels.PriceStopLoss = stored.PriceTakeProfit, stored.PriceStopLoss
	levels.MinuteEstimatedTime = stored.MinuteEstimatedTime
	if !same(&levels, stored) {
		return "only priceTakeProfit, priceStopLoss and minuteEstimatedTime may change"
	}
	if err := v1.ValidateSignal(stored, limits, nil); err != nil {
		return err.Error()
	}
	return ""
}

// same compares two signals as stored (their JSON values; the order of their keys, which
// a Kubernetes backend does not keep, does not count).
func same(a, b *v1.Signal) bool {
	if a == nil || b == nil {
		return a == b
	}
	ca, erra := jsonx.Canonical(a)
	cb, errb := jsonx.Canonical(b)
	return erra == nil && errb == nil && ca == cb
}

func changes(from, to *v1.Signal) string {
	var out []string
	if from.PriceTakeProfit != to.PriceTakeProfit {
		out = append(out, fmt.Sprintf("priceTakeProfit %v → %v", from.PriceTakeProfit, to.PriceTakeProfit))
	}
	if from.PriceStopLoss != to.PriceStopLoss {
		out = append(out, fmt.Sprintf("priceStopLoss %v → %v", from.PriceStopLoss, to.PriceStopLoss))
	}
	if !reflect.DeepEqual(from.MinuteEstimatedTime, to.MinuteEstimatedTime) {
		out = append(out, fmt.Sprintf("minuteEstimatedTime %s → %s", jsonOf(from.MinuteEstimatedTime),
			jsonOf(to.MinuteEstimatedTime)))
	}
	return strings.Join(out, ", ")
}

func jsonOf(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

// writeBack writes the symbol's whole state as the engine holds it, after a store object
// was deleted: signal, schedule, snapshot, partial levels, breakeven and risk position.
func (e *Engine) writeBack(ctx context.Context, st *symbolState) error {
	p, k := e.cfg.Persist, st.key
	err := firstErr(
		func() error { return p.WriteSignal(ctx, k, st.active) },
		func() error { return p.WriteSchedule(ctx, k, st.scheduled) },
		func() error { return p.WriteSnapshot(ctx, k, st.snap) },
		func() error { return e.writeAux(ctx, st) })
	if err != nil {
		return err
	}
	return e.refreshRevisions(ctx, st) // what the engine holds is stored again
}

// writeAux writes the open signal's partial levels, breakeven state and risk position as
// the engine holds them.
func (e *Engine) writeAux(ctx context.Context, st *symbolState) error {
	p, k := e.cfg.Persist, st.key
	if st.active != nil {
		if err := errors.Join(p.WritePartial(ctx, k, st.active.ID, st.partial),
			p.WriteBreakeven(ctx, k, st.active.ID, v1.BreakevenData{st.active.ID: {Reached: st.breakeven}})); err != nil {
			return err
		}
	}
	return e.risk(ctx, st, st.active)
}

// refreshRevisions reads the revisions of the symbol's signal keys as they are now.
func (e *Engine) refreshRevisions(ctx context.Context, st *symbolState) error {
	var err error
	if _, st.signalRev, err = readRevision(ctx, e.cfg.Persist.Signal, st.key); err != nil {
		return err
	}
	_, st.scheduleRev, err = readRevision(ctx, e.cfg.Persist.Schedule, st.key)
	return err
}

func (e *Engine) notify(st *symbolState, reason, msg string) {
	e.cfg.Log.Warn(msg, "reason", reason, "strategy", e.cfg.StrategyName, "symbol", st.key.Symbol)
	if e.cfg.Notify != nil {
		e.cfg.Notify(Notice{Symbol: st.key.Symbol, Reason: reason, Message: msg})
	}
}

// readRevision reads the signal of k with its revision; an absent one is nil.
func readRevision(ctx context.Context, a *domain.Adapter[*v1.Signal], k domain.Key) (*v1.Signal, persist.Revision, error) {
	s, err := a.Store(ctx, k)
	if err != nil {
		return nil, "", err
	}
	v, rev, err := s.ReadRevision(ctx, k.Symbol)
	if errors.Is(err, persist.ErrNotFound) {
		return nil, "", nil
	}
	return v, rev, err
}

// incarnation names the object that holds k's store as it is now ("" for stores kept in
// no such object: driver.Incarnator).
func incarnation(ctx context.Context, a *domain.Adapter[*v1.Signal], k domain.Key) (string, error) {
	s, err := a.Store(ctx, k)
	if err != nil {
		return "", err
	}
	if d, ok := s.Driver().(driver.Incarnator); ok {
		return d.Incarnation(ctx)
	}
	return "", nil
}

// revisionIncarnation names the object that held k's store when rev was read from it, as
// incarnation does.
func revisionIncarnation(ctx context.Context, a *domain.Adapter[*v1.Signal], k domain.Key, rev persist.Revision) string {
	s, err := a.Store(ctx, k) // memoized: opened already to read or write rev
	if err != nil {
		return ""
	}
	if d, ok := s.Driver().(driver.Incarnator); ok {
		return d.RevisionIncarnation(rev)
	}
	return ""
}
