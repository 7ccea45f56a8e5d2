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

// Package replicastore copies a store to replicas: a synchronous primary and asynchronous
// replicas, behind one driver.
//
//   - Every call is served by the primary, reads included; a replica is never read. A write
//     the primary acknowledged is queued for each replica, and one goroutine per replica
//     applies its queue in order, unconditionally (the primary has checked the
//     precondition), retrying a failing replica with backoff (10 ms doubling to 5 s). A
//     write whose outcome the primary could not tell (driver.ErrUnknownOutcome, or an error
//     that is not one the contract says changes nothing) queues a copy of the key's value
//     as the primary holds it when the copy is made, so that the replicas follow whatever
//     happened. (A lost write that the server applies only after that copy, a statement
//     still running when its client gave up, leaves the key behind on the replicas until
//     its next write or a rebuild.)
//   - Writes of one key hold a lock of the key (one of a few hundred stripes) from the
//     primary's write to the queueing, and DeleteAll holds every key, so that each queue
//     has each key's changes in the primary's order. Writes of other keys run in parallel.
//   - A full queue (Options.QueueSize) never blocks nor fails a write: the replica's queue
//     is dropped and the replica is rebuilt from the primary by its goroutine (Rebuild),
//     which is what Rebuild does on demand.
//   - A rebuild reads the primary's state (its Snapshot when it is a driver.Snapshotter,
//     else Keys and Get), empties the replica (DeleteAll) and writes every entry. The
//     changes queued meanwhile are applied after the copy. Each is a change of the primary
//     made after the queue was dropped; the copy holds every earlier one and possibly some
//     later ones, and applying a key's later changes again, in order, ends on the key's
//     latest value: the replica converges.
//   - Lag(name) tells how far a replica is behind: the age of the oldest change it has not
//     applied (a rebuild owed counts from the oldest change it covers) and how many changes
//     wait in its queue. The gauges strategyops_store_replica_lag_seconds{replica} and
//     strategyops_store_replica_queue_length{replica} in controller-runtime's registry show
//     the same, at the time of the scrape; a replica name shared by several drivers shows
//     the largest lag and the total length.
//
// Only writes made through the driver are replicated: one driver per primary store, and no
// writer elsewhere (another process, a driver of its own), unless a Rebuild follows.
//
// The caller owns the drivers: the driver initializes the replicas (each from its
// goroutine, after the primary's Init succeeded, with the same initial flag, retrying) but
// never closes one, nor the primary. Close stops the goroutines, letting them apply what is
// queued for up to Options.CloseTimeout; close the drivers after it.
//
// The driver New returns implements driver.Snapshotter and driver.TokenRecorder exactly
// when the primary does, with the primary's methods.
package replicastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The settings of Options left unset.
const (
	DefaultQueueSize    = 1024
	DefaultCloseTimeout = 5 * time.Second
)

// The backoff between the attempts on a failing replica.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// stripes is the number of key locks.
const stripes = 256

// Replica is a driver the primary's changes are copied to, and its name, which Lag,
// Rebuild, the metrics and the logs use.
type Replica struct {
	Name   string
	Driver driver.Driver
	// Copier, when set, is the driver rebuilds write with (Driver when nil): the same store,
	// written unfenced, so that a replica records a fencing token only with a change the
	// primary recorded it with first, never more than the primary holds.
	Copier driver.Driver
	// QueueSize is the most changes queued for this replica (Options.QueueSize when 0).
	QueueSize int
}

// Options tune the replication; a field of 0 takes its default.
type Options struct {
	// QueueSize is the most changes queued for one replica (DefaultQueueSize); beyond it
	// the replica is rebuilt.
	QueueSize int
	// CloseTimeout bounds how long Close lets the replicas apply what is queued
	// (DefaultCloseTimeout).
	CloseTimeout time.Duration
	// Logger receives a replica's failures and recoveries (slog.Default()).
	Logger *slog.Logger
	// RebuildAtStart makes every replica owe a rebuild from the start: its goroutine copies
	// the primary's state once the primary's Init has succeeded (a writer's start, after
	// which a replica may lack what an earlier writer had queued for it).
	RebuildAtStart bool
	// Floor, when set, is the fencing token the primary recorded before this writer wrote
	// anything, and Token the writer's own (0 unfenced). A rebuild never empties a replica
	// that records a newer token than Floor other than Token (driver.TokenRecorder): one
	// of an earlier writer, the replica holds writes the primary lost; one newer than
	// Token, a newer writer holds the store. Such a rebuild fails with ErrPrimaryBehind,
	// again at each retry, leaving the replica whole.
	Floor *int64
	Token int64
}

