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

// Package kubestore keeps a store in one Kubernetes object, safely. The object's kind is a
// Layout (ConfigMap data keys, StrategyState fields); what is common to all lives here:
//
//   - Every change is a compare-and-swap on the object's resourceVersion. Each key has its
//     own revision (an annotation keeps them, with a per-object sequence), so a write
//     conditioned on key K fails only if K changed; when the swap loses to a change of
//     another key, the driver re-reads and tries again by itself.
//   - Unconditional writes never fail because of other writers: they are retried with
//     jittered backoff until the caller's context ends. Transient API errors (no answer,
//     429, 5xx) are retried the same way; an operation is reported successful only once
//     the update carrying it succeeded.
//   - Concurrent operations on one object are coalesced into one update (group commit).
//   - Reads are read-your-writes: every read is a direct GET from the API server, never an
//     informer cache.
//   - A driver opened with a fencing token records the newest token on the object inside
//     the same compare-and-swap as each write; a write carrying an older token fails with
//     driver.ErrFenced and changes nothing.
package kubestore

import (
	"context"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
	"github.com/strategyops/strategy-operator/internal/persist/metrics"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Annotations the driver keeps on its object.
const (
	AnnotationEntries = "trading.strategyops.dev/entries"
	AnnotationSeq     = "trading.strategyops.dev/seq"
	AnnotationToken   = "trading.strategyops.dev/fencing-token"
	AnnotationWriter  = "trading.strategyops.dev/writer"
	// AnnotationKeys counts the keys the object holds, and AnnotationUsage says how full it
	// is (the percentage of the API server's limit reached by its data or its annotations,
	// whichever is fuller): the operator reads both from metadata alone.
	AnnotationKeys  = "trading.strategyops.dev/keys"
	AnnotationUsage = "trading.strategyops.dev/usage"
	// AnnotationRecent lists the last writes applied to the object (write id and sequence
	// number), so that a write whose answer was lost can tell whether it landed.
	AnnotationRecent = "trading.strategyops.dev/recent"
	// recentWrites is how many writes AnnotationRecent remembers.
	recentWrites = 128

	// maxAnnotationBytes is the API server's limit on an object's annotations.
	maxAnnotationBytes = 256 << 10
	// contendedReads is how many updates start from a fresh read after the cached copy
	// lost a compare-and-swap.
	contendedReads = 32
	// conflictBackoff is the first wait after a lost compare-and-swap.
	conflictBackoff = 5 * time.Millisecond
)

// Layout maps store keys onto one kind of object. Its methods work on the object in
// memory; the driver does every API call.
type Layout interface {
	// Name names the backend in errors and metrics.
	Name() string
	// New returns an empty object of the layout's kind, to read into.
	New() client.Object
	// Create returns the object Init creates when it does not exist yet.
	Create(name types.NamespacedName) client.Object
	// Get returns the value at key.
	Get(obj client.Object, key string) (value []byte, ok bool)
	// Put sets key to value. It returns driver.ErrTooLarge (or ErrInvalidKey, or a
	// validation error) and leaves obj unchanged when the value cannot be stored.
	Put(obj client.Object, key string, value []byte) error
	// Delete removes key.
	Delete(obj client.Object, key string)
	// Quarantine moves corrupt values aside and returns the keys it moved.
	Quarantine(obj client.Object) []string
}

// Sizer is a Layout that can tell how many bytes of its limit an object's data uses.
type Sizer interface {
	Size(obj client.Object) (used, limit int)
}

// Owner is a Layout that can tell whether an object is the one it expects: two contexts
// whose names clean up alike (BTCUSDT and btcusdt) share an object name, and the second
// must not write into the first's object.
type Owner interface {
	Owns(obj client.Object) error
}

func (d *Driver) owned(obj client.Object) error {
	if o, ok := d.layout.(Owner); ok {
		if err := o.Owns(obj); err != nil {
			return fmt.Errorf("%s %s: %w: %v", d.layout.Name(), d.name, driver.ErrNotOwned, err)
		}
	}
	return nil
}

// Fencing identifies a writer and its fencing token. The zero value writes unfenced.
type Fencing = driver.Fencing

// Options configures a Driver.
type Options struct {
	// Create lets Init create the object when it does not exist. A runner whose RBAC only
	// allows get and update on pre-created objects leaves it false.
	Create bool
	// Fencing, when Token is positive, fences this writer.
	Fencing Fencing
	// Labels are added to the object when Init creates it (the operator records the
	// owning Strategy's UID this way, names.LabelOwner).
	Labels map[string]string
}

// Driver is a store in one object.
type Driver struct {
	c      client.Client
	name   types.NamespacedName
	layout Layout
	opts   Options

	batcher groupcommit.Batcher[*op]
	// last is the object as our last update left it, the base of the next update (so a
	// writer alone costs one request per write; the compare-and-swap makes that safe).
	// Only the batch leader touches it. While other writers keep changing the object
	// (contended > 0), updates start from a fresh read instead.
	last      *state
	contended int
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Snapshotter   = (*Driver)(nil)
	_ driver.TokenRecorder = (*Driver)(nil)
)

// New returns a driver for the object name of layout's kind. c must read from the API
// server directly (client.New, not a manager's cached client).
func New(c client.Client, name types.NamespacedName, layout Layout, opts Options) *Driver {
	d := &Driver{c: c, name: name, layout: layout, opts: opts}
	d.batcher.Commit = d.commit
	return d
}

// Name is the object the driver stores into.
func (d *Driver) Name() types.NamespacedName { return d.name }

func (d *Driver) get(ctx context.Context) (client.Object, error) {
	obj := d.layout.New()
	if err := d.c.Get(ctx, d.name, obj); err != nil {
		return nil, err
	}
	return obj, d.owned(obj)
}

func (d *Driver) wrapAPI(op string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s: %s: %w: %w", d.layout.Name(), d.name, op, driver.ErrGone, err)
	}
	return fmt.Errorf("%s %s: %s: %w", d.layout.Name(), d.name, op, err)
}

