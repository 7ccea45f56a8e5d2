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
	"errors"
	"fmt"
	"math"
	"strings"
)

// ErrInvalidSignal is wrapped by every error ValidateSignal returns.
var ErrInvalidSignal = errors.New("invalid signal")

// SignalLimits are backtest-kit's configurable signal checks. The zero value turns each
// check off; DefaultSignalLimits has backtest-kit's defaults.
type SignalLimits struct {
	// MinTakeProfitPercent: take profit at least this far from the open price.
	MinTakeProfitPercent float64
	// MinStopLossPercent and MaxStopLossPercent bound the stop loss's distance from open.
	MinStopLossPercent float64
	MaxStopLossPercent float64
	// MaxLifetimeMinutes bounds minuteEstimatedTime.
	MaxLifetimeMinutes int64
}

// DefaultSignalLimits are backtest-kit's defaults.
var DefaultSignalLimits = SignalLimits{
	MinTakeProfitPercent: 0.5,
	MinStopLossPercent:   0.5,
	MaxStopLossPercent:   20,
	MaxLifetimeMinutes:   1440,
}

// SignalError lists every rule a signal breaks.
type SignalError struct {
	ID       string
	Problems []string
}

func (e *SignalError) Error() string {
	return fmt.Sprintf("invalid signal %q: %s", e.ID, strings.Join(e.Problems, "; "))
}

// Unwrap makes errors.Is(err, ErrInvalidSignal) true.
func (e *SignalError) Unwrap() error { return ErrInvalidSignal }

// ValidateSignal checks s with backtest-kit's rules and reports every broken rule
// together. currentPrice, when not nil, adds the checks that need the market price: an
// immediate signal must not already be past its stop loss or take profit. The messages of
// the rules that need no price are the ones the API server gives (see the CEL rules on
// Signal).
func ValidateSignal(s *Signal, limits SignalLimits, currentPrice *float64) error {
	if s == nil {
		return nil
	}
	var p problems
	if s.ID == "" {
		p.add("id must not be empty")
	}
	long, short := s.Position == PositionLong, s.Position == PositionShort
	if !long && !short {
		p.add(`position must be "long" or "short", got %q`, s.Position)
	}
	if p.prices(s) && (long || short) {
		p.direction(s, long)
		p.distances(s, limits)
		if currentPrice != nil && !s.IsScheduled {
			p.current(s, long, *currentPrice)
		}
	}
	p.lifetime(s, limits)
	if m := s.Multiplier; m != nil && (math.IsNaN(*m) || math.IsInf(*m, 0) || *m <= 0) {
		p.add("multiplier must be positive, got %v", *m)
	}
	if len(p) == 0 {
		return nil
	}
	return &SignalError{ID: s.ID, Problems: p}
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// prices checks that the three prices are finite and positive, and says whether they are.
func (p *problems) prices(s *Signal) bool {
	ok := true
	for _, pr := range []struct {
		name string
		v    float64
	}{{"priceOpen", s.PriceOpen}, {"priceTakeProfit", s.PriceTakeProfit}, {"priceStopLoss", s.PriceStopLoss}} {
		switch {
		case math.IsNaN(pr.v) || math.IsInf(pr.v, 0):
			p.add("%s must be a finite number, got %v", pr.name, pr.v)
			ok = false
		case pr.v <= 0:
			p.add("%s must be positive, got %v", pr.name, pr.v)
			ok = false
		}
	}
	return ok
}

// direction: long TP > open > SL, short the mirror.
func (p *problems) direction(s *Signal, long bool) {
	open, tp, sl := s.PriceOpen, s.PriceTakeProfit, s.PriceStopLoss
	if long {
		if tp <= open {
			p.add("Long: priceTakeProfit must be > priceOpen (%v <= %v)", tp, open)
		}
		if sl >= open {
			p.add("Long: priceStopLoss must be < priceOpen (%v >= %v)", sl, open)
		}
		return
	}
	if tp >= open {
		p.add("Short: priceTakeProfit must be < priceOpen (%v >= %v)", tp, open)
	}
	if sl <= open {
		p.add("Short: priceStopLoss must be > priceOpen (%v <= %v)", sl, open)
	}
}

func (p *problems) distances(s *Signal, limits SignalLimits) {
	open := s.PriceOpen
	tpDist := math.Abs(s.PriceTakeProfit-open) / open * 100
	slDist := math.Abs(s.PriceStopLoss-open) / open * 100
	if limits.MinTakeProfitPercent > 0 && tpDist < limits.MinTakeProfitPercent {
		p.add("take profit too close to priceOpen (%.3f%%): minimum distance is %v%% to cover fees",
			tpDist, limits.MinTakeProfitPercent)
	}
	if limits.MinStopLossPercent > 0 && slDist < limits.MinStopLossPercent {
		p.add("stop loss too close to priceOpen (%.3f%%): minimum distance is %v%%", slDist, limits.MinStopLossPercent)
	}
	if limits.MaxStopLossPercent > 0 && slDist > limits.MaxStopLossPercent {
		p.add("stop loss too far from priceOpen (%.3f%%): maximum distance is %v%%", slDist, limits.MaxStopLossPercent)
	}
}

func (p *problems) lifetime(s *Signal, limits SignalLimits) {
	m := s.MinuteEstimatedTime
	switch {
	case m == nil:
	case *m <= 0:
		p.add("minuteEstimatedTime must be a positive integer, or null for unbounded (got %d)", *m)
	case limits.MaxLifetimeMinutes > 0 && *m > limits.MaxLifetimeMinutes:
		p.add("minuteEstimatedTime (%d) exceeds the maximum of %d minutes", *m, limits.MaxLifetimeMinutes)
	}
}

// current: an immediate signal must not already be past its stop loss or take profit.
func (p *problems) current(s *Signal, long bool, cp float64) {
	tp, sl := s.PriceTakeProfit, s.PriceStopLoss
	switch {
	case long && cp <= sl:
		p.add("Long: currentPrice (%v) <= priceStopLoss (%v): the signal would close at once", cp, sl)
	case long && cp >= tp:
		p.add("Long: currentPrice (%v) >= priceTakeProfit (%v): the profit has already passed", cp, tp)
	case !long && cp >= sl:
		p.add("Short: currentPrice (%v) >= priceStopLoss (%v): the signal would close at once", cp, sl)
	case !long && cp <= tp:
		p.add("Short: currentPrice (%v) <= priceTakeProfit (%v): the profit has already passed", cp, tp)
	}
}