// ErrPrimaryBehind: a replica records writes of a newer fencing token than the primary
// had: the primary lost state (a server restarted without its data) that the replica still
// holds.
var ErrPrimaryBehind = errors.New("the primary is behind a replica")

// Driver is the driver New returns: the primary's, copied to the replicas.
type Driver interface {
	driver.Driver
	// Lag returns the age of the oldest change the named replica has not applied yet (0
	// when it is up to date) and the number of changes waiting in its queue. Both are 0 for
	// a name that is not a replica's.
	Lag(name string) (time.Duration, int)
	// Rebuild copies the primary's state to the named replica, dropping its queue, and
	// returns when a copy made after the call is done. The replica's goroutine makes the
	// copy (once the primary's Init has succeeded), retrying while it fails; a context that
	// ends first stops the waiting, not the copy.
	Rebuild(ctx context.Context, name string) error
}

// replicated is the driver New returns, before the optional interfaces of the primary.
type replicated struct {
	primary      driver.Driver
	snapshotter  driver.Snapshotter // the primary's, nil when it has none
	replicas     []*replica
	closeTimeout time.Duration
	log          *slog.Logger
	floor        *int64 // Options.Floor
	token        int64  // Options.Token

	// order is held shared by the writes of one key, and exclusively by DeleteAll; keys
	// holds a key's stripe from its write on the primary to its queueing.
	order sync.RWMutex
	keys  [stripes]sync.Mutex
	seed  maphash.Seed

	initOnce sync.Once
	inited   chan struct{} // closed by the primary's first successful Init
	initial  bool          // the initial flag of that Init

	stopping  chan struct{} // closed by Close
	ctx       context.Context
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once
}

// op is what a change does.
type op uint8

const (
	opPut op = iota
	opDelete
	opDeleteAll
	// opCopy copies the key's current value (or its absence) from the primary.
	opCopy
)

// change is one write of the primary to apply to a replica.
type change struct {
	op    op
	key   string
	value []byte
	at    time.Time // when the primary acknowledged it
}

// replica is one replica and its queue. Its goroutine is the only one to call its driver.
type replica struct {
	Replica
	size int

	mu         sync.Mutex
	queue      []change
	applying   time.Time     // at of the change being applied; zero when none
	owed       time.Time     // non-zero: a rebuild is owed, covering the changes since owed
	owedDone   chan struct{} // closed once the rebuild owed is done
	rebuilding time.Time     // non-zero: the rebuild in progress covers the changes since
	wake       chan struct{} // holds a token when there is work

	failing bool // the last attempt failed; only the goroutine uses it
}

// New returns a driver that serves every call from primary and copies its changes to the
// replicas, and starts a goroutine per replica, which Close stops. Replica names must be
// unique and not empty.
func New(primary driver.Driver, replicas []Replica, opts Options) (Driver, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &replicated{primary: primary, closeTimeout: opts.CloseTimeout, log: opts.Logger, seed: maphash.MakeSeed(),
		inited: make(chan struct{}), stopping: make(chan struct{}), floor: opts.Floor,
		token: opts.Token}
	d.snapshotter, _ = primary.(driver.Snapshotter)
	names := map[string]bool{}
	for _, r := range replicas {
		switch {
		case r.Name == "" || r.Driver == nil:
			return nil, fmt.Errorf("replicastore: a replica needs a name and a driver (got %q, %T)", r.Name, r.Driver)
		case names[r.Name]:
			return nil, fmt.Errorf("replicastore: two replicas named %q", r.Name)
		}
		names[r.Name] = true
		size := r.QueueSize
		if size <= 0 {
			size = opts.QueueSize
		}
		rep := &replica{Replica: r, size: size, wake: make(chan struct{}, 1)}
		if opts.RebuildAtStart {
			rep.owe(time.Now())
		}
		d.replicas = append(d.replicas, rep)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, r := range d.replicas {
		d.workers.Go(func() { d.run(r) })
	}
	lags.add(d)

	tr, records := primary.(driver.TokenRecorder)
	switch {
	case d.snapshotter != nil && records:
		return &struct {
			*replicated
			driver.Snapshotter
			driver.TokenRecorder
		}{d, d.snapshotter, tr}, nil
	case d.snapshotter != nil:
		return &struct {
			*replicated
			driver.Snapshotter
		}{d, d.snapshotter}, nil
	case records:
		return &struct {
			*replicated
			driver.TokenRecorder
		}{d, tr}, nil
	}
	return d, nil
}

// Init implements driver.Driver: the primary's Init. The first that succeeds lets the
// replicas' goroutines initialize their replicas and start applying.
func (d *replicated) Init(ctx context.Context, initial bool) (driver.InitReport, error) {
	report, err := d.primary.Init(ctx, initial)
	if err == nil {
		d.initOnce.Do(func() {
			d.initial = initial
			close(d.inited)
		})
	}
	return report, err
}

// Get implements driver.Driver.
func (d *replicated) Get(ctx context.Context, key string) (driver.Entry, error) {
	return d.primary.Get(ctx, key)
}

// Keys implements driver.Driver.
func (d *replicated) Keys(ctx context.Context) ([]string, error) { return d.primary.Keys(ctx) }

// Put implements driver.Driver.
func (d *replicated) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	defer d.lock(key)()
	rev, err := d.primary.Put(ctx, key, value, pre)
	switch {
	case err == nil:
		d.enqueue(change{op: opPut, key: key, value: bytes.Clone(value)})
	case mayHaveChanged(err):
		d.enqueue(change{op: opCopy, key: key})
	}
	return rev, err
}

