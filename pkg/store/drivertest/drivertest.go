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

// Package drivertest is the one conformance suite every persistence backend runs, from its
// own tests, through a Harness.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Harness tells the suite how to make stores of one backend. Optional functions left nil
// declare a capability the backend lacks; the cases that need it are skipped by name.
type Harness struct {
	// New opens a driver on a fresh, empty store. Required.
	New func(t *testing.T) driver.Driver
	// Reopen opens a second driver on the store that d uses, after d is closed. Nil for a
	// backend that keeps nothing beyond one instance.
	Reopen func(t *testing.T, d driver.Driver) driver.Driver
	// Corrupt stores an unreadable value at key, behind the driver's back. Nil for a backend
	// that cannot hold corrupt data.
	Corrupt func(t *testing.T, d driver.Driver, key string)
	// MaxValueSize is the largest value the backend accepts; 0 means it accepts 4 MiB.
	MaxValueSize int
	// Fenced opens another driver on the store that d uses, for the given writer and
	// fencing token; the driver must implement driver.Fencer. Nil for a backend without
	// writer fencing.
	Fenced func(t *testing.T, d driver.Driver, writer string, token int64) driver.Driver
}

type doc struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Blob  string `json:"blob,omitempty"`
}

// RunConformanceTests runs every case of the contract against h.
func RunConformanceTests(t *testing.T, h Harness) {
	t.Helper()
	cases := []struct {
		name string
		run  func(*testing.T, Harness)
		need func(Harness) bool
	}{
		{"CRUD", testCRUD, nil},
		{"NotFound", testNotFound, nil},
		{"NullValue", testNull, nil},
		{"KeyOrder", testKeyOrder, nil},
		{"FilterTake", testFilterTake, nil},
		{"ConditionalWrites", testConditional, nil},
		{"ConcurrentWritersOneKey", testConcurrentOneKey, nil},
		{"ConcurrentCompareAndSwap", testConcurrentCAS, nil},
		{"ConcurrentWritersManyKeys", testConcurrentManyKeys, nil},
		{"Keys", testKeys, nil},
		{"BadKeys", testBadKeys, nil},
		{"SizeLimit", testSizeLimit, nil},
		{"RemoveAll", testRemoveAll, nil},
		{"Reopen", testReopen, func(h Harness) bool { return h.Reopen != nil }},
		{"CorruptAtInit", testCorrupt, func(h Harness) bool { return h.Reopen != nil && h.Corrupt != nil }},
		{"FencingOlderTokenRefused", testFencing, func(h Harness) bool { return h.Fenced != nil }},
		{"FencingConcurrentTakeover", testFencingTakeover, func(h Harness) bool { return h.Fenced != nil }},
		{"FencingSameTokenOtherWriter", testFencingSameToken, func(h Harness) bool { return h.Fenced != nil }},
		{"FencingTokenZeroIsUnfenced", testFencingTokenZero, func(h Harness) bool { return h.Fenced != nil }},
		{"FenceBeforeFirstWrite", testFenceBeforeWrite, func(h Harness) bool { return h.Fenced != nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.need != nil && !c.need(h) {
				t.Skipf("%s: the backend declares it cannot do this", c.name)
			}
			c.run(t, h)
		})
	}
}

func open[T any](t *testing.T, h Harness) *store.Store[T] {
	t.Helper()
	s := store.NewStore[T]("conformance", h.New(t))
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Init(t.Context(), true); err != nil {
		t.Fatalf("init: %v", err)
	}
	return s
}

// result carries a (value, error) pair to a test: ok(f()).of(t) fails t on the error.
type result[T any] struct {
	v   T
	err error
}

