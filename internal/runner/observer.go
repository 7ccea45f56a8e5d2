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
	// Proposed: the strategy proposed a signal on symbol at candle; refused is why the
	// signal rules refused it, nil when it was accepted.
	Proposed(symbol string, candle time.Time, refused error)
}

// Observers is one Observer that tells each of obs, in order.
type Observers []Observer

// Signals implements Observer.
func (o Observers) Signals(symbol string, open, scheduled int) {
	for _, x := range o {
		x.Signals(symbol, open, scheduled)
	}
}

// Processed implements Observer.
func (o Observers) Processed(symbol string, candle time.Time) {
	for _, x := range o {
		x.Processed(symbol, candle)
	}
}

// Recorded implements Observer.
func (o Observers) Recorded(symbol string, ev domain.HistoryEvent) {
	for _, x := range o {
		x.Recorded(symbol, ev)
	}
}

// StoreChanged implements Observer.
func (o Observers) StoreChanged(symbol string) {
	for _, x := range o {
		x.StoreChanged(symbol)
	}
}

// Proposed implements Observer.
func (o Observers) Proposed(symbol string, candle time.Time, refused error) {
	for _, x := range o {
		x.Proposed(symbol, candle, refused)
	}
}

// nopObserver hears nothing.
type nopObserver struct{}

func (nopObserver) Signals(string, int, int)             {}
func (nopObserver) Processed(string, time.Time)          {}
func (nopObserver) Recorded(string, domain.HistoryEvent) {}
func (nopObserver) StoreChanged(string)                  {}
func (nopObserver) Proposed(string, time.Time, error)    {}

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
