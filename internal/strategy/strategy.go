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

// Package strategy holds the strategies a runner can run: each looks at the candles of a
// symbol and may propose a signal. Strategies are deterministic: the same candles give the
// same proposals, so a run can be replayed exactly.
package strategy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
)

// Proposal is a signal a strategy wants opened.
type Proposal struct {
	Position v1.Position
	// PriceOpen is a limit entry; zero opens at the current price.
	PriceOpen float64
	// TakeProfit and StopLoss are prices.
	TakeProfit, StopLoss float64
	// Minutes the signal may stay open; nil is unbounded.
	Minutes *int64
	Note    string
}

// Strategy proposes signals.
type Strategy interface {
	// Lookback is how many candles before the current one Propose wants to see.
	Lookback() int
	// Propose looks at the candles of symbol, oldest first, the current one last, and
	// returns a proposal or nil.
	Propose(ctx context.Context, symbol string, candles []market.Candle) (*Proposal, error)
}

// Factory makes a strategy from its options (key=value pairs from the command line).
type Factory func(opts map[string]string) (Strategy, error)

var registry = map[string]Factory{}

// Register makes a strategy available by name. A name already taken, or empty, panics: a
// program's strategy must not silently replace a built-in one.
func Register(name string, f Factory) {
	if _, taken := registry[name]; taken || name == "" || f == nil {
		panic(fmt.Sprintf("strategy.Register: the name %q is empty or taken, or its factory is nil", name))
	}
	registry[name] = f
}

// Names lists the registered strategies.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New makes the strategy called name.
func New(name string, opts map[string]string) (Strategy, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return f(opts)
}