func ok[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) of(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func wantValue(t *testing.T, s *store.Store[doc], key string, want doc) {
	t.Helper()
	got := ok(s.Read(t.Context(), key)).of(t)
	if got != want {
		t.Fatalf("%s holds %+v, want %+v", key, got, want)
	}
}

func testCRUD(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	if ok(s.Has(ctx, "BTCUSDT")).of(t) {
		t.Fatal("a new store has a key")
	}
	r1 := ok(s.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 1})).of(t)
	wantValue(t, s, "BTCUSDT", doc{Name: "a", Count: 1})
	if !ok(s.Has(ctx, "BTCUSDT")).of(t) {
		t.Fatal("Has is false after Write")
	}
	r2 := ok(s.Write(ctx, "BTCUSDT", doc{Name: "b", Count: 2})).of(t)
	if r1 == r2 || r2 == "" {
		t.Fatalf("revisions %q then %q: each write needs a new revision", r1, r2)
	}
	_, rev, err := s.ReadRevision(ctx, "BTCUSDT")
	if err != nil || rev != r2 {
		t.Fatalf("ReadRevision = %q, %v; want %q", rev, err, r2)
	}
	wantValue(t, s, "BTCUSDT", doc{Name: "b", Count: 2})
	if err := s.Remove(ctx, "BTCUSDT"); err != nil {
		t.Fatal(err)
	}
	if ok(s.Has(ctx, "BTCUSDT")).of(t) {
		t.Fatal("Has is true after Remove")
	}
}

func testNotFound(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	_, err := s.Read(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	if !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("error %q does not name the key", err)
	}
	wantErr(t, s.Remove(ctx, "missing"), store.ErrNotFound)
}

func testNull(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[*doc](t, h)
	ok(s.Write(ctx, "k", &doc{Name: "open"})).of(t)
	ok(s.Write(ctx, "k", nil)).of(t)
	if !ok(s.Has(ctx, "k")).of(t) {
		t.Fatal("a null value is a value: Has must be true")
	}
	if v := ok(s.Read(ctx, "k")).of(t); v != nil {
		t.Fatalf("read %+v after writing null", v)
	}
}

func testKeyOrder(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	for _, k := range []string{"10", "2", "b", "1", "A", "a10", "a9"} {
		ok(s.Write(ctx, k, doc{Name: k})).of(t)
	}
	got := ok(s.SortedKeys(ctx)).of(t)
	want := []string{"1", "2", "10", "A", "a9", "a10", "b"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keys in order %v, want %v", got, want)
	}
	var values []string
	for v, err := range s.Values(ctx) {
		values = append(values, ok(v, err).of(t).Name)
	}
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Fatalf("values in order %v, want %v", values, want)
	}
}

func testFilterTake(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	for i := 1; i <= 10; i++ {
		ok(s.Write(ctx, fmt.Sprint(i), doc{Count: i})).of(t)
	}
	even := func(d doc) bool { return d.Count%2 == 0 }
	var got []int
	for v, err := range s.Filter(ctx, even) {
		got = append(got, ok(v, err).of(t).Count)
	}
	if fmt.Sprint(got) != "[2 4 6 8 10]" {
		t.Fatalf("filter gave %v", got)
	}
	taken := ok(s.Take(ctx, 3, even)).of(t)
	if len(taken) != 3 || taken[0].Count != 2 || taken[2].Count != 6 {
		t.Fatalf("take 3 even gave %+v", taken)
	}
	if all := ok(s.Take(ctx, 100, nil)).of(t); len(all) != 10 {
		t.Fatalf("take 100 of 10 gave %d", len(all))
	}
}

