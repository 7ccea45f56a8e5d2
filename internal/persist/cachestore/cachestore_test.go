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

package cachestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	lin "github.com/strategyops/strategy-operator/internal/persist/linearizability"
	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

// counting is a memstore that counts the reads that transfer a value.
type counting struct {
	*memstore.Driver
	gets atomic.Int64
}

func (c *counting) Get(ctx context.Context, key string) (driver.Entry, error) {
	c.gets.Add(1)
	return c.Driver.Get(ctx, key)
}

// full is a memstore that can also read every key at once and tells a recorded token.
type full struct{ *memstore.Driver }

func (f full) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	keys, err := f.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]driver.Entry, len(keys))
	for _, k := range keys {
		if out[k], err = f.Get(ctx, k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (full) RecordedToken(context.Context) (int64, error) { return 7, nil }

func newCache(t *testing.T, inner driver.Driver, opts cachestore.Options) driver.Driver {
	t.Helper()
	c, err := cachestore.New(inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// conformance runs the suite on caches over inners made by newInner; a reopened cache is
// a new cache over the inner driver of the closed one.
func conformance(t *testing.T, newInner func() driver.Driver) {
	var mu sync.Mutex
	inners := map[driver.Driver]driver.Driver{}
	wrap := func(t *testing.T, inner driver.Driver) driver.Driver {
		c := newCache(t, inner, cachestore.Options{})
		mu.Lock()
		defer mu.Unlock()
		inners[c] = inner
		return c
	}
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return wrap(t, newInner()) },
		Reopen: func(t *testing.T, d driver.Driver) driver.Driver {
			mu.Lock()
			inner := inners[d]
			mu.Unlock()
			return wrap(t, inner)
		},
	})
}

func TestConformance(t *testing.T) {
	conformance(t, func() driver.Driver { return memstore.New() })
}

// TestConformanceSnapshotter runs the suite over an inner driver with a Snapshot, which
// package persist then reads whole stores with.
func TestConformanceSnapshotter(t *testing.T) {
	conformance(t, func() driver.Driver { return full{memstore.New()} })
}

// TestOptionalInterfaces: the cache claims Snapshotter and TokenRecorder exactly when its
// inner driver has them, always RevisionProber, and refuses an inner driver without a probe.
func TestOptionalInterfaces(t *testing.T) {
	bare := newCache(t, memstore.New(), cachestore.Options{})
	if _, ok := bare.(driver.Snapshotter); ok {
		t.Error("a cache over a memstore claims Snapshotter")
	}
	if _, ok := bare.(driver.TokenRecorder); ok {
		t.Error("a cache over a memstore claims TokenRecorder")
	}
	if _, ok := bare.(driver.RevisionProber); !ok {
		t.Error("a cache is no RevisionProber")
	}
	rich := newCache(t, full{memstore.New()}, cachestore.Options{})
	if _, ok := rich.(driver.Snapshotter); !ok {
		t.Error("a cache over a Snapshotter is none")
	}
	if r, ok := rich.(driver.TokenRecorder); !ok {
		t.Error("a cache over a TokenRecorder is none")
	} else if token, err := r.RecordedToken(t.Context()); err != nil || token != 7 {
		t.Errorf("RecordedToken = %d, %v; the inner driver's is 7", token, err)
	}
	if _, err := cachestore.New(memstore.Discard(), cachestore.Options{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("a cache over a driver without a probe: %v, want ErrUnsupported", err)
	}
}

// reads is the count of cache reads with result in controller-runtime's registry.
func reads(t *testing.T, result string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "strategyops_store_cache_reads_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func put(t *testing.T, d driver.Driver, key, value string) driver.Revision {
	t.Helper()
	rev, err := d.Put(t.Context(), key, []byte(value), driver.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func wantGet(t *testing.T, d driver.Driver, key, want string) {
	t.Helper()
	e, err := d.Get(t.Context(), key)
	if err != nil || string(e.Value) != want {
		t.Fatalf("%s reads %q, %v; want %q", key, e.Value, err, want)
	}
}

// wantGets fails t unless inner has transferred n values since the last call.
func wantGets(t *testing.T, inner *counting, n int64) {
	t.Helper()
	if got := inner.gets.Swap(0); got != n {
		t.Fatalf("the store transferred %d values, want %d", got, n)
	}
}

// TestTwoProcesses: two caches over one store, as two processes with caches of their own
// over one database, each see the other's writes at once; an unchanged value is served
// from the cache without its transfer.
func TestTwoProcesses(t *testing.T) {
	ctx := t.Context()
	inner := &counting{Driver: memstore.New()}
	a := newCache(t, inner, cachestore.Options{})
	b := newCache(t, inner, cachestore.Options{})
	hits, misses := reads(t, "hit"), reads(t, "miss")

	put(t, a, "k", `"from a"`)
	wantGet(t, b, "k", `"from a"`) // b reads the store and caches
	wantGet(t, a, "k", `"from a"`) // a's Put cached it
	wantGets(t, inner, 1)
	put(t, b, "k", `"from b"`)
	wantGet(t, a, "k", `"from b"`) // a's copy is stale: read through
	wantGets(t, inner, 1)
	wantGet(t, a, "k", `"from b"`)
	wantGet(t, b, "k", `"from b"`)
	wantGets(t, inner, 0)
	if h, m := reads(t, "hit")-hits, reads(t, "miss")-misses; h != 3 || m != 2 {
		t.Fatalf("counted %v hits and %v misses, want 3 and 2", h, m)
	}

	if err := a.Delete(ctx, "k", driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("b reads a key a deleted: %v, want ErrNotFound", err)
	}
	put(t, a, "k", `"again"`)
	if err := b.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "k"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("a reads a key b's DeleteAll removed: %v, want ErrNotFound", err)
	}
}

// TestStaleConditionalWrite: a write conditional on the revision the cache last saw fails
// when another writer has written since, and the next read, not served from the cache,
// gives the other writer's value.
func TestStaleConditionalWrite(t *testing.T) {
	inner := &counting{Driver: memstore.New()}
	c := newCache(t, inner, cachestore.Options{})
	seen := put(t, c, "k", `1`)
	put(t, inner, "k", `2`) // another writer, behind the cache's back
	_, err := c.Put(t.Context(), "k", []byte(`3`), driver.Precondition{IfRevision: seen})
	if !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("a write on a stale revision: %v, want ErrConflict", err)
	}
	wantGet(t, c, "k", `2`)
	wantGets(t, inner, 1)
	_, err = c.Put(t.Context(), "k", []byte(`3`), driver.Precondition{IfAbsent: true})
	if !errors.Is(err, driver.ErrConflict) {
		t.Fatalf("a write if absent on a present key: %v, want ErrConflict", err)
	}
	wantGet(t, c, "k", `2`)
	wantGets(t, inner, 1) // the failed write dropped the key
}

// TestEviction: with room for two keys, caching a third evicts the least recently used;
// every read still gives the right value, and only the evicted key is read from the store.
func TestEviction(t *testing.T) {
	inner := &counting{Driver: memstore.New()}
	c := newCache(t, inner, cachestore.Options{MaxEntries: 2})
	put(t, c, "a", `"A"`)
	put(t, c, "b", `"B"`)
	wantGet(t, c, "a", `"A"`) // a is now more recent than b
	put(t, c, "c", `"C"`)     // evicts b
	wantGet(t, c, "a", `"A"`)
	wantGet(t, c, "c", `"C"`)
	wantGets(t, inner, 0)
	wantGet(t, c, "b", `"B"`) // evicts a, the least recently used
	wantGets(t, inner, 1)
	wantGet(t, c, "c", `"C"`)
	wantGet(t, c, "b", `"B"`)
	wantGets(t, inner, 0)
	wantGet(t, c, "a", `"A"`)
	wantGets(t, inner, 1)
}

// TestByteBound: values beyond MaxBytes evict the least recently used, and a value larger
// than MaxBytes is never cached.
func TestByteBound(t *testing.T) {
	inner := &counting{Driver: memstore.New()}
	c := newCache(t, inner, cachestore.Options{MaxBytes: 10})
	put(t, c, "a", `"aaaa"`)
	put(t, c, "b", `"bbbb"`) // 12 bytes: evicts a
	wantGet(t, c, "b", `"bbbb"`)
	wantGets(t, inner, 0)
	wantGet(t, c, "a", `"aaaa"`) // evicts b
	wantGets(t, inner, 1)
	put(t, c, "big", `"bigger than 10"`)
	wantGet(t, c, "big", `"bigger than 10"`)
	wantGet(t, c, "big", `"bigger than 10"`)
	wantGets(t, inner, 2)
	wantGet(t, c, "a", `"aaaa"`) // the big value pushed nothing out
	wantGets(t, inner, 0)
}

// TestSnapshotRefreshes: a snapshot through the cache brings the cached keys up to date
// with changes made behind its back, and drops the keys gone from the store.
func TestSnapshotRefreshes(t *testing.T) {
	ctx := t.Context()
	inner := &counting{Driver: memstore.New()}
	c := newCache(t, full{inner.Driver}, cachestore.Options{})
	put(t, c, "a", `1`)
	put(t, c, "b", `1`)
	put(t, inner, "a", `2`)
	if err := inner.Delete(ctx, "b", driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	all, err := c.(driver.Snapshotter).Snapshot(ctx)
	if err != nil || len(all) != 1 || string(all["a"].Value) != `2` {
		t.Fatalf("snapshot %v, %v; want a=2 alone", all, err)
	}
	all["a"].Value[0] = 'x' // the caller's copy, not the cache's
	wantGet(t, c, "a", `2`)
	wantGets(t, inner, 0) // counting sees the snapshot's reads, not the cache's
	if _, err := c.Get(ctx, "b"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("b after the snapshot: %v, want ErrNotFound", err)
	}
}

// TestLinearizable: clients, each with a cache of its own over one store, make random
// reads and writes, conditional or not, on a few keys; the history they see is
// linearizable, as one store's is: no cache serves a value another client overwrote.
func TestLinearizable(t *testing.T) {
	const clients, ops = 4, 300
	inner := memstore.New()
	hits := reads(t, "hit")
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var ids atomic.Int64
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for id := range clients {
		c := newCache(t, inner, cachestore.Options{MaxEntries: 2})
		rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(id)))
		wg.Go(func() {
			seen := map[string]driver.Revision{}
			for range ops {
				in := next(rng, seen, &ids)
				op := porcupine.Operation{ClientId: id, Input: in, Call: now()}
				out := call(t.Context(), c, in)
				op.Output, op.Return = out, now()
				deleted := out.Result == lin.OK && (in.Kind == lin.Delete || in.Kind == lin.DeleteIfRevision)
				switch {
				case out.Revision != "":
					seen[in.Key] = out.Revision
				case out.Result == lin.NotFound, deleted:
					delete(seen, in.Key)
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
				runtime.Gosched() // let the clients interleave, not take turns
			}
		})
	}
	wg.Wait()
	if res := porcupine.CheckOperations(lin.Model(), history); !res {
		t.Fatalf("the history of %d operations through caches is not linearizable", len(history))
	}
	if reads(t, "hit") == hits {
		t.Fatal("no read was served from a cache: the history proves nothing about them")
	}
}

// next picks a random call on one of three keys; a conditional call uses the revision the
// client last saw of the key, which other clients' writes keep making stale.
func next(rng *rand.Rand, seen map[string]driver.Revision, ids *atomic.Int64) lin.Input {
	in := lin.Input{Key: fmt.Sprint("k", rng.IntN(3)), Kind: lin.Kind(rng.IntN(6))}
	switch in.Kind {
	case lin.Put, lin.PutIfAbsent:
		in.Value = ids.Add(1)
	case lin.PutIfRevision:
		in.Value, in.Revision = ids.Add(1), seen[in.Key]
	case lin.DeleteIfRevision:
		in.Revision = seen[in.Key]
	}
	if in.Revision == "" && (in.Kind == lin.PutIfRevision || in.Kind == lin.DeleteIfRevision) {
		return lin.Input{Kind: lin.Get, Key: in.Key}
	}
	return in
}

// call makes in on d and returns its answer in the model's terms.
func call(ctx context.Context, d driver.Driver, in lin.Input) lin.Output {
	switch in.Kind {
	case lin.Get:
		e, err := d.Get(ctx, in.Key)
		if err != nil {
			return lin.Output{Result: lin.Classify(err)}
		}
		v, _ := strconv.ParseInt(string(e.Value), 10, 64)
		return lin.Output{Result: lin.OK, Value: v, Revision: e.Revision}
	case lin.Put, lin.PutIfRevision, lin.PutIfAbsent:
		rev, err := d.Put(ctx, in.Key, strconv.AppendInt(nil, in.Value, 10), in.Precondition())
		return lin.Output{Result: lin.Classify(err), Revision: rev}
	default:
		return lin.Output{Result: lin.Classify(d.Delete(ctx, in.Key, in.Precondition()))}
	}
}
