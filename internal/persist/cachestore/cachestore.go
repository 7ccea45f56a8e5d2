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

// Package cachestore is a read-through, write-through cache of values by revision, in front
// of a driver that can tell a key's revision without its value (driver.RevisionProber).
//
//   - Get of a cached key asks the store for the key's revision alone, one cheap round trip.
//     When it is the revision cached, the cached value is served: no value crosses the
//     wire. When it is another, the value is read (Get) and cached; when the key is gone,
//     the answer is ErrNotFound and the key is dropped. A key not cached is read and cached.
//   - Put, Delete and DeleteAll go to the store with the caller's precondition untouched, so
//     a conditional write made with a stale revision fails with driver.ErrConflict as it
//     would without the cache. A Put that succeeds caches the value at the revision it
//     returned; Delete drops the key, DeleteAll every key. A write that fails drops its key
//     (DeleteAll: every key), whatever the error: a write whose answer was lost may have
//     changed the store.
//   - The cache holds at most Options.MaxEntries keys and Options.MaxBytes bytes of values,
//     evicting the least recently used; a value larger than MaxBytes is not cached.
//
// Every cached read is checked against the store's revision at the time of the read, so
// the cache never serves a value the store no longer holds: a read through the cache is as
// fresh as a Get of the store. Processes with caches of their own over one store (or a
// cache beside writers that bypass it) therefore never serve each other stale data; what
// the cache saves is the transfer of the value, not the round trip. This rests on the
// contract's revisions: a revision names one version of one key, whoever wrote it. (The
// database drivers derive theirs from what backtest-kit's own adapters also change on
// every write, so that a row a bot rewrote is a new revision here too.)
//
// A value cached by Put is the bytes the caller wrote; a store that keeps values in its own
// form (PostgreSQL's jsonb) gives an equal value in its own bytes once a read fetches it.
//
// The driver New returns implements driver.RevisionProber, and driver.Snapshotter and
// driver.TokenRecorder exactly when the inner driver does: a Snapshot is the inner one,
// which also refreshes the cached keys; RecordedToken is the inner one.
//
// Reads report to the counter strategyops_store_cache_reads_total{result="hit"|"miss"} in
// controller-runtime's registry: a hit served the cached value, a miss read the store's.
package cachestore

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The bounds of a cache whose Options leave them unset.
const (
	DefaultMaxEntries = 10_000
	DefaultMaxBytes   = 64 << 20
)

// Options bound a cache; a field of 0 or less takes its default.
type Options struct {
	// MaxEntries is the most keys the cache holds (DefaultMaxEntries).
	MaxEntries int
	// MaxBytes is the most bytes of values the cache holds (DefaultMaxBytes).
	MaxBytes int64
}

var (
	reads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strategyops_store_cache_reads_total",
		Help: "Reads through a store cache: hit when the cached value was still current, miss when it was read " +
			"from the store.",
	}, []string{"result"})
	hits   = reads.WithLabelValues("hit")
	misses = reads.WithLabelValues("miss")
)

func init() { crmetrics.Registry.MustRegister(reads) }

// cache is the driver New returns, before the optional interfaces of its inner driver.
type cache struct {
	inner      driver.Driver
	probe      driver.RevisionProber
	maxEntries int
	maxBytes   int64

	mu      sync.Mutex
	items   map[string]*list.Element // of *item, in recency
	recency list.List                // front: the most recently used
	bytes   int64                    // of the cached values
}

// item is one cached key. Its entry is replaced, never changed, so that a value read under
// the lock can be used after it.
type item struct {
	key   string
	entry driver.Entry
}

// New returns a cache over inner, which must implement driver.RevisionProber (otherwise
// the error wraps errors.ErrUnsupported). The cache owns inner: its Close closes inner.
func New(inner driver.Driver, opts Options) (driver.Driver, error) {
	probe, ok := inner.(driver.RevisionProber)
	if !ok {
		return nil, fmt.Errorf("cachestore: %w: %T cannot tell a key's revision without its value "+
			"(driver.RevisionProber)", errors.ErrUnsupported, inner)
	}
	c := &cache{inner: inner, probe: probe, maxEntries: opts.MaxEntries, maxBytes: opts.MaxBytes,
		items: map[string]*list.Element{}}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultMaxEntries
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	sn, snapshots := inner.(driver.Snapshotter)
	tr, records := inner.(driver.TokenRecorder)
	switch {
	case snapshots && records:
		return &struct {
			*cache
			snapshotter
			driver.TokenRecorder
		}{c, snapshotter{c, sn}, tr}, nil
	case snapshots:
		return &struct {
			*cache
			snapshotter
		}{c, snapshotter{c, sn}}, nil
	case records:
		return &struct {
			*cache
			driver.TokenRecorder
		}{c, tr}, nil
	}
	return c, nil
}