func testConditional(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	r1 := ok(s.Write(ctx, "k", doc{Count: 1}, store.IfAbsent())).of(t)
	_, err := s.Write(ctx, "k", doc{Count: 99}, store.IfAbsent())
	wantErr(t, err, store.ErrConflict)
	wantValue(t, s, "k", doc{Count: 1})

	r2 := ok(s.Write(ctx, "k", doc{Count: 2}, store.IfRevision(r1))).of(t)
	_, err = s.Write(ctx, "k", doc{Count: 99}, store.IfRevision(r1))
	wantErr(t, err, store.ErrConflict)
	wantValue(t, s, "k", doc{Count: 2})

	wantErr(t, s.Remove(ctx, "k", store.IfRevision(r1)), store.ErrConflict)
	wantValue(t, s, "k", doc{Count: 2})
	if err := s.Remove(ctx, "k", store.IfRevision(r2)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Write(ctx, "k", doc{Count: 3}, store.IfRevision(r2))
	wantErr(t, err, store.ErrConflict)
	if ok(s.Has(ctx, "k")).of(t) {
		t.Fatal("a conflicting write stored a value")
	}
}

func testConcurrentOneKey(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	const writers, each = 16, 20
	inParallel(t, writers, each, func(w, i int) error {
		_, err := s.Write(ctx, "shared", doc{Name: fmt.Sprint(w), Count: i})
		return err
	})
	got := ok(s.Read(ctx, "shared")).of(t)
	if got.Count != each-1 {
		t.Fatalf("final value %+v is not any writer's last write", got)
	}
}

// testConcurrentCAS increments one counter from many goroutines with read, compare-and-swap,
// retry: every acknowledged increment must be in the final count.
func testConcurrentCAS(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	ok(s.Write(ctx, "counter", doc{})).of(t)
	const workers, each = 8, 15
	inParallel(t, workers, each, func(int, int) error {
		for {
			v, rev, err := s.ReadRevision(ctx, "counter")
			if err != nil {
				return err
			}
			v.Count++
			_, err = s.Write(ctx, "counter", v, store.IfRevision(rev))
			if !errors.Is(err, store.ErrConflict) {
				return err // nil: this increment is in
			}
		}
	})
	wantValue(t, s, "counter", doc{Count: workers * each})
}

func testConcurrentManyKeys(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	const keys, each = 64, 5
	inParallel(t, keys, each, func(k, i int) error {
		_, err := s.Write(ctx, fmt.Sprintf("key-%d", k), doc{Count: i})
		return err
	})
	for k := range keys {
		wantValue(t, s, fmt.Sprintf("key-%d", k), doc{Count: each - 1})
	}
	if n := len(ok(s.SortedKeys(ctx)).of(t)); n != keys {
		t.Fatalf("%d keys listed, want %d", n, keys)
	}
}

// testKeys stores keys that are not safe as file names or object keys and expects each back
// exactly.
func testKeys(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	keys := []string{"BTC/USDT", "..", ".", ".hidden", "a b", "100%", "ключ", "UPPER", "upper",
		"x:y", strings.Repeat("k", store.MaxKeyLength), "1af31ee8-c897-4000-a4dc-55369e459000"}
	for i, k := range keys {
		ok(s.Write(ctx, k, doc{Count: i})).of(t)
	}
	for i, k := range keys {
		wantValue(t, s, k, doc{Count: i})
	}
	listed := map[string]bool{}
	for k, err := range s.Keys(ctx) {
		listed[ok(k, err).of(t)] = true
	}
	for _, k := range keys {
		if !listed[k] {
			t.Fatalf("key %q written but not listed (listed: %v)", k, listed)
		}
	}
	if len(listed) != len(keys) {
		t.Fatalf("listed %d keys, wrote %d", len(listed), len(keys))
	}
}

func testBadKeys(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	for _, k := range []string{"", strings.Repeat("k", store.MaxKeyLength+1), "bad\xff", "nul\x00"} {
		_, err := s.Write(ctx, k, doc{})
		wantErr(t, err, store.ErrInvalidKey)
		_, err = s.Read(ctx, k)
		wantErr(t, err, store.ErrInvalidKey)
	}
	if n := len(ok(s.SortedKeys(ctx)).of(t)); n != 0 {
		t.Fatalf("a refused key left %d entries", n)
	}
}

func testSizeLimit(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	limit := h.MaxValueSize
	if limit == 0 {
		limit = 4 << 20
	}
	overhead := len(`{"name":"","count":0,"blob":""}`)
	near := doc{Blob: strings.Repeat("x", limit-overhead-16)}
	ok(s.Write(ctx, "big", near)).of(t)
	wantValue(t, s, "big", near)
	if h.MaxValueSize == 0 {
		return
	}
	_, err := s.Write(ctx, "big", doc{Blob: strings.Repeat("y", limit+1)})
	wantErr(t, err, store.ErrTooLarge)
	if !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("error %q does not name the key", err)
	}
	wantValue(t, s, "big", near)
}

func testRemoveAll(t *testing.T, h Harness) {
	ctx := t.Context()
	s := open[doc](t, h)
	for i := range 5 {
		ok(s.Write(ctx, fmt.Sprint(i), doc{})).of(t)
	}
	if err := s.RemoveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(ok(s.SortedKeys(ctx)).of(t)); n != 0 {
		t.Fatalf("%d keys left after RemoveAll", n)
	}
}

