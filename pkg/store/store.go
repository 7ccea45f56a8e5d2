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

// Package store is a Go port of backtest-kit's pluggable persistence, for the operator and
// for programs of your own: one store contract over interchangeable backends.
//
// Store is the portable half: it validates keys, encodes values as JSON, orders keys the
// way backtest-kit does and names the store and key in every error. Backends only move
// bytes: package driver is their contract, which a backend of your own implements, and
// package drivertest the conformance suite every backend passes (RunConformanceTests). The
// file store in backtest-kit's own layout and the memory store are File and Memory; the
// crash state of a strategy, by backtest-kit's kinds, is what runner exec serves over HTTP
// (package stateapi).
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The errors every store returns, for errors.Is.
var (
	ErrNotFound   = driver.ErrNotFound
	ErrConflict   = driver.ErrConflict
	ErrInvalidKey = driver.ErrInvalidKey
	ErrTooLarge   = driver.ErrTooLarge
	ErrFenced     = driver.ErrFenced
	ErrLocked     = driver.ErrLocked
	// ErrUnknownOutcome: a write may or may not have been applied; read to find out.
	ErrUnknownOutcome = driver.ErrUnknownOutcome
	ErrNotOwned       = driver.ErrNotOwned
	ErrInvalidValue   = driver.ErrInvalidValue
	ErrClosed         = driver.ErrClosed
	ErrGone           = driver.ErrGone
)

// Revision identifies one stored version of a key; see driver.Revision.
type Revision = driver.Revision

// MaxKeyLength is the longest key, in bytes, that a store accepts.
const MaxKeyLength = 255

// ValidateKey reports whether key can be stored: non-empty UTF-8 of at most MaxKeyLength
// bytes without NUL.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLength:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidKey, len(key), MaxKeyLength)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidKey, key)
	case slices.Contains([]byte(key), 0):
		return fmt.Errorf("%w: %q contains NUL", ErrInvalidKey, key)
	}
	return nil
}

// Store is a typed store of values of type T over one driver.
type Store[T any] struct {
	name string
	d    driver.Driver

	// calls is held shared by every call in progress and exclusively by Close, which so
	// waits for them: the driver is never used after its Close.
	calls  sync.RWMutex
	mu     sync.Mutex
	inited bool
	closed bool
	report driver.InitReport
}

// NewStore returns a store named name (used in errors and logs) over d.
func NewStore[T any](name string, d driver.Driver) *Store[T] {
	return &Store[T]{name: name, d: d}
}

// Name is the store's name.
func (s *Store[T]) Name() string { return s.name }

// Driver is the backend under the store.
func (s *Store[T]) Driver() driver.Driver { return s.d }

// Init prepares the store once; later calls return the first successful report. A failed
// Init is tried again by the next call. Every other method calls it first.
func (s *Store[T]) Init(ctx context.Context, initial bool) (driver.InitReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return driver.InitReport{}, s.wrap("init", "", ErrClosed)
	}
	if s.inited {
		return s.report, nil
	}
	report, err := s.d.Init(ctx, initial)
	if err != nil {
		return report, s.wrap("init", "", err)
	}
	s.inited, s.report = true, report
	return report, nil
}

// begin starts a call: it holds off Close until release, and initializes the store.
func (s *Store[T]) begin(ctx context.Context) (release func(), err error) {
	s.calls.RLock()
	if _, err := s.Init(ctx, false); err != nil {
		s.calls.RUnlock()
		return nil, err
	}
	return s.calls.RUnlock, nil
}

func (s *Store[T]) wrap(op, key string, err error) error {
	if key == "" {
		return fmt.Errorf("store %s: %s: %w", s.name, op, err)
	}
	return fmt.Errorf("store %s: %s %q: %w", s.name, op, key, err)
}

// Read returns the value at key, or an error wrapping ErrNotFound.
func (s *Store[T]) Read(ctx context.Context, key string) (T, error) {
	v, _, err := s.ReadRevision(ctx, key)
	return v, err
}

// ReadRevision returns the value at key and its revision.
func (s *Store[T]) ReadRevision(ctx context.Context, key string) (T, Revision, error) {
	var v T
	if err := ValidateKey(key); err != nil {
		return v, "", s.wrap("read", key, err)
	}
	release, err := s.begin(ctx)
	if err != nil {
		return v, "", err
	}
	defer release()
	e, err := s.d.Get(ctx, key)
	if err != nil {
		return v, "", s.wrap("read", key, err)
	}
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return v, "", s.wrap("decode", key, err)
	}
	return v, e.Revision, nil
}

// Has reports whether key holds a value.
func (s *Store[T]) Has(ctx context.Context, key string) (bool, error) {
	if err := ValidateKey(key); err != nil {
		return false, s.wrap("has", key, err)
	}
	release, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	_, err = s.d.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	default:
		return false, s.wrap("has", key, err)
	}
}

