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

package replicastore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	"github.com/strategyops/strategy-operator/internal/persist/replicastore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

var errDown = errors.New("replica down")

// flaky is a memstore replica whose writes fail while failing is set and wait while it is
// blocked; it counts its DeleteAll calls (one per rebuild) and its Close calls.
type flaky struct {
	*memstore.Driver
	failing atomic.Bool
	clears  atomic.Int64
	closes  atomic.Int64

	mu   sync.Mutex
	gate chan struct{} // non-nil: blocked until closed
}

func newFlaky() *flaky { return &flaky{Driver: memstore.New()} }

func (f *flaky) block() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
}

func (f *flaky) unblock() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.gate)
	f.gate = nil
}

// admit waits while f is blocked and fails while it is failing.
func (f *flaky) admit(ctx context.Context) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.failing.Load() {
		return errDown
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	if err := f.admit(ctx); err != nil {
		return "", err
	}
	return f.Driver.Put(ctx, key, value, pre)
}

func (f *flaky) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	if err := f.admit(ctx); err != nil {
		return err
	}
	return f.Driver.Delete(ctx, key, pre)
}

func (f *flaky) DeleteAll(ctx context.Context) error {
	if err := f.admit(ctx); err != nil {
		return err
	}
	f.clears.Add(1)
	return f.Driver.DeleteAll(ctx)
}

