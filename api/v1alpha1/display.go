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

package v1alpha1

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/utils/ptr"
)

// StateDisplay is what `kubectl get strategystates` shows of a state's signal, at the
// precision a trader reads. The writer derives it from the signals in the same write, as
// it does the phase; the signals themselves keep every digit.
type StateDisplay struct {
	// position of the active signal, or of the scheduled one when none is active.
	// +optional
	Position Position `json:"position,omitempty"`
	// priceOpen is the entry price of the active signal, or of the scheduled one when none
	// is active.
	// +optional
	PriceOpen string `json:"priceOpen,omitempty"`
	// takeProfit is that signal's take profit: its trailing one when it has one.
	// +optional
	TakeProfit string `json:"takeProfit,omitempty"`
	// stopLoss is that signal's stop loss: its trailing one when it has one.
	// +optional
	StopLoss string `json:"stopLoss,omitempty"`
}

// DisplayFor is the display of the given signals: of signal when it is set, else of
// scheduled; nil when neither is.
func DisplayFor(signal, scheduled *Signal) *StateDisplay {
	s := signal
	if s == nil {
		s = scheduled
	}
	if s == nil {
		return nil
	}
	return &StateDisplay{Position: s.Position, PriceOpen: ReadablePrice(s.PriceOpen),
		TakeProfit: ReadablePrice(ptr.Deref(s.TrailingPriceTakeProfit, s.PriceTakeProfit)),
		StopLoss:   ReadablePrice(ptr.Deref(s.TrailingPriceStopLoss, s.PriceStopLoss))}
}

// ReadablePrice is a price as a trader reads it: seven significant digits, trailing zeros
// dropped (128.33527530592582 reads 128.3353; 0.000123456789 reads 0.0001234568).
func ReadablePrice(p float64) string {
	if p == 0 || math.IsNaN(p) || math.IsInf(p, 0) {
		return strconv.FormatFloat(p, 'f', -1, 64)
	}
	decimals := max(0, 7-int(math.Floor(math.Log10(math.Abs(p))))-1)
	s := strconv.FormatFloat(p, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// ReadablePercent is a PnL percentage as a trader reads it: its sign and two decimals
// ("+1.10 %").
func ReadablePercent(p float64) string { return fmt.Sprintf("%+.2f %%", p) }