// Delete implements driver.Driver.
func (d *replicated) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	defer d.lock(key)()
	err := d.primary.Delete(ctx, key, pre)
	switch {
	case err == nil:
		d.enqueue(change{op: opDelete, key: key})
	case mayHaveChanged(err):
		d.enqueue(change{op: opCopy, key: key})
	}
	return err
}

// DeleteAll implements driver.Driver. A DeleteAll whose outcome is unknown rebuilds every
// replica.
func (d *replicated) DeleteAll(ctx context.Context) error {
	d.order.Lock()
	defer d.order.Unlock()
	err := d.primary.DeleteAll(ctx)
	switch {
	case err == nil:
		d.enqueue(change{op: opDeleteAll})
	case mayHaveChanged(err):
		for _, r := range d.replicas {
			r.oweRebuild()
		}
	}
	return err
}

// Close implements driver.Driver: it stops the replicas' goroutines once they have
// applied what is queued, or after Options.CloseTimeout, when it cancels the calls they
// are making and waits for them to return. It closes no driver. It returns an error naming
// the replicas left behind.
func (d *replicated) Close() error {
	d.closeOnce.Do(func() {
		close(d.stopping)
		finished := make(chan struct{})
		go func() {
			d.workers.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(d.closeTimeout):
			d.cancel()
			<-finished
		}
		d.cancel()
		lags.remove(d)
	})
	var behind []string
	for _, r := range d.replicas {
		if lag, n := r.lag(); lag > 0 {
			behind = append(behind, fmt.Sprintf("%s (%d queued, %s behind)", r.Name, n, lag.Round(time.Millisecond)))
		}
	}
	if len(behind) > 0 {
		return fmt.Errorf("replicastore: closed with replicas not up to date: %s", strings.Join(behind, ", "))
	}
	return nil
}

// Lag implements Driver.
func (d *replicated) Lag(name string) (time.Duration, int) {
	if r := d.replica(name); r != nil {
		return r.lag()
	}
	return 0, 0
}

// Rebuild implements Driver.
func (d *replicated) Rebuild(ctx context.Context, name string) error {
	r := d.replica(name)
	if r == nil {
		return fmt.Errorf("replicastore: no replica named %q", name)
	}
	select {
	case <-d.stopping:
		return fmt.Errorf("replicastore: rebuild %s: %w", name, driver.ErrClosed)
	default:
	}
	select {
	case <-r.oweRebuild():
		return nil
	case <-d.stopping:
		return fmt.Errorf("replicastore: rebuild %s: %w", name, driver.ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("replicastore: rebuild %s: %w", name, ctx.Err())
	}
}

func (d *replicated) replica(name string) *replica {
	for _, r := range d.replicas {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// lock holds key for a write and returns its release.
func (d *replicated) lock(key string) func() {
	d.order.RLock()
	m := &d.keys[maphash.String(d.seed, key)%stripes]
	m.Lock()
	return func() {
		m.Unlock()
		d.order.RUnlock()
	}
}

// unchanged are the errors after which the contract says a write changed nothing.
var unchanged = []error{driver.ErrConflict, driver.ErrNotFound, driver.ErrTooLarge, driver.ErrInvalidValue,
	driver.ErrInvalidKey, driver.ErrFenced, driver.ErrNotOwned, driver.ErrLocked, driver.ErrClosed,
	context.Canceled, context.DeadlineExceeded}

// mayHaveChanged reports whether a write that failed with err may have changed the
// primary: its outcome is unknown, or the error is none that says nothing changed (a
// context's error alone means the write was not sent).
func mayHaveChanged(err error) bool {
	if errors.Is(err, driver.ErrUnknownOutcome) {
		return true
	}
	for _, target := range unchanged {
		if errors.Is(err, target) {
			return false
		}
	}
	return true
}
