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

package kubestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/strategyops/strategy-operator/internal/persist/metrics"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

type opKind int

const (
	opPut opKind = iota
	opDelete
	opDeleteAll
	// opFence records the writer's token and changes no value (driver.Fencer).
	opFence
)

// op is one caller's operation, carried through a group commit.
type op struct {
	ctx     context.Context
	kind    opKind
	key     string
	value   []byte
	pre     driver.Precondition
	writeID string

	// maybeApplied: an update that carried this op ended with an unknown outcome; baseSeq
	// is the object's write sequence number when the first such update read it, and
	// readSeq that of the attempt under way.
	maybeApplied     bool
	baseSeq, readSeq uint64
	// sent: the attempt under way sent an update carrying this op.
	sent bool

	done bool
	rev  driver.Revision
	err  error
}

func (o *op) finish(rev driver.Revision, err error) {
	o.done, o.rev, o.err = true, rev, err
}

// reset forgets an outcome decided on a stale copy.
func (o *op) reset() { o.done, o.rev, o.err = false, "", nil }

func (d *Driver) run(ctx context.Context, o *op, name string) *op {
	start := time.Now()
	o.ctx = ctx
	var b [8]byte
	_, _ = rand.Read(b[:])
	o.writeID = hex.EncodeToString(b[:])
	d.batcher.Do(o)
	metrics.Observe(d.layout.Name(), name, start, o.err)
	return o
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	o := d.run(ctx, &op{kind: opPut, key: key, value: value, pre: pre}, "put")
	return o.rev, o.err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	return d.run(ctx, &op{kind: opDelete, key: key, pre: pre}, "delete").err
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	return d.run(ctx, &op{kind: opDeleteAll}, "delete_all").err
}

// Fence implements driver.Fencer.
func (d *Driver) Fence(ctx context.Context) error {
	if d.opts.Fencing.Token <= 0 {
		return nil
	}
	return d.run(ctx, &op{kind: opFence}, "fence").err
}

// fence records this writer's token, or refuses o when another writer holds the store
// (driver.Fencing.Against).
func (d *Driver) fence(s *state, o *op) (changed, refused bool) {
	record, err := d.opts.Fencing.Against(s.writer, s.token)
	if err != nil {
		o.finish("", err)
		return false, true
	}
	if record {
		s.token, s.writer = d.opts.Fencing.Token, d.opts.Fencing.Writer
	}
	return record, false
}

// RecordedFencing returns the writer and token last recorded on the object (the zero
// Fencing when no fenced writer has written).
func (d *Driver) RecordedFencing(ctx context.Context) (Fencing, error) {
	obj, err := d.get(ctx)
	if err != nil {
		return Fencing{}, d.wrapAPI("get", err)
	}
	s, err := readState(obj)
	if err != nil {
		return Fencing{}, err
	}
	return Fencing{Writer: s.writer, Token: s.token}, nil
}

// RecordedToken implements driver.TokenRecorder.
func (d *Driver) RecordedToken(ctx context.Context) (int64, error) {
	f, err := d.RecordedFencing(ctx)
	return f.Token, err
}

// apply applies o to s in memory. It finishes o when its outcome is decided without the
// update (a failed precondition, a fenced or refused write, an op already applied by an
// earlier attempt); otherwise o waits for the update. It reports whether s changed.
func (d *Driver) apply(s *state, o *op) bool {
	o.readSeq = s.seq
	if o.maybeApplied && o.kind != opFence { // a fence is idempotent: decided afresh
		seq, applied, known := s.landed(o)
		switch {
		case applied: // an earlier attempt stored it after all
			rev := driver.Revision("")
			if o.kind == opPut {
				rev = s.revision(entryMeta{Rev: seq})
			}
			o.finish(rev, nil)
			return false
		case !known:
			o.finish("", fmt.Errorf("%s %s: %w: %d writes came after the unanswered update, more than the %d remembered",
				d.layout.Name(), d.name, driver.ErrUnknownOutcome, s.seq-o.baseSeq, len(s.recent)))
			return false
		}
	}
	changed, refused := d.fence(s, o)
	if refused {
		return false
	}
	switch o.kind {
	case opFence:
		return changed
	case opDeleteAll:
		if len(s.entries) == 0 {
			return changed
		}
		for k := range s.entries {
			d.layout.Delete(s.obj, k)
			delete(s.entries, k)
		}
		s.record(o)
		return true
	case opDelete:
		return d.applyDelete(s, o) || changed
	default:
		return d.applyPut(s, o) || changed
	}
}

func (d *Driver) applyDelete(s *state, o *op) bool {
	meta := s.entries[o.key]
	if _, exists := d.layout.Get(s.obj, o.key); !exists {
		o.finish("", driver.ErrNotFound)
		return false
	}
	if o.pre.IfRevision != "" && s.revision(meta) != o.pre.IfRevision {
		o.finish("", fmt.Errorf("%w: want revision %s", driver.ErrConflict, o.pre.IfRevision))
		return false
	}
	d.layout.Delete(s.obj, o.key)
	delete(s.entries, o.key)
	s.record(o)
	return true
}

func (d *Driver) applyPut(s *state, o *op) bool {
	meta := s.entries[o.key]
	_, exists := d.layout.Get(s.obj, o.key)
	switch {
	case o.pre.IfAbsent && exists:
		o.finish("", fmt.Errorf("%w: key exists", driver.ErrConflict))
		return false
	case o.pre.IfRevision != "" && (!exists || s.revision(meta) != o.pre.IfRevision):
		o.finish("", fmt.Errorf("%w: want revision %s", driver.ErrConflict, o.pre.IfRevision))
		return false
	}
	if err := d.layout.Put(s.obj, o.key, o.value); err != nil {
		o.finish("", fmt.Errorf("%s %s: %w", d.layout.Name(), d.name, err))
		return false
	}
	m := entryMeta{Rev: s.record(o)}
	s.entries[o.key] = m
	o.rev = s.revision(m)
	return true
}

