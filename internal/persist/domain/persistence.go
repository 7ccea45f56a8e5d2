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

package domain

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	persist "github.com/strategyops/strategy-operator/pkg/store"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// Entity ids inside a context, as backtest-kit uses them.
const (
	strategyEntity = "strategy"
	riskEntity     = "positions"
)

// Persistence is the crash state of a live strategy: the six domains, each over its own
// swappable backend (all over the same one by default).
type Persistence struct {
	Signal    *Adapter[*v1.Signal]
	Schedule  *Adapter[*v1.Signal]
	Strategy  *Adapter[*v1.StrategySnapshot]
	Risk      *Adapter[v1.RiskPositions]
	Partial   *Adapter[v1.PartialData]
	Breakeven *Adapter[v1.BreakevenData]
	History   *Adapter[*HistoryEntry]
}

// HistoryEntry is the ledger's record of one signal: its row as last scheduled, opened or
// edited, and each thing that happened to it, in order (see Replay).
type HistoryEntry struct {
	ID     string         `json:"id"`
	Symbol string         `json:"symbol"`
	Signal *v1.Signal     `json:"signal,omitempty"`
	Events []HistoryEvent `json:"events"`
}

// HistoryEvent is one thing that happened to a signal.
type HistoryEvent struct {
	// Kind is scheduled, opened, closed or cancelled.
	Kind string `json:"kind"`
	// At is the candle time, Unix milliseconds.
	At     int64   `json:"at"`
	Price  float64 `json:"price,omitempty"`
	Reason string  `json:"reason,omitempty"`
	// PnL is a close's result, as backtest-kit computes it.
	PnL *v1.ProfitLoss `json:"pnl,omitempty"`
	// Seq numbers the entry's events in the order they were recorded, from 1: a gap or a
	// repeat means an event was lost or written over.
	Seq int `json:"seq,omitempty"`
	// Before and After are the signal's levels around the event (see Levels): an edit's
	// (edited; edit_refused, whose After is what was asked for and not adopted); After
	// alone on scheduled and opened, the levels the signal began with; Before alone on
	// cancelled.
	Before *Levels `json:"before,omitempty"`
	After  *Levels `json:"after,omitempty"`
	// Note says why, in words, where a reason code does not (a refused edit's refusal).
	Note string `json:"note,omitempty"`
}

// same reports whether e records what o does (their sequence numbers aside).
func (e HistoryEvent) same(o HistoryEvent) bool {
	e.Seq = o.Seq
	return reflect.DeepEqual(e, o)
}

