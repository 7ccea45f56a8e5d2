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
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// Observer hears what the engine does: the runner's metrics. Its methods are called on the
// goroutine that runs the engine, and must not block.
type Observer interface {
	// Signals: symbol holds open and scheduled signals (0 or 1 each), after Restore and
	// after each candle.
	Signals(symbol string, open, scheduled int)
	// Processed: symbol's candle that starts at candle is processed (its decision applied
	// and the snapshot moved on).
	Processed(symbol string, candle time.Time)
	// Recorded: an event of a signal of symbol went into the ledger (opened, scheduled,
	// closed, cancelled), a close's with its PnL when it could be computed.
	Recorded(symbol string, ev domain.HistoryEvent)
	// StoreChanged: a conditional write of symbol's signal or scheduled signal found it
	// changed by another writer (a hand edit), and the candle is decided again.
	StoreChanged(symbol string)
}

// nopObserver hears nothing.
type nopObserver struct{}

func (nopObserver) Signals(string, int, int)             {}
func (nopObserver) Processed(string, time.Time)          {}
func (nopObserver) Recorded(string, domain.HistoryEvent) {}
func (nopObserver) StoreChanged(string)                  {}

// report tells the observer st's open and scheduled signals.
func (e *Engine) report(st *symbolState) {
	open, scheduled := 0, 0
	if st.active != nil {
		open = 1
	}
	if st.scheduled != nil {
		scheduled = 1
	}
	e.cfg.Observer.Signals(st.key.Symbol, open, scheduled)
}
