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
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// The ledger's event kinds besides the signal's own life (scheduled, opened, closed,
// cancelled): what happened to it from outside the strategy.
const (
	// EventEdited: a hand edit of the signal's levels was adopted (Before, After).
	EventEdited = "edited"
	// EventEditRefused: a hand edit was refused and the runner's signal written back
	// (Before: the runner's levels, kept; After: the edit's; Note: why).
	EventEditRefused = "edit_refused"
	// EventDraining: the signal's symbol was taken off the strategy (or its identity
	// changed); the runner watches the signal to its end and opens nothing after it.
	EventDraining = "draining"
)

// Levels are what a hand edit may change of a signal, and what a ledger event records of
// it before and after.
type Levels struct {
	PriceTakeProfit float64 `json:"priceTakeProfit"`
	PriceStopLoss   float64 `json:"priceStopLoss"`
	// MinuteEstimatedTime nil is unbounded.
	MinuteEstimatedTime *int64 `json:"minuteEstimatedTime"`
}

// LevelsOf are the levels of s.
func LevelsOf(s *v1.Signal) *Levels {
	return &Levels{PriceTakeProfit: s.PriceTakeProfit, PriceStopLoss: s.PriceStopLoss,
		MinuteEstimatedTime: s.MinuteEstimatedTime}
}

// SameEdit reports whether o records the edit ev does: the same kind, levels before and
// after (when and in what order aside).
func (ev HistoryEvent) SameEdit(o HistoryEvent) bool {
	return o.Kind == ev.Kind && reflect.DeepEqual(o.Before, ev.Before) && reflect.DeepEqual(o.After, ev.After)
}

// ErrLedgerGap: a ledger entry's events do not replay: one was lost, repeated or written
// over.
var ErrLedgerGap = errors.New("the ledger entry does not replay")

// Replay plays the entry's events in their order, from the levels the signal was scheduled
// or opened with through every adopted edit, and returns the levels it ended with. Each
// edit, adopted or refused, must start from the levels replayed so far, and the sequence
// numbers must run from 1 without a gap; otherwise the error wraps ErrLedgerGap.
func (h *HistoryEntry) Replay() (*Levels, error) {
	events := slices.SortedFunc(slices.Values(h.Events), func(a, b HistoryEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	var at *Levels
	for i, ev := range events {
		if ev.Seq != i+1 {
			return nil, fmt.Errorf("%w: signal %s: event %d has sequence number %d", ErrLedgerGap, h.ID, i+1, ev.Seq)
		}
		switch {
		case at == nil && ev.After != nil && (ev.Kind == EventScheduled || ev.Kind == EventOpened):
			at = ev.After
		case ev.Kind == EventEdited || ev.Kind == EventEditRefused:
			if at == nil || ev.Before == nil || !reflect.DeepEqual(*ev.Before, *at) {
				return nil, fmt.Errorf("%w: signal %s: %s (event %d) starts from other levels than the ledger "+
					"reached", ErrLedgerGap, h.ID, ev.Kind, ev.Seq)
			}
			if ev.Kind == EventEdited {
				at = ev.After
			}
		}
	}
	if at == nil {
		return nil, fmt.Errorf("%w: signal %s: no event records the levels it began with", ErrLedgerGap, h.ID)
	}
	return at, nil
}