// Has reports whether the entry already records an event of kind.
func (h *HistoryEntry) Has(kind string) bool {
	for _, e := range h.Events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// New returns the six domains over backend b.
func New(b Backend) *Persistence {
	return &Persistence{
		Signal:    NewAdapter[*v1.Signal](Signal, b),
		Schedule:  NewAdapter[*v1.Signal](Schedule, b),
		Strategy:  NewAdapter[*v1.StrategySnapshot](Strategy, b),
		Risk:      NewAdapter[v1.RiskPositions](Risk, b),
		Partial:   NewAdapter[v1.PartialData](Partial, b),
		Breakeven: NewAdapter[v1.BreakevenData](Breakeven, b),
		History:   NewAdapter[*HistoryEntry](History, b),
	}
}

// Use swaps the backend of every domain.
func (p *Persistence) Use(b Backend) error {
	return errors.Join(p.Signal.Use(b), p.Schedule.Use(b), p.Strategy.Use(b),
		p.Risk.Use(b), p.Partial.Use(b), p.Breakeven.Use(b), p.History.Use(b))
}

// Open opens (and initialises) the store of every context now, rather than at its first
// use: a runner's start does, so that the layers of its backend (Layers.RebuildOnOpen)
// start on every store.
func (p *Persistence) Open(ctx context.Context, contexts []Context) error {
	var err error
	for _, c := range contexts {
		switch c.Domain {
		case Signal:
			_, err = p.Signal.Store(ctx, c.Key)
		case Schedule:
			_, err = p.Schedule.Store(ctx, c.Key)
		case Strategy:
			_, err = p.Strategy.Store(ctx, c.Key)
		case Risk:
			_, err = p.Risk.Store(ctx, c.Key)
		case Partial:
			_, err = p.Partial.Store(ctx, c.Key)
		case Breakeven:
			_, err = p.Breakeven.Store(ctx, c.Key)
		case History:
			_, err = p.History.Store(ctx, c.Key)
		default:
			err = fmt.Errorf("domain %q is not one of the crash state's", c.Domain)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close closes every store.
func (p *Persistence) Close() error {
	return errors.Join(p.Signal.Close(), p.Schedule.Close(), p.Strategy.Close(),
		p.Risk.Close(), p.Partial.Close(), p.Breakeven.Close(), p.History.Close())
}

// StrategyKey is the context of a strategy on one exchange and symbol.
func StrategyKey(symbol, strategyName, exchangeName string) Key {
	return Key{Symbol: symbol, StrategyName: strategyName, ExchangeName: exchangeName}
}

// RiskKey is the context of a risk profile on one exchange.
func RiskKey(riskName, exchangeName string) Key {
	return Key{RiskName: riskName, ExchangeName: exchangeName}
}

// ReadSignal returns the active signal of k, nil when none is open.
func (p *Persistence) ReadSignal(ctx context.Context, k Key) (*v1.Signal, error) {
	return p.Signal.read(ctx, k, k.Symbol)
}

// WriteSignal stores the active signal of k; nil records that none is open.
func (p *Persistence) WriteSignal(ctx context.Context, k Key, s *v1.Signal) error {
	return p.Signal.write(ctx, k, k.Symbol, s)
}

// WriteSignalAt is WriteSignal only if the signal of k is still at rev (holds no value
// when rev is ""); it returns the new revision, or persist.ErrConflict when another
// writer changed the signal since rev.
func (p *Persistence) WriteSignalAt(ctx context.Context, k Key, s *v1.Signal, rev persist.Revision) (persist.Revision, error) {
	return p.Signal.writeAt(ctx, k, k.Symbol, s, rev)
}

// WriteScheduleAt is WriteSchedule conditioned as WriteSignalAt.
func (p *Persistence) WriteScheduleAt(ctx context.Context, k Key, s *v1.Signal, rev persist.Revision) (persist.Revision, error) {
	return p.Schedule.writeAt(ctx, k, k.Symbol, s, rev)
}

// ReadSchedule returns the scheduled signal of k, nil when none waits.
func (p *Persistence) ReadSchedule(ctx context.Context, k Key) (*v1.Signal, error) {
	return p.Schedule.read(ctx, k, k.Symbol)
}

// WriteSchedule stores the scheduled signal of k; nil records that none waits.
func (p *Persistence) WriteSchedule(ctx context.Context, k Key, s *v1.Signal) error {
	return p.Schedule.write(ctx, k, k.Symbol, s)
}

// ReadSnapshot returns the write-ahead snapshot of k, nil when none was written.
func (p *Persistence) ReadSnapshot(ctx context.Context, k Key) (*v1.StrategySnapshot, error) {
	return p.Strategy.read(ctx, k, strategyEntity)
}

// WriteSnapshot stores the write-ahead snapshot of k.
func (p *Persistence) WriteSnapshot(ctx context.Context, k Key, s *v1.StrategySnapshot) error {
	return p.Strategy.write(ctx, k, strategyEntity, s)
}

// ReadRisk returns the open positions of a risk profile, empty when none.
func (p *Persistence) ReadRisk(ctx context.Context, k Key) (v1.RiskPositions, error) {
	r, err := p.Risk.read(ctx, k, riskEntity)
	if r == nil {
		r = v1.RiskPositions{}
	}
	return r, err
}

// WriteRisk stores the open positions of a risk profile.
func (p *Persistence) WriteRisk(ctx context.Context, k Key, r v1.RiskPositions) error {
	return p.Risk.write(ctx, k, riskEntity, r)
}

// ReadPartial returns the partial levels recorded for signalID, empty when none.
func (p *Persistence) ReadPartial(ctx context.Context, k Key, signalID string) (v1.PartialData, error) {
	d, err := p.Partial.read(ctx, k, signalID)
	if d == nil {
		d = v1.PartialData{}
	}
	return d, err
}

// WritePartial stores the partial levels of signalID ({} once the signal closed).
func (p *Persistence) WritePartial(ctx context.Context, k Key, signalID string, d v1.PartialData) error {
	if d == nil {
		d = v1.PartialData{}
	}
	return p.Partial.write(ctx, k, signalID, d)
}

// ReadBreakeven returns the breakeven state recorded for signalID, empty when none.
func (p *Persistence) ReadBreakeven(ctx context.Context, k Key, signalID string) (v1.BreakevenData, error) {
	d, err := p.Breakeven.read(ctx, k, signalID)
	if d == nil {
		d = v1.BreakevenData{}
	}
	return d, err
}

// WriteBreakeven stores the breakeven state of signalID ({} once the signal closed).
func (p *Persistence) WriteBreakeven(ctx context.Context, k Key, signalID string, d v1.BreakevenData) error {
	if d == nil {
		d = v1.BreakevenData{}
	}
	return p.Breakeven.write(ctx, k, signalID, d)
}

// ForgetSignal deletes the partial levels and breakeven state of signalID, once its close
// is recorded: they would otherwise stay behind for every signal ever opened.
func (p *Persistence) ForgetSignal(ctx context.Context, k Key, signalID string) error {
	return errors.Join(p.Partial.remove(ctx, k, signalID), p.Breakeven.remove(ctx, k, signalID))
}

// ForgetClosedSignals deletes the partial levels and breakeven state of every signal of k
// but the active one (none when activeID is empty): what a close interrupted before
// ForgetSignal, or an earlier version, left behind.
func (p *Persistence) ForgetClosedSignals(ctx context.Context, k Key, activeID string) error {
	return errors.Join(p.Partial.prune(ctx, k, activeID), p.Breakeven.prune(ctx, k, activeID))
}

// RecordHistory appends an event to the ledger entry of a signal, with the next sequence
// number. An event equal to one already recorded (the same decision written again, after a
// restart) changes nothing; any other is appended, so that a signal closed twice shows two
// closes. row, when not nil, is kept as the signal's row.
func (p *Persistence) RecordHistory(ctx context.Context, k Key, row *v1.Signal, id string, ev HistoryEvent) error {
	return p.RecordHistoryUnless(ctx, k, row, id, ev, func(events []HistoryEvent) bool {
		return slices.ContainsFunc(events, ev.same)
	})
}

// RecordHistoryUnless appends ev to the ledger entry of a signal (keeping row as its row,
// when not nil) unless recorded says the entry's events already hold it: a drain every
// restart sees again, the same edit refused again, an edit adopted again after a restart.
func (p *Persistence) RecordHistoryUnless(ctx context.Context, k Key, row *v1.Signal, id string, ev HistoryEvent,
	recorded func([]HistoryEvent) bool) error {
	s, err := p.History.Store(ctx, k)
	if err != nil {
		return err
	}
	entry, err := s.Read(ctx, id)
	if err != nil && !errors.Is(err, persist.ErrNotFound) {
		return err
	}
	if entry == nil {
		entry = &HistoryEntry{ID: id, Symbol: k.Symbol, Events: []HistoryEvent{}}
	}
	if recorded(entry.Events) {
		return nil
	}
	if row != nil {
		entry.Signal = row
	}
	ev.Seq = len(entry.Events) + 1
	entry.Events = append(entry.Events, ev)
	_, err = s.Write(ctx, id, entry)
	return err
}
