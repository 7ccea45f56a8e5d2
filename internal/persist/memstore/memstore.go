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

// Package memstore is an in-memory persistence backend, for tests and backtests.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

type entry struct {
	value []byte
	rev   uint64
}

// Driver keeps values in a map. The zero value is not usable; call New.
type Driver struct {
	mu      sync.Mutex
	entries map[string]entry
	next    uint64
}

var _ driver.Driver = (*Driver)(nil)

// New returns an empty in-memory driver.
func New() *Driver { return &Driver{entries: map[string]entry{}} }

// Init does nothing: memory holds no old data.
func (d *Driver) Init(context.Context, bool) (driver.InitReport, error) {
	return driver.InitReport{}, nil
}

func revision(n uint64) driver.Revision { return driver.Revision(strconv.FormatUint(n, 10)) }

// Get implements driver.Driver.
func (d *Driver) Get(_ context.Context, key string) (driver.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[key]
	if !ok {
		return driver.Entry{}, driver.ErrNotFound
	}
	return driver.Entry{Value: bytes.Clone(e.value), Revision: revision(e.rev)}, nil
}

func (d *Driver) check(key string, pre driver.Precondition) error {
	e, ok := d.entries[key]
	switch {
	case pre.IfAbsent && ok:
		return fmt.Errorf("%w: key exists", driver.ErrConflict)
	case pre.IfRevision != "" && (!ok || revision(e.rev) != pre.IfRevision):
		return fmt.Errorf("%w: want revision %s", driver.ErrConflict, pre.IfRevision)
	}
	return nil
}

// Put implements driver.Driver.
func (d *Driver) Put(_ context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(key, pre); err != nil {
		return "", err
	}
	d.next++
	d.entries[key] = entry{value: bytes.Clone(value), rev: d.next}
	return revision(d.next), nil
}

// Delete implements driver.Driver.
func (d *Driver) Delete(_ context.Context, key string, pre driver.Precondition) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[key]; !ok {
		return driver.ErrNotFound
	}
	if err := d.check(key, pre); err != nil {
		return err
	}
	delete(d.entries, key)
	return nil
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.entries)
	return nil
}

// Keys implements driver.Driver.
func (d *Driver) Keys(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := make([]string, 0, len(d.entries))
	for k := range d.entries {
		keys = append(keys, k)
	}
	return keys, nil
}

// Close implements driver.Driver.
func (d *Driver) Close() error { return nil }

// Discard returns a driver that stores nothing: every write succeeds and is forgotten,
// every read finds nothing. It is backtest-kit's no-op preset.
func Discard() driver.Driver { return discard{} }

type discard struct{}

func (discard) Init(context.Context, bool) (driver.InitReport, error) {
	return driver.InitReport{}, nil
}
func (discard) Get(context.Context, string) (driver.Entry, error) {
	return driver.Entry{}, driver.ErrNotFound
}
func (discard) Put(context.Context, string, []byte, driver.Precondition) (driver.Revision, error) {
	return "discarded", nil
}
func (discard) Delete(context.Context, string, driver.Precondition) error { return driver.ErrNotFound }
func (discard) DeleteAll(context.Context) error                           { return nil }
func (discard) Keys(context.Context) ([]string, error)                    { return nil, nil }
func (discard) Close() error                                              { return nil }
