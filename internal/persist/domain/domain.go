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

// Package domain holds the crash-state domains of a live strategy, backtest-kit's
// Persist*Adapter facades: signal, schedule, strategy snapshot, risk, partial and
// breakeven. Each domain keeps one memoized store per context key, over a backend that can
// be swapped at run time.
package domain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Domain names one kind of crash state.
type Domain string

// The domains: backtest-kit's six crash-state domains, and the ledger.
const (
	Signal    Domain = "signal"
	Schedule  Domain = "schedule"
	Strategy  Domain = "strategy"
	Risk      Domain = "risk"
	Partial   Domain = "partial"
	Breakeven Domain = "breakeven"
	// History is this project's ledger (not a backtest-kit domain): every signal by id,
	// with what happened to it.
	History Domain = "history"
	// HistoryArchive holds, on a database backend, the finished signals moved out of the
	// live ledger (ArchiveLedger); the Kubernetes backends seal them in archive ConfigMaps.
	// It is not among Domains: only the operator's archiving and clean-up open it.
	HistoryArchive Domain = "history-archive"
)

// Domains lists every domain.
var Domains = []Domain{Signal, Schedule, Strategy, Risk, Partial, Breakeven, History}

// Key is a store context. Risk uses RiskName and ExchangeName; the other domains use
// Symbol, StrategyName and ExchangeName.
type Key struct {
	Symbol       string
	StrategyName string
	ExchangeName string
	RiskName     string
}

// String is the memoization key, backtest-kit's "symbol:strategy:exchange" (or
// "risk:exchange").
func (k Key) String() string {
	if k.RiskName != "" {
		return k.RiskName + ":" + k.ExchangeName
	}
	return k.Symbol + ":" + k.StrategyName + ":" + k.ExchangeName
}

// Validate says which part of the key is missing for domain d.
func (k Key) Validate(d Domain) error {
	var missing []string
	if d == Risk {
		if k.RiskName == "" {
			missing = append(missing, "riskName")
		}
	} else {
		if k.Symbol == "" {
			missing = append(missing, "symbol")
		}
		if k.StrategyName == "" {
			missing = append(missing, "strategyName")
		}
	}
	if k.ExchangeName == "" {
		missing = append(missing, "exchangeName")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s store: %s must not be empty", d, strings.Join(missing, ", "))
	}
	return nil
}

// Backend opens the driver of one store context.
type Backend func(ctx context.Context, d Domain, k Key) (driver.Driver, error)

// MemoryBackend keeps every context in memory, for tests and backtests. Stores reopened
// from the same backend see what was written before.
func MemoryBackend() Backend {
	var mu sync.Mutex
	drivers := map[string]*memstore.Driver{}
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		mu.Lock()
		defer mu.Unlock()
		id := string(d) + "/" + k.String()
		if drivers[id] == nil {
			drivers[id] = memstore.New()
		}
		return unclosable{drivers[id]}, nil
	}
}

// unclosable keeps a shared memory driver usable after one store closes it.
type unclosable struct{ *memstore.Driver }

func (unclosable) Close() error { return nil }

// NopBackend stores nothing: writes succeed and vanish, reads find nothing.
func NopBackend() Backend {
	return func(context.Context, Domain, Key) (driver.Driver, error) { return memstore.Discard(), nil }
}

// Adapter is one domain: a memoized store per context over a swappable backend. It is safe
// for concurrent use.
type Adapter[T any] struct {
	domain Domain

	mu      sync.Mutex
	backend Backend
	stores  map[string]*persist.Store[T]
}

// NewAdapter returns the adapter of domain d over backend b.
func NewAdapter[T any](d Domain, b Backend) *Adapter[T] {
	return &Adapter[T]{domain: d, backend: b, stores: map[string]*persist.Store[T]{}}
}

// Use swaps the backend. Cached stores are closed; the next use of each context opens it
// on the new backend.
func (a *Adapter[T]) Use(b Backend) error {
	a.mu.Lock()
	old := a.stores
	a.backend, a.stores = b, map[string]*persist.Store[T]{}
	a.mu.Unlock()
	errs := make([]error, 0, len(old))
	for _, s := range old {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// Close closes every cached store.
func (a *Adapter[T]) Close() error { return a.Use(a.backend) }

// Store is the store of context k, opened and initialised on first use.
func (a *Adapter[T]) Store(ctx context.Context, k Key) (*persist.Store[T], error) {
	if err := k.Validate(a.domain); err != nil {
		return nil, err
	}
	id := k.String()
	a.mu.Lock()
	s, ok := a.stores[id]
	if !ok {
		d, err := a.backend(ctx, a.domain, k)
		if err != nil {
			a.mu.Unlock()
			return nil, fmt.Errorf("%s store %s: %w", a.domain, id, err)
		}
		s = persist.NewStore[T](string(a.domain)+" "+id, d)
		a.stores[id] = s
	}
	a.mu.Unlock()
	if _, err := s.Init(ctx, !ok); err != nil {
		return nil, err
	}
	return s, nil
}

// read returns the value at id, or the zero T when there is none.
func (a *Adapter[T]) read(ctx context.Context, k Key, id string) (T, error) {
	var zero T
	s, err := a.Store(ctx, k)
	if err != nil {
		return zero, err
	}
	v, err := s.Read(ctx, id)
	if errors.Is(err, persist.ErrNotFound) {
		return zero, nil
	}
	return v, err
}

// writeAt stores v at id only if id is still at rev, or holds no value when rev is "",
// and returns the new revision (persist.ErrConflict when the key moved).
func (a *Adapter[T]) writeAt(ctx context.Context, k Key, id string, v T, rev persist.Revision) (persist.Revision, error) {
	s, err := a.Store(ctx, k)
	if err != nil {
		return "", err
	}
	cond := persist.IfAbsent()
	if rev != "" {
		cond = persist.IfRevision(rev)
	}
	return s.Write(ctx, id, v, cond)
}

func (a *Adapter[T]) write(ctx context.Context, k Key, id string, v T) error {
	s, err := a.Store(ctx, k)
	if err != nil {
		return err
	}
	_, err = s.Write(ctx, id, v)
	return err
}

// remove deletes the value at id; a missing value is not an error.
func (a *Adapter[T]) remove(ctx context.Context, k Key, id string) error {
	s, err := a.Store(ctx, k)
	if err != nil {
		return err
	}
	if err := s.Remove(ctx, id); err != nil && !errors.Is(err, persist.ErrNotFound) {
		return err
	}
	return nil
}

// prune deletes every value of k but the one at keep (none when keep is empty).
func (a *Adapter[T]) prune(ctx context.Context, k Key, keep string) error {
	s, err := a.Store(ctx, k)
	if err != nil {
		return err
	}
	keys, err := s.SortedKeys(ctx)
	if err != nil {
		return err
	}
	for _, id := range keys {
		if id != keep {
			if err := a.remove(ctx, k, id); err != nil {
				return err
			}
		}
	}
	return nil
}