// Init implements driver.Driver.
func (c *cache) Init(ctx context.Context, initial bool) (driver.InitReport, error) {
	return c.inner.Init(ctx, initial)
}

// Get implements driver.Driver: a cached value whose revision is still the store's, or the
// store's value.
func (c *cache) Get(ctx context.Context, key string) (driver.Entry, error) {
	if cached, ok := c.lookup(key); ok {
		rev, err := c.probe.Revision(ctx, key)
		switch {
		case err == nil && rev == cached.Revision:
			hits.Inc()
			return driver.Entry{Value: bytes.Clone(cached.Value), Revision: rev}, nil
		case errors.Is(err, driver.ErrNotFound):
			misses.Inc()
			c.drop(key)
			return driver.Entry{}, err
		case err != nil:
			return driver.Entry{}, err
		}
	}
	misses.Inc()
	e, err := c.inner.Get(ctx, key)
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			c.drop(key)
		}
		return e, err
	}
	c.store(key, driver.Entry{Value: bytes.Clone(e.Value), Revision: e.Revision})
	return e, nil
}

// Revision implements driver.RevisionProber: the inner driver's probe.
func (c *cache) Revision(ctx context.Context, key string) (driver.Revision, error) {
	return c.probe.Revision(ctx, key)
}

// Put implements driver.Driver.
func (c *cache) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	rev, err := c.inner.Put(ctx, key, value, pre)
	if err != nil {
		c.drop(key)
		return rev, err
	}
	c.store(key, driver.Entry{Value: bytes.Clone(value), Revision: rev})
	return rev, nil
}

// Delete implements driver.Driver.
func (c *cache) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	err := c.inner.Delete(ctx, key, pre)
	c.drop(key)
	return err
}

// DeleteAll implements driver.Driver.
func (c *cache) DeleteAll(ctx context.Context) error {
	err := c.inner.DeleteAll(ctx)
	c.clear()
	return err
}

// Keys implements driver.Driver.
func (c *cache) Keys(ctx context.Context) ([]string, error) { return c.inner.Keys(ctx) }

// Close implements driver.Driver: it empties the cache and closes the inner driver.
func (c *cache) Close() error {
	c.clear()
	return c.inner.Close()
}

// snapshotter gives a cache over a driver.Snapshotter its Snapshot.
type snapshotter struct {
	c  *cache
	sn driver.Snapshotter
}

// Snapshot implements driver.Snapshotter: the inner driver's snapshot, which also brings
// the cached keys up to date (and drops those it lacks). Keys not cached are not added: a
// whole store read once would push out the keys read often.
func (s snapshotter) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	all, err := s.sn.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.c.refresh(all)
	return all, nil
}

// lookup returns key's cached entry and marks it used.
func (c *cache) lookup(key string) (driver.Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return driver.Entry{}, false
	}
	c.recency.MoveToFront(el)
	return el.Value.(*item).entry, true
}

// store caches e at key as the most recently used, and evicts beyond the bounds.
func (c *cache) store(key string, e driver.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	if int64(len(e.Value)) > c.maxBytes {
		return
	}
	c.items[key] = c.recency.PushFront(&item{key: key, entry: e})
	c.bytes += int64(len(e.Value))
	c.evict()
}

// refresh replaces the cached entries with those of a snapshot of the whole store, and
// drops the cached keys it lacks.
func (c *cache) refresh(all map[string]driver.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, el := range c.items {
		it := el.Value.(*item)
		e, ok := all[key]
		switch {
		case !ok, int64(len(e.Value)) > c.maxBytes:
			c.remove(el)
		case e.Revision != it.entry.Revision:
			c.bytes += int64(len(e.Value) - len(it.entry.Value))
			el.Value = &item{key: key, entry: driver.Entry{Value: bytes.Clone(e.Value), Revision: e.Revision}}
		}
	}
	c.evict()
}

// evict removes the least recently used entries while the cache is over a bound. The
// caller holds mu.
func (c *cache) evict() {
	for len(c.items) > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.recency.Back())
	}
}

// remove takes el out of the cache. The caller holds mu.
func (c *cache) remove(el *list.Element) {
	it := c.recency.Remove(el).(*item)
	delete(c.items, it.key)
	c.bytes -= int64(len(it.entry.Value))
}

// drop forgets key.
func (c *cache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
}

// clear forgets every key.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
	c.recency.Init()
	c.bytes = 0
}
