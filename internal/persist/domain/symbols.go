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

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// SymbolState is what one symbol of a strategy holds now.
type SymbolState struct {
	Symbol string
	// Signal and Schedule are the open and the scheduled signal, nil when none.
	Signal, Schedule *v1.Signal
	// Missing: a Kubernetes object of the symbol's state does not exist (deleted by hand,
	// or not made yet), so what it holds is unknown.
	Missing bool
	// LastClosed is the most recent closed signal of the symbol's live ledger (when asked
	// for), nil when none.
	LastClosed *HistoryEntry
}

// Live reports whether the symbol has a signal open or scheduled, or may have (Missing).
func (s SymbolState) Live() bool { return s.Missing || s.Signal != nil || s.Schedule != nil }

// ReadSymbols reads the state of each symbol of a strategy: the one place the operator
// reads signals from a store, for the open-signal count, the symbols still live after a
// spec change, and the last close.
func (p *Persistence) ReadSymbols(ctx context.Context, strategyName, exchangeName string, symbols []string,
	ledger bool) ([]SymbolState, error) {
	out := make([]SymbolState, 0, len(symbols))
	for _, sym := range symbols {
		k := StrategyKey(sym, strategyName, exchangeName)
		st := SymbolState{Symbol: sym}
		var err error
		if st.Signal, err = p.ReadSignal(ctx, k); err == nil {
			st.Schedule, err = p.ReadSchedule(ctx, k)
		}
		switch {
		case errors.Is(err, persist.ErrGone):
			st.Missing = true
		case err != nil:
			return nil, fmt.Errorf("reading the signals of %s: %w", sym, err)
		}
		if ledger {
			if st.LastClosed, err = p.lastClosed(ctx, k); err != nil {
				return nil, fmt.Errorf("reading the ledger of %s: %w", sym, err)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// lastClosed is the entry of k's live ledger closed last.
func (p *Persistence) lastClosed(ctx context.Context, k Key) (*HistoryEntry, error) {
	s, err := p.History.Store(ctx, k)
	if errors.Is(err, persist.ErrGone) {
		return nil, nil // no ledger object yet: nothing closed
	}
	if err != nil {
		return nil, err
	}
	var last *HistoryEntry
	var at int64
	for h, err := range s.Values(ctx) {
		if errors.Is(err, persist.ErrGone) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if c := h.Close(); c != nil && (last == nil || c.At > at) {
			last, at = h, c.At
		}
	}
	return last, nil
}

// Close is the entry's close event, nil when it has none.
func (h *HistoryEntry) Close() *HistoryEvent {
	for i := range h.Events {
		if h.Events[i].Kind == EventClosed {
			return &h.Events[i]
		}
	}
	return nil
}