func reopen(t *testing.T, h Harness, d driver.Driver) (*store.Store[doc], driver.InitReport) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	s := store.NewStore[doc]("conformance", h.Reopen(t, d))
	t.Cleanup(func() { _ = s.Close() })
	report, err := s.Init(context.Background(), true)
	if err != nil {
		t.Fatalf("init after reopen: %v", err)
	}
	return s, report
}

func testReopen(t *testing.T, h Harness) {
	ctx := t.Context()
	s := store.NewStore[doc]("conformance", h.New(t))
	ok(s.Write(ctx, "kept", doc{Name: "survives"})).of(t)
	s2, _ := reopen(t, h, s.Driver())
	wantValue(t, s2, "kept", doc{Name: "survives"})
}

func testCorrupt(t *testing.T, h Harness) {
	ctx := t.Context()
	s := store.NewStore[doc]("conformance", h.New(t))
	ok(s.Write(ctx, "good", doc{Name: "good"})).of(t)
	ok(s.Write(ctx, "bad", doc{Name: "bad"})).of(t)
	h.Corrupt(t, s.Driver(), "bad")
	s2, report := reopen(t, h, s.Driver())
	if report.Quarantined != 1 {
		t.Fatalf("quarantined %d entries, want 1", report.Quarantined)
	}
	wantValue(t, s2, "good", doc{Name: "good"})
	_, err := s2.Read(ctx, "bad")
	wantErr(t, err, store.ErrNotFound)
}

func fencedStore(t *testing.T, h Harness, d driver.Driver, writer string, token int64) *store.Store[doc] {
	t.Helper()
	s := store.NewStore[doc]("conformance-"+writer, h.Fenced(t, d, writer, token))
	t.Cleanup(func() { _ = s.Close() })
	ok(s.Init(t.Context(), true)).of(t)
	return s
}

func testFencing(t *testing.T, h Harness) {
	ctx := t.Context()
	base := open[doc](t, h)
	old := fencedStore(t, h, base.Driver(), "runner-a", 1)
	ok(old.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 1})).of(t)

	newer := fencedStore(t, h, base.Driver(), "runner-b", 2)
	ok(newer.Write(ctx, "BTCUSDT", doc{Name: "b", Count: 2})).of(t)

	_, err := old.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 3})
	wantErr(t, err, store.ErrFenced)
	_, err = old.Write(ctx, "ETHUSDT", doc{Name: "a"})
	wantErr(t, err, store.ErrFenced)
	wantErr(t, old.Remove(ctx, "BTCUSDT"), store.ErrFenced)
	wantErr(t, old.RemoveAll(ctx), store.ErrFenced)
	wantValue(t, newer, "BTCUSDT", doc{Name: "b", Count: 2})
	if ok(newer.Has(ctx, "ETHUSDT")).of(t) {
		t.Fatal("a fenced write stored a value")
	}
	// the deposed writer can still read
	wantValue(t, old, "BTCUSDT", doc{Name: "b", Count: 2})
}

// testFenceBeforeWrite: a new writer that fences the store (driver.Fencer, which every
// driver with writer fencing implements) before writing anything shuts the older writer
// out at once; fencing again changes nothing, and an older writer cannot fence.
func testFenceBeforeWrite(t *testing.T, h Harness) {
	ctx := t.Context()
	base := open[doc](t, h)
	old := fencedStore(t, h, base.Driver(), "runner-a", 1)
	ok(old.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 1})).of(t)

	newer := fencedStore(t, h, base.Driver(), "runner-b", 2)
	fencer, isFencer := newer.Driver().(driver.Fencer)
	if !isFencer {
		t.Fatal("a driver with writer fencing (Harness.Fenced) must implement driver.Fencer")
	}
	if err := fencer.Fence(ctx); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	if err := fencer.Fence(ctx); err != nil {
		t.Fatalf("Fence again: %v", err)
	}
	_, err := old.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 2})
	wantErr(t, err, store.ErrFenced)
	_, err = old.Write(ctx, "ETHUSDT", doc{Name: "a"})
	wantErr(t, err, store.ErrFenced)
	wantValue(t, base, "BTCUSDT", doc{Name: "a", Count: 1})
	stale := fencedStore(t, h, base.Driver(), "runner-c", 1)
	wantErr(t, stale.Driver().(driver.Fencer).Fence(ctx), store.ErrFenced)
	ok(newer.Write(ctx, "BTCUSDT", doc{Name: "b", Count: 3})).of(t)
	wantValue(t, base, "BTCUSDT", doc{Name: "b", Count: 3})
}