func (f *flaky) Close() error {
	f.closes.Add(1)
	return f.Driver.Close()
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

// open makes a replicated driver, initialized, closed at the end of the test.
func open(t *testing.T, primary driver.Driver, opts replicastore.Options, replicas ...replicastore.Replica,
) replicastore.Driver {
	t.Helper()
	d, err := replicastore.New(primary, replicas, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if _, err := d.Init(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	return d
}

// contents is every value of d by key.
func contents(t *testing.T, d driver.Driver) map[string]string {
	t.Helper()
	keys, err := d.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		e, err := d.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(e.Value)
	}
	return out
}

// caughtUp waits until Lag reports each named replica of d up to date.
func caughtUp(t *testing.T, d replicastore.Driver, names ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, name := range names {
		for {
			lag, n := d.Lag(name)
			if lag == 0 && n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s still %s behind with %d queued", name, lag, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// wantSame fails t unless every replica holds what primary holds.
func wantSame(t *testing.T, primary driver.Driver, replicas ...replicastore.Replica) {
	t.Helper()
	want := contents(t, primary)
	for _, r := range replicas {
		if got := contents(t, r.Driver); !maps.Equal(got, want) {
			t.Fatalf("replica %s holds %d keys, the primary %d; they differ:\n%v\n%v", r.Name, len(got), len(want),
				got, want)
		}
	}
}

// TestConformance runs the suite over a memstore primary with two memstore replicas, and
// after every case checks that the replicas hold what the primary holds: the suite's
// concurrent writers of one key test that the replicas apply a key's changes in the
// primary's order.
func TestConformance(t *testing.T) {
	type stores struct {
		primary  driver.Driver
		replicas []replicastore.Replica
	}
	var mu sync.Mutex
	of := map[driver.Driver]stores{}
	wrap := func(t *testing.T, s stores) driver.Driver {
		d, err := replicastore.New(s.primary, s.replicas, replicastore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		of[d] = s
		return d
	}
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver {
			s := stores{memstore.New(), []replicastore.Replica{{Name: "a", Driver: memstore.New()},
				{Name: "b", Driver: memstore.New()}}}
			d := wrap(t, s)
			// Cleanups run last first: this one after the suite's Close of d, which let the
			// replicas apply everything queued.
			t.Cleanup(func() {
				if !t.Failed() {
					wantSame(t, s.primary, s.replicas...)
				}
			})
			return d
		},
		Reopen: func(t *testing.T, d driver.Driver) driver.Driver {
			mu.Lock()
			s := of[d]
			mu.Unlock()
			return wrap(t, s)
		},
	})
}

// TestOptionalInterfaces: the driver claims Snapshotter and TokenRecorder exactly when the
// primary has them, with the primary's answers.
func TestOptionalInterfaces(t *testing.T) {
	bare := open(t, memstore.New(), replicastore.Options{})
	if _, ok := bare.(driver.Snapshotter); ok {
		t.Error("a replicated memstore claims Snapshotter")
	}
	if _, ok := bare.(driver.TokenRecorder); ok {
		t.Error("a replicated memstore claims TokenRecorder")
	}
	primary := full{memstore.New()}
	rich := open(t, primary, replicastore.Options{}, replicastore.Replica{Name: "a", Driver: memstore.New()})
	if _, err := rich.Put(t.Context(), "k", []byte(`1`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if sn, ok := rich.(driver.Snapshotter); !ok {
		t.Error("a replicated Snapshotter is none")
	} else if all, err := sn.Snapshot(t.Context()); err != nil || len(all) != 1 || string(all["k"].Value) != `1` {
		t.Errorf("Snapshot = %v, %v; want k=1", all, err)
	}
	if r, ok := rich.(driver.TokenRecorder); !ok {
		t.Error("a replicated TokenRecorder is none")
	} else if token, err := r.RecordedToken(t.Context()); err != nil || token != 7 {
		t.Errorf("RecordedToken = %d, %v; the primary's is 7", token, err)
	}
}

// TestNewRefusesNames: replica names must be unique and not empty.
func TestNewRefusesNames(t *testing.T) {
	for _, replicas := range [][]replicastore.Replica{
		{{Name: "", Driver: memstore.New()}},
		{{Name: "a", Driver: memstore.New()}, {Name: "a", Driver: memstore.New()}},
	} {
		if _, err := replicastore.New(memstore.New(), replicas, replicastore.Options{}); err == nil {
			t.Errorf("New accepted replicas %v", replicas)
		}
	}
}

// TestConvergence: writers put and delete 500 keys at random through the driver; once
// Lag says the replicas are up to date, each holds what the primary holds.
func TestConvergence(t *testing.T) {
	ctx := t.Context()
	primary := memstore.New()
	replicas := []replicastore.Replica{{Name: "converge-a", Driver: memstore.New()},
		{Name: "converge-b", Driver: memstore.New()}}
	d := open(t, primary, replicastore.Options{}, replicas...)
	const writers, each, keys = 4, 1000, 500
	var wg sync.WaitGroup
	for w := range writers {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprint("key-", rng.IntN(keys))
				var err error
				if rng.IntN(10) < 3 {
					err = d.Delete(ctx, key, driver.Precondition{})
				} else {
					_, err = d.Put(ctx, key, fmt.Appendf(nil, `"%d-%d"`, w, i), driver.Precondition{})
				}
				if err != nil && !errors.Is(err, driver.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(contents(t, primary)); n < keys/2 {
		t.Fatalf("the primary holds %d keys: too few for the test to prove much", n)
	}
	caughtUp(t, d, "converge-a", "converge-b")
	wantSame(t, primary, replicas...)
}

// gauge is the value of a replica gauge in controller-runtime's registry, and whether
// there is one.
func gauge(t *testing.T, name, replica string) (float64, bool) {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "replica" && l.GetValue() == replica {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestFailingReplica: a replica that fails for a while falls behind, which Lag and the
// gauges show, while the other keeps up; once it recovers it catches up.
func TestFailingReplica(t *testing.T) {
	ctx := t.Context()
	primary := memstore.New()
	down := newFlaky()
	down.failing.Store(true)
	replicas := []replicastore.Replica{{Name: "failing-ok", Driver: memstore.New()},
		{Name: "failing-down", Driver: down}}
	d := open(t, primary, replicastore.Options{}, replicas...)
	for i := range 50 {
		_, err := d.Put(ctx, fmt.Sprint("key-", i%20), fmt.Appendf(nil, "%d", i), driver.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx, "key-3", driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, d, "failing-ok")
	wantSame(t, primary, replicas[0])
	time.Sleep(50 * time.Millisecond)
	lag, n := d.Lag("failing-down")
	if lag < 50*time.Millisecond || n != 51 {
		t.Fatalf("the failing replica is %s behind with %d queued; want at least 50ms and 51", lag, n)
	}
	if v, ok := gauge(t, "strategyops_store_replica_lag_seconds", "failing-down"); !ok || v < lag.Seconds() {
		t.Fatalf("lag gauge %v (present %v), want at least %v", v, ok, lag.Seconds())
	}
	if v, _ := gauge(t, "strategyops_store_replica_queue_length", "failing-down"); v != 51 {
		t.Fatalf("queue length gauge %v, want 51", v)
	}
	if v, ok := gauge(t, "strategyops_store_replica_lag_seconds", "failing-ok"); !ok || v != 0 {
		t.Fatalf("lag gauge of the replica up to date %v (present %v), want 0", v, ok)
	}
	if len(contents(t, down)) != 0 {
		t.Fatal("the failing replica took writes")
	}
	down.failing.Store(false)
	caughtUp(t, d, "failing-down")
	wantSame(t, primary, replicas...)
	if down.clears.Load() != 0 {
		t.Fatal("a replica that failed within its queue's size was rebuilt")
	}
}

// TestQueueOverflow: writes go on at full speed while a replica is stuck; its queue
// overflows, which rebuilds it once it moves again, and it ends up with the primary's
// state.
func TestQueueOverflow(t *testing.T) {
	ctx := t.Context()
	primary := full{memstore.New()} // the rebuild reads its Snapshot
	stuck := newFlaky()
	replicas := []replicastore.Replica{{Name: "overflow", Driver: stuck}}
	d := open(t, primary, replicastore.Options{QueueSize: 4}, replicas...)
	for i := range 5 {
		if _, err := d.Put(ctx, fmt.Sprint("old-", i), []byte(`"gone"`), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	caughtUp(t, d, "overflow")
	stuck.block()
	written := make(chan error, 1)
	go func() {
		for i := range 100 {
			_, err := d.Put(ctx, fmt.Sprint("key-", i%30), fmt.Appendf(nil, "%d", i), driver.Precondition{})
			if err != nil {
				written <- err
				return
			}
		}
		for i := range 5 {
			if err := d.Delete(ctx, fmt.Sprint("old-", i), driver.Precondition{}); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writes wait for a stuck replica")
	}
	if lag, n := d.Lag("overflow"); lag == 0 || n > 4+1 {
		t.Fatalf("the stuck replica is %s behind with %d queued; want behind, at most 4 queued and 1 applying", lag, n)
	}
	stuck.unblock()
	caughtUp(t, d, "overflow")
	wantSame(t, primary, replicas...)
	if stuck.clears.Load() == 0 {
		t.Fatal("the replica was not rebuilt")
	}
}

// TestRebuild: Rebuild makes a replica that missed writes (made to the primary behind the
// driver's back) hold the primary's state, keys it alone had removed.
func TestRebuild(t *testing.T) {
	ctx := t.Context()
	primary := memstore.New()
	behind := memstore.New()
	for i := range 20 {
		if _, err := primary.Put(ctx, fmt.Sprint("key-", i), []byte(`"primary"`), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := behind.Put(ctx, "stray", []byte(`"replica"`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	replicas := []replicastore.Replica{{Name: "rebuild", Driver: behind}}
	d := open(t, primary, replicastore.Options{}, replicas...)
	if _, err := d.Put(ctx, "key-0", []byte(`"through the driver"`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, behind); len(got) > 2 {
		t.Fatalf("the replica holds %v before the rebuild: the test proves nothing", got)
	}
	if err := d.Rebuild(ctx, "rebuild"); err != nil {
		t.Fatal(err)
	}
	if lag, n := d.Lag("rebuild"); lag != 0 || n != 0 {
		t.Fatalf("after Rebuild the replica is %s behind with %d queued", lag, n)
	}
	wantSame(t, primary, replicas...)
	if err := d.Rebuild(ctx, "nowhere"); err == nil {
		t.Fatal("Rebuild of no replica succeeded")
	}
}

// tokened is a memstore replica that records fencing token token.
type tokened struct {
	*memstore.Driver
	token int64
}

func (r tokened) RecordedToken(context.Context) (int64, error) { return r.token, nil }

// TestRebuildKeepsAReplicaAheadOfTheFloor: a replica that records a newer fencing token
// than the primary had when the driver opened, from another writer, holds what the
// primary lost: its rebuild fails (ErrPrimaryBehind, retried) and never empties it; one at
// or below the floor, or at the writer's own token, is rebuilt.
func TestRebuildKeepsAReplicaAheadOfTheFloor(t *testing.T) {
	ctx := t.Context()
	primary := memstore.New() // restarted empty
	ahead, level := tokened{memstore.New(), 7}, tokened{memstore.New(), 3}
	for _, r := range []tokened{ahead, level} {
		if _, err := r.Put(ctx, "BTCUSDT", []byte(`"open signal"`), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	floor := int64(3)
	own := tokened{memstore.New(), 9} // written by this writer's own changes since it started
	d := open(t, primary, replicastore.Options{RebuildAtStart: true, Floor: &floor, Token: 9},
		replicastore.Replica{Name: "ahead", Driver: ahead}, replicastore.Replica{Name: "level", Driver: level},
		replicastore.Replica{Name: "own", Driver: own})
	for _, name := range []string{"level", "own"} {
		if err := d.Rebuild(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if got := contents(t, level); len(got) != 0 {
		t.Fatalf("the replica at the floor was not rebuilt from the empty primary: %v", got)
	}
	wait, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := d.Rebuild(wait, "ahead"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the rebuild of the replica ahead of the floor finished: %v", err)
	}
	if got := contents(t, ahead); got["BTCUSDT"] != `"open signal"` {
		t.Fatalf("the replica ahead of the floor was emptied: %v", got)
	}
}

// lossy is a primary whose writes are applied but answer ErrUnknownOutcome while lose is
// set.
type lossy struct {
	*memstore.Driver
	lose atomic.Bool
}

func (l *lossy) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	rev, err := l.Driver.Put(ctx, key, value, pre)
	if err == nil && l.lose.Load() {
		return "", fmt.Errorf("%w: the answer was lost", driver.ErrUnknownOutcome)
	}
	return rev, err
}

func (l *lossy) DeleteAll(ctx context.Context) error {
	err := l.Driver.DeleteAll(ctx)
	if err == nil && l.lose.Load() {
		return fmt.Errorf("%w: the answer was lost", driver.ErrUnknownOutcome)
	}
	return err
}

// TestUnknownOutcome: a write the primary applied but whose answer was lost reaches the
// replicas all the same.
func TestUnknownOutcome(t *testing.T) {
	ctx := t.Context()
	primary := &lossy{Driver: memstore.New()}
	replicas := []replicastore.Replica{{Name: "unknown", Driver: memstore.New()}}
	d := open(t, primary, replicastore.Options{}, replicas...)
	if _, err := d.Put(ctx, "a", []byte(`1`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	primary.lose.Store(true)
	if _, err := d.Put(ctx, "b", []byte(`2`), driver.Precondition{}); !errors.Is(err, driver.ErrUnknownOutcome) {
		t.Fatalf("got %v, want ErrUnknownOutcome", err)
	}
	caughtUp(t, d, "unknown")
	wantSame(t, primary, replicas...)
	if err := d.DeleteAll(ctx); !errors.Is(err, driver.ErrUnknownOutcome) {
		t.Fatalf("got %v, want ErrUnknownOutcome", err)
	}
	caughtUp(t, d, "unknown")
	wantSame(t, primary, replicas...)
	if n := len(contents(t, primary)); n != 0 {
		t.Fatalf("the primary holds %d keys after DeleteAll", n)
	}
}

// TestClose: Close lets the replicas apply what is queued, gives up on a stuck one after
// CloseTimeout with an error that names it, and closes no driver.
func TestClose(t *testing.T) {
	ctx := t.Context()
	primary := memstore.New()
	slow, stuck := newFlaky(), newFlaky()
	d, err := replicastore.New(primary, []replicastore.Replica{{Name: "close-slow", Driver: slow},
		{Name: "close-stuck", Driver: stuck}}, replicastore.Options{CloseTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	slow.block()
	stuck.block()
	for i := range 10 {
		if _, err := d.Put(ctx, fmt.Sprint("key-", i), []byte(`1`), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(100*time.Millisecond, slow.unblock)
	start := time.Now()
	err = d.Close()
	if took := time.Since(start); took < 500*time.Millisecond || took > 5*time.Second {
		t.Errorf("Close took %s with a stuck replica and a timeout of 500ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "close-stuck") || strings.Contains(err.Error(), "close-slow") {
		t.Fatalf("Close: %v; want an error naming the stuck replica alone", err)
	}
	wantSame(t, primary, replicastore.Replica{Name: "close-slow", Driver: slow})
	if slow.closes.Load()+stuck.closes.Load() != 0 {
		t.Fatal("Close closed a replica")
	}
	if err := d.Rebuild(ctx, "close-slow"); !errors.Is(err, driver.ErrClosed) {
		t.Fatalf("Rebuild after Close: %v, want ErrClosed", err)
	}
}