// WriteOption makes a write or remove conditional.
type WriteOption func(*driver.Precondition)

// IfRevision applies the operation only if the key is still at rev.
func IfRevision(rev Revision) WriteOption {
	return func(p *driver.Precondition) { p.IfRevision = rev }
}

// IfAbsent applies a write only if the key holds no value.
func IfAbsent() WriteOption {
	return func(p *driver.Precondition) { p.IfAbsent = true }
}

func precondition(opts []WriteOption) driver.Precondition {
	var p driver.Precondition
	for _, o := range opts {
		o(&p)
	}
	return p
}

// Write stores v at key atomically and returns its revision.
func (s *Store[T]) Write(ctx context.Context, key string, v T, opts ...WriteOption) (Revision, error) {
	if err := ValidateKey(key); err != nil {
		return "", s.wrap("write", key, err)
	}
	data, err := jsonx.Marshal(v)
	if err != nil {
		return "", s.wrap("encode", key, err)
	}
	release, err := s.begin(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	rev, err := s.d.Put(ctx, key, data, precondition(opts))
	if err != nil {
		return "", s.wrap("write", key, err)
	}
	return rev, nil
}

// Remove deletes key; an error wrapping ErrNotFound if it holds no value.
func (s *Store[T]) Remove(ctx context.Context, key string, opts ...WriteOption) error {
	if err := ValidateKey(key); err != nil {
		return s.wrap("remove", key, err)
	}
	release, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := s.d.Delete(ctx, key, precondition(opts)); err != nil {
		return s.wrap("remove", key, err)
	}
	return nil
}

// RemoveAll deletes every key.
func (s *Store[T]) RemoveAll(ctx context.Context) error {
	release, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := s.d.DeleteAll(ctx); err != nil {
		return s.wrap("remove all", "", err)
	}
	return nil
}

// SortedKeys lists the keys in backtest-kit's order (see CompareKeys).
func (s *Store[T]) SortedKeys(ctx context.Context) ([]string, error) {
	release, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	keys, err := s.d.Keys(ctx)
	if err != nil {
		return nil, s.wrap("keys", "", err)
	}
	slices.SortFunc(keys, CompareKeys)
	return keys, nil
}

// Keys iterates the keys in backtest-kit's order. An error ends the iteration.
func (s *Store[T]) Keys(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		keys, err := s.SortedKeys(ctx)
		if err != nil {
			yield("", err)
			return
		}
		for _, k := range keys {
			if !yield(k, nil) {
				return
			}
		}
	}
}

// Values iterates the values in key order. A key removed while iterating is passed over.
// A driver that can read all its keys at once (driver.Snapshotter) is read once.
func (s *Store[T]) Values(ctx context.Context) iter.Seq2[T, error] {
	if sn, ok := s.d.(driver.Snapshotter); ok {
		return s.snapshotValues(ctx, sn)
	}
	return func(yield func(T, error) bool) {
		for k, err := range s.Keys(ctx) {
			var v T
			if err == nil {
				v, err = s.Read(ctx, k)
				if isNotFound(err) {
					continue
				}
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

func (s *Store[T]) snapshotValues(ctx context.Context, sn driver.Snapshotter) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		release, err := s.begin(ctx)
		if err != nil {
			yield(zero, err)
			return
		}
		defer release()
		all, err := sn.Snapshot(ctx)
		if err != nil {
			yield(zero, s.wrap("snapshot", "", err))
			return
		}
		keys := slices.SortedFunc(maps.Keys(all), CompareKeys)
		for _, k := range keys {
			var v T
			err := json.Unmarshal(all[k].Value, &v)
			if err != nil {
				err = s.wrap("decode", k, err)
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// Filter iterates the values for which keep is true, in key order.
func (s *Store[T]) Filter(ctx context.Context, keep func(T) bool) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for v, err := range s.Values(ctx) {
			if err != nil {
				yield(v, err)
				return
			}
			if keep(v) && !yield(v, nil) {
				return
			}
		}
	}
}

// Take returns up to n values, in key order, for which keep is true (all when keep is nil).
func (s *Store[T]) Take(ctx context.Context, n int, keep func(T) bool) ([]T, error) {
	if keep == nil {
		keep = func(T) bool { return true }
	}
	out := make([]T, 0, max(n, 0))
	if n <= 0 {
		return out, nil
	}
	for v, err := range s.Filter(ctx, keep) {
		if err != nil {
			return out, err
		}
		out = append(out, v)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// Close releases the driver once the calls in progress have returned. Every later call
// returns an error wrapping ErrClosed, and the driver is closed once however often Close
// is called: the driver contract's
// promise about Close is kept here, for every backend.
func (s *Store[T]) Close() error {
	s.calls.Lock()
	defer s.calls.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.d.Close()
}