// testFencingSameToken: a token belongs to one writer. A second writer with the token
// already recorded is refused, and the first keeps writing, also after an unfenced write.
func testFencingSameToken(t *testing.T, h Harness) {
	ctx := t.Context()
	base := open[doc](t, h)
	first := fencedStore(t, h, base.Driver(), "runner-a", 3)
	ok(first.Write(ctx, "BTCUSDT", doc{Name: "a"})).of(t)
	second := fencedStore(t, h, base.Driver(), "runner-b", 3)
	_, err := second.Write(ctx, "BTCUSDT", doc{Name: "b"})
	wantErr(t, err, store.ErrFenced)
	wantErr(t, second.Remove(ctx, "BTCUSDT"), store.ErrFenced)
	ok(first.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 1})).of(t)
	wantValue(t, base, "BTCUSDT", doc{Name: "a", Count: 1})
	// An unfenced writer (the operator tending the store) changes no one's standing.
	ok(base.Write(ctx, "ETHUSDT", doc{Name: "operator"})).of(t)
	ok(first.Write(ctx, "BTCUSDT", doc{Name: "a", Count: 2})).of(t)
	_, err = second.Write(ctx, "BTCUSDT", doc{Name: "b"})
	wantErr(t, err, store.ErrFenced)
}

// testFencingTokenZero: a token of 0 writes unfenced, as the operator does: two such
// writers never refuse each other, and a fenced writer leaves them writing.
func testFencingTokenZero(t *testing.T, h Harness) {
	ctx := t.Context()
	base := open[doc](t, h)
	a := fencedStore(t, h, base.Driver(), "operator-a", 0)
	b := fencedStore(t, h, base.Driver(), "operator-b", 0)
	ok(a.Write(ctx, "k", doc{Name: "a"})).of(t)
	ok(b.Write(ctx, "k", doc{Name: "b"})).of(t)
	fenced := doc{Name: "runner-a", Count: 1}
	runner := fencedStore(t, h, base.Driver(), fenced.Name, 1)
	ok(runner.Write(ctx, "k", doc{Name: fenced.Name})).of(t)
	ok(a.Write(ctx, "other", doc{Name: "a"})).of(t)
	ok(runner.Write(ctx, "k", fenced)).of(t)
	wantValue(t, base, "k", fenced)
}

// testFencingTakeover: while an old writer writes in a loop, a newer one takes over; from
// the newer writer's first acknowledged write on, no write of the old one lands.
func testFencingTakeover(t *testing.T, h Harness) {
	ctx := t.Context()
	newDoc := doc{Name: "new writer"}
	base := open[doc](t, h)
	old := fencedStore(t, h, base.Driver(), "runner-a", 5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := old.Write(ctx, "k", doc{Name: "old", Count: i})
			if errors.Is(err, store.ErrFenced) {
				return // deposed, as it should be
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	newer := fencedStore(t, h, base.Driver(), "runner-b", 6)
	ok(newer.Write(ctx, "k", newDoc)).of(t)
	for range 20 {
		wantValue(t, newer, "k", newDoc)
	}
	close(stop)
	wg.Wait()
	wantValue(t, newer, "k", newDoc)
	_, err := old.Write(ctx, "k", doc{Name: "old"})
	wantErr(t, err, store.ErrFenced)
}

// inParallel runs op(g, i) for i < each in each of n goroutines and fails t with every
// error they met.
func inParallel(t *testing.T, n, each int, op func(g, i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n*each)
	for g := range n {
		wg.Go(func() {
			for i := range each {
				if err := op(g, i); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent operation failed: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
}
