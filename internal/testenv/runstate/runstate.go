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

// Package runstate reads what a run of the runner left, for tests that compare two runs of
// one feed (an interrupted one against an uninterrupted one).
package runstate

import (
	"context"
	"fmt"

	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// Ledgers reads the live ledger of each of symbols from p.
func Ledgers(ctx context.Context, p *domain.Persistence, strategyName, exchangeName string,
	symbols []string) (map[string][]*domain.HistoryEntry, error) {
	entries := map[string][]*domain.HistoryEntry{}
	for _, sym := range symbols {
		store, err := p.History.Store(ctx, domain.StrategyKey(sym, strategyName, exchangeName))
		if err != nil {
			return nil, err
		}
		for e, err := range store.Values(ctx) {
			if err != nil {
				return nil, err
			}
			entries[sym] = append(entries[sym], e)
		}
	}
	return entries, nil
}

// Of is what a run left on symbols, in a form two runs of one feed compare by: each ledger
// entry of entries (by symbol) under its signal id, and under "SYMBOL final" the signal and
// schedule the symbol ended with, read from p. Each is canonical JSON (jsonx.Canonical): a
// row read back from an API server or a database has its keys in another order than one
// written to a file.
func Of(ctx context.Context, entries map[string][]*domain.HistoryEntry, p *domain.Persistence,
	strategyName, exchangeName string, symbols []string) (map[string]string, error) {
	out := map[string]string{}
	canonical := func(what string, v any) error {
		s, err := jsonx.Canonical(v)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out[what] = s
		return nil
	}
	for _, sym := range symbols {
		for _, e := range entries[sym] {
			if err := canonical(e.ID, e); err != nil {
				return nil, err
			}
		}
		k := domain.StrategyKey(sym, strategyName, exchangeName)
		sig, err := p.ReadSignal(ctx, k)
		if err != nil {
			return nil, err
		}
		sched, err := p.ReadSchedule(ctx, k)
		if err != nil {
			return nil, err
		}
		if err := canonical(sym+" final", []any{sig, sched}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
