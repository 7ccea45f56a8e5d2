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

// Package sdk runs a trading strategy of your own, written in Go, on strategy-operator: your
// program registers its strategy and calls Main, and becomes a runner like the operator's
// own (the same flags, the same restore, Lease, fencing and signal lifecycle), whose image
// a Strategy names.
//
//	func main() {
//		sdk.Register("my-strategy", func(opts map[string]string) (sdk.Strategy, error) { … })
//		sdk.Main() // runner flags: --strategy=my-strategy --backend=… --symbols=…
//	}
//
// The persistence alone (the store contract and its backends) is package store.
package sdk

import (
	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/market"
	"github.com/strategyops/strategy-operator/internal/runnercmd"
	"github.com/strategyops/strategy-operator/internal/strategy"
)

// Strategy proposes signals: Lookback says how many earlier candles it wants, Propose
// looks at a symbol's candles (oldest first, the current one last) and returns a proposal
// or nil. A strategy must be deterministic: the same candles give the same proposals, so a
// restarted runner replays exactly.
type Strategy = strategy.Strategy

// Proposal is a signal a strategy wants opened; the runner validates it with backtest-kit's
// rules and runs its lifecycle (take profit, stop loss, expiry).
type Proposal = strategy.Proposal

// Factory makes a strategy from its options (--option KEY=VALUE on the command line).
type Factory = strategy.Factory

// Candle is one minute of a symbol's market.
type Candle = market.Candle

// Position is a signal's side.
type Position = v1.Position

// The sides of a signal.
const (
	Long  = v1.PositionLong
	Short = v1.PositionShort
)

// Register makes a strategy available to Main by name (--strategy=name), beside the built-in
// ones (indicator, scripted).
func Register(name string, f Factory) { strategy.Register(name, f) }

// Main runs the runner on the process's arguments and exits: see `--help`.
func Main() { runnercmd.Main() }
