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

// Package jsonfile is a store driver written outside strategy-operator, against its public
// contract (package driver) alone, and certified by its conformance suite (package
// drivertest): every key of a store in one JSON document on disk, rewritten whole through
// a temporary file and a rename on each change, with the store's fencing record in the
// same document. It keeps the example short, not fast: each write rewrites the document,
// and the rename is not followed by a sync of the folder.
package jsonfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// document is the file's content.
type document struct {
	Entries map[string]entry `json:"entries"`
	// Quarantine holds entries whose values were found unreadable, out of the store.
	Quarantine map[string]entry `json:"quarantine,omitempty"`
	// Next is the last revision given.
	Next uint64 `json:"next"`
	// Writer and Token are the newest fenced writer of the store.
	Writer string `json:"writer,omitempty"`
	Token  int64  `json:"token,omitempty"`
}

type entry struct {
	Value []byte `json:"value"`
	Rev   uint64 `json:"rev"`
}

// Driver is one writer's handle on the store in one file; several handles (of several
// writers) may share the file within a process.
type Driver struct {
	path  string
	fence driver.Fencing
	mu    *sync.Mutex // the file's, shared by its handles
}

var _ driver.Driver = (*Driver)(nil)

var (
	locksMu sync.Mutex
	locks   = map[string]*sync.Mutex{}
)

// New returns a driver on the store kept in the file at path, writing under fencing f
// (none when its token is 0).
func New(path string, f driver.Fencing) *Driver {
	locksMu.Lock()
	defer locksMu.Unlock()
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	if locks[abs] == nil {
		locks[abs] = &sync.Mutex{}
	}
	return &Driver{path: abs, fence: f, mu: locks[abs]}
}

// Path is the file the store is kept in.
func (d *Driver) Path() string { return d.path }

func (d *Driver) load() (*document, error) {
	doc := &document{Entries: map[string]entry{}}
	data, err := os.ReadFile(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	if doc.Entries == nil {
		doc.Entries = map[string]entry{}
	}
	return doc, nil
}

func (d *Driver) save(doc *document) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	tmp := d.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.path)
}

// change applies fn to the document under the file's lock and saves it, once d's fencing
// lets it write.
func (d *Driver) change(fn func(*document) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, err := d.load()
	if err != nil {
		return err
	}
	record, err := d.fence.Against(doc.Writer, doc.Token)
	if err != nil {
		return err
	}
	if err := fn(doc); err != nil {
		return err
	}
	if record {
		doc.Writer, doc.Token = d.fence.Writer, d.fence.Token
	}
	return d.save(doc)
}

// Init makes the folder and moves every entry whose value is not JSON into quarantine.
func (d *Driver) Init(context.Context, bool) (driver.InitReport, error) {
	var report driver.InitReport
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return report, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, err := d.load()
	if err != nil {
		return report, err
	}
	for k, e := range doc.Entries {
		if !json.Valid(e.Value) {
			if doc.Quarantine == nil {
				doc.Quarantine = map[string]entry{}
			}
			doc.Quarantine[k] = e
			delete(doc.Entries, k)
			report.Quarantined++
		}
	}
	if report.Quarantined == 0 {
		return report, nil
	}
	return report, d.save(doc)
}

func revision(n uint64) driver.Revision { return driver.Revision(strconv.FormatUint(n, 10)) }

// Get implements driver.Driver.
func (d *Driver) Get(_ context.Context, key string) (driver.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, err := d.load()
	if err != nil {
		return driver.Entry{}, err
	}
	e, ok := doc.Entries[key]
	if !ok {
		return driver.Entry{}, driver.ErrNotFound
	}
	return driver.Entry{Value: e.Value, Revision: revision(e.Rev)}, nil
}

// holds checks pre against the key's entry in doc.
func holds(doc *document, key string, pre driver.Precondition) error {
	e, ok := doc.Entries[key]
	switch {
	case pre.IfAbsent && ok:
		return fmt.Errorf("%w: %q exists", driver.ErrConflict, key)
	case pre.IfRevision != "" && (!ok || revision(e.Rev) != pre.IfRevision):
		return fmt.Errorf("%w: %q is not at revision %s", driver.ErrConflict, key, pre.IfRevision)
	}
	return nil
}

// Put implements driver.Driver.
func (d *Driver) Put(_ context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	var rev driver.Revision
	err := d.change(func(doc *document) error {
		if err := holds(doc, key, pre); err != nil {
			return err
		}
		doc.Next++
		doc.Entries[key] = entry{Value: value, Rev: doc.Next}
		rev = revision(doc.Next)
		return nil
	})
	return rev, err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(_ context.Context, key string, pre driver.Precondition) error {
	return d.change(func(doc *document) error {
		if _, ok := doc.Entries[key]; !ok {
			return driver.ErrNotFound
		}
		if err := holds(doc, key, pre); err != nil {
			return err
		}
		delete(doc.Entries, key)
		return nil
	})
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(context.Context) error {
	return d.change(func(doc *document) error {
		clear(doc.Entries)
		return nil
	})
}

// Fence implements driver.Fencer: a change that changes nothing but the fencing record.
func (d *Driver) Fence(context.Context) error {
	if d.fence.Token <= 0 {
		return nil
	}
	return d.change(func(*document) error { return nil })
}

// Keys implements driver.Driver.
func (d *Driver) Keys(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	doc, err := d.load()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(doc.Entries))
	for k := range doc.Entries {
		keys = append(keys, k)
	}
	return keys, nil
}

// Close implements driver.Driver: the driver holds nothing open.
func (d *Driver) Close() error { return nil }
