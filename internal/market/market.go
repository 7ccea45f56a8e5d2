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

// Package market is where a strategy's prices come from: one-minute candles by symbol and
// time, from a deterministic simulated market or a CSV file. Sources are pure: the same
// symbol and minute always give the same candle, so a run can be replayed exactly, and a
// restarted runner can process the candles it missed.
package market

import (
	"context"
	"errors"
	"time"
)

// Candle is one minute of trading.
type Candle struct {
	Symbol string
	// Time is the start of the minute.
	Time                   time.Time
	Open, High, Low, Close float64
	Volume                 float64
}

// ErrNoData: the source has no candle for that symbol and minute.
var ErrNoData = errors.New("no candle")

// Source gives candles. Implementations are safe for concurrent use.
type Source interface {
	// Candle returns the candle of symbol for the minute starting at minute (truncated to
	// the minute), or ErrNoData.
	Candle(ctx context.Context, symbol string, minute time.Time) (Candle, error)
}