// newObject is the object Init creates: the layout's, with the extra labels.
func (d *Driver) newObject() client.Object {
	obj := d.layout.Create(d.name)
	if len(d.opts.Labels) > 0 {
		l := maps.Clone(obj.GetLabels())
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, d.opts.Labels)
		obj.SetLabels(l)
	}
	return obj
}

// Init makes sure the object exists (creating it when allowed) and quarantines corrupt
// values.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	var report driver.InitReport
	for {
		obj, err := d.get(ctx)
		if apierrors.IsNotFound(err) && d.opts.Create {
			err = d.c.Create(ctx, d.newObject())
			if err == nil || apierrors.IsAlreadyExists(err) {
				continue
			}
		}
		if err != nil {
			return report, d.wrapAPI("init", err)
		}
		s, err := readState(obj)
		if err != nil {
			return report, err
		}
		moved := d.layout.Quarantine(obj)
		if len(moved) == 0 {
			return report, nil
		}
		for _, k := range moved {
			delete(s.entries, k)
		}
		if err := s.store(d.layout); err != nil {
			return report, err
		}
		err = d.c.Update(ctx, obj)
		if apierrors.IsConflict(err) {
			metrics.ConflictRetried(d.layout.Name())
			continue
		}
		if err != nil {
			return report, d.wrapAPI("init", err)
		}
		report.Quarantined = len(moved)
		return report, nil
	}
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	start := time.Now()
	e, err := d.getEntry(ctx, key)
	metrics.Observe(d.layout.Name(), "get", start, err)
	return e, err
}

func (d *Driver) getEntry(ctx context.Context, key string) (driver.Entry, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return driver.Entry{}, d.wrapAPI("get", err)
	}
	s, err := readState(obj)
	if err != nil {
		return driver.Entry{}, err
	}
	v, ok := d.layout.Get(obj, key)
	if !ok {
		return driver.Entry{}, driver.ErrNotFound
	}
	return driver.Entry{Value: v, Revision: s.revision(s.entries[key])}, nil
}

// Keys implements driver.Driver: the keys the driver wrote that the object still holds.
func (d *Driver) Keys(ctx context.Context) ([]string, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return nil, d.wrapAPI("keys", err)
	}
	s, err := readState(obj)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		if _, ok := d.layout.Get(obj, k); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Snapshot returns every key's entry, read in one request.
func (d *Driver) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return nil, d.wrapAPI("snapshot", err)
	}
	s, err := readState(obj)
	if err != nil {
		return nil, err
	}
	out := make(map[string]driver.Entry, len(s.entries))
	for k, m := range s.entries {
		if v, ok := d.layout.Get(obj, k); ok {
			out[k] = driver.Entry{Value: v, Revision: s.revision(m)}
		}
	}
	return out, nil
}

// Incarnation names the object as it exists now (its UID): an object deleted and made
// again, even under the same name, is another incarnation.
func (d *Driver) Incarnation(ctx context.Context) (string, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return "", d.wrapAPI("incarnation", err)
	}
	return string(obj.GetUID()), nil
}

// RevisionIncarnation implements driver.Incarnator: the UID of the object r was read from.
func (d *Driver) RevisionIncarnation(r driver.Revision) string { return revisionIncarnation(r) }

// Close implements driver.Driver; the driver holds nothing.
func (d *Driver) Close() error { return nil }