// commit runs one batch: read, apply every op, one update; on a lost compare-and-swap or
// a transient API error, all over again, until every op is decided or its context ends.
func (d *Driver) commit(batch []*op) {
	metrics.Batch(d.layout.Name(), len(batch))
	var b backoff
	var lastErr error // the last transient error, for the caller that gives up
	for {
		live := slices.DeleteFunc(slices.Clone(batch), func(o *op) bool {
			if !o.done && o.ctx.Err() != nil {
				err := fmt.Errorf("%s %s: gave up after %d failed attempts (last error: %v): %w",
					d.layout.Name(), d.name, b.failures, lastErr, o.ctx.Err())
				if o.maybeApplied { // an update carrying it was sent and its answer lost
					err = fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
				}
				o.finish("", err)
			}
			return o.done
		})
		if len(live) == 0 {
			return
		}
		ctx := live[0].ctx
		retry, err := d.attempt(ctx, live)
		switch {
		case errors.Is(err, errIsolate):
			// The API server refused an update carrying several operations: commit each
			// on its own, so that the refusal reaches only the caller that caused it.
			for _, o := range live {
				if !o.done {
					d.commit([]*op{o})
				}
			}
			return
		case err == nil && !retry:
			return
		case apierrors.IsNotFound(err) && !d.opts.Create:
			// The object was deleted. The operator makes it again (this writer may not):
			// wait for it. Nothing landed, and the writes go to the new object. A fence has
			// nothing to protect on an object that does not exist.
			for _, o := range live {
				if o.kind == opFence {
					o.finish("", nil)
				}
			}
			lastErr = err
		case err != nil && !Transient(err) && !errors.Is(err, ctx.Err()):
			for _, o := range live {
				if o.done {
					continue
				}
				err := d.wrapAPI("update", err)
				if o.maybeApplied { // an earlier update carrying it was sent and its answer lost
					err = fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
				}
				o.finish("", err)
			}
			return
		case err != nil:
			lastErr = err
			// Only an update that was sent may have landed; a failed read changed nothing.
			for _, o := range live {
				if o.sent && !o.maybeApplied {
					o.maybeApplied, o.baseSeq = true, o.readSeq
				}
			}
		}
		b.wait(ctx, err == nil)
	}
}

// attempt applies ops to the object and updates it once. retry is true when the update
// lost a compare-and-swap, or when a refusal was decided on a cached copy.
func (d *Driver) attempt(ctx context.Context, ops []*op) (retry bool, err error) {
	for _, o := range ops {
		o.sent = false
	}
	s, fresh := d.last, false
	d.last = nil
	if d.contended > 0 {
		s, d.contended = nil, d.contended-1
	}
	if s == nil {
		obj, err := d.get(ctx)
		if err != nil {
			return false, err
		}
		if s, err = readState(obj); err != nil {
			return false, err
		}
		fresh = true
	}
	changed := false
	for _, o := range ops {
		changed = d.apply(s, o) || changed
	}
	// undo forgets what this attempt decided: those decisions rest on the in-memory effects
	// of ops that did not land (or on a cached copy), and are made again next time.
	undo := func() {
		for _, o := range ops {
			o.reset()
		}
	}
	if !fresh && slices.ContainsFunc(ops, func(o *op) bool { return o.done && o.err != nil }) {
		undo() // a refusal decided on our cached copy may be stale
		return true, nil
	}
	carried := slices.DeleteFunc(slices.Clone(ops), func(o *op) bool { return o.done })
	if !changed {
		for _, o := range carried {
			o.finish(o.rev, nil)
		}
		return false, nil
	}
	if err := s.store(d.layout); err != nil {
		if len(carried) > 1 {
			undo()
			return false, errIsolate
		}
		for _, o := range carried {
			o.finish("", err)
		}
		return false, nil
	}
	for _, o := range carried {
		o.sent = true
	}
	err = d.c.Update(ctx, s.obj)
	switch {
	case apierrors.IsConflict(err):
		metrics.ConflictRetried(d.layout.Name())
		if !fresh {
			d.contended = contendedReads
		}
		undo()
		return true, nil
	case apierrors.IsInvalid(err) || apierrors.IsRequestEntityTooLargeError(err):
		if len(carried) > 1 {
			undo()
			return false, errIsolate
		}
		// The API server refused what the layout let through; name it for the caller.
		for _, o := range carried {
			o.finish("", fmt.Errorf("%w: %s", invalidOrTooLarge(err), err))
		}
		return false, nil
	case err != nil:
		undo()
		return false, err
	}
	d.last = s
	metrics.Usage(d.layout.Name(), d.name.Namespace, d.name.Name, s.usage)
	if s.dataLimit > 0 {
		metrics.Size(d.layout.Name(), d.name.Namespace, d.name.Name, s.dataBytes, s.dataLimit)
	}
	for _, o := range carried {
		o.finish(o.rev, nil)
	}
	return false, nil
}

// errIsolate: an update carrying several operations was refused; each must be tried alone.
var errIsolate = errors.New("update refused: isolating its operations")

// invalidOrTooLarge is the contract's sentinel for a refusal of the API server's
// validation: the object would have been too large, or a value does not fit its field.
func invalidOrTooLarge(err error) error {
	if apierrors.IsRequestEntityTooLargeError(err) {
		return driver.ErrTooLarge
	}
	return driver.ErrInvalidValue
}
