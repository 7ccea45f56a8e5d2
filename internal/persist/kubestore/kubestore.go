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
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
	"github.com/strategyops/strategy-operator/internal/persist/metrics"
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

// ErrNotOwned: the object under the store's name belongs to another context.
var ErrNotOwned = errors.New("object belongs to another store")

func (d *Driver) owned(obj client.Object) error {
	if o, ok := d.layout.(Owner); ok {
		if err := o.Owns(obj); err != nil {
			return fmt.Errorf("%s %s: %w: %v", d.layout.Name(), d.name, ErrNotOwned, err)
		}
	}
	return nil
}

// entryMeta is the bookkeeping of one key, kept in AnnotationEntries by key.
type entryMeta struct {
	Rev uint64 `json:"r"`
}

// applied is one write in AnnotationRecent: its id and the sequence number it took.
type applied struct {
	WriteID string
	Seq     uint64
}

func (a applied) MarshalJSON() ([]byte, error) { return json.Marshal([]any{a.WriteID, a.Seq}) }

func (a *applied) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil || len(pair) != 2 {
		return fmt.Errorf("want [writeID, seq], got %s", b)
	}
	return errors.Join(json.Unmarshal(pair[0], &a.WriteID), json.Unmarshal(pair[1], &a.Seq))
}

// Fencing identifies a writer and its fencing token. The zero value writes unfenced.
type Fencing struct {
	Writer string
	Token  int64
}

// Options configures a Driver.
type Options struct {
	// Create lets Init create the object when it does not exist. A runner whose RBAC only
	// allows get and update on pre-created objects leaves it false.
	Create bool
	// Fencing, when Token is positive, fences this writer.
	Fencing Fencing
	// Labels are added to the object when Init creates it (the operator records the
	// owning Strategy's UID this way, LabelOwner).
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

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for the object name of layout's kind. c must read from the API
// server directly (client.New, not a manager's cached client).
func New(c client.Client, name types.NamespacedName, layout Layout, opts Options) *Driver {
	d := &Driver{c: c, name: name, layout: layout, opts: opts}
	d.batcher.Commit = d.commit
	return d
}

// Name is the object the driver stores into.
func (d *Driver) Name() types.NamespacedName { return d.name }

// state is an object with its bookkeeping decoded.
type state struct {
	obj     client.Object
	entries map[string]entryMeta
	// seq numbers the writes applied to the object (puts and deletes alike); recent are
	// the last recentWrites of them, oldest first.
	seq    uint64
	recent []applied
	token  int64
	writer string
	// usage is how full the object is (0 to 1) as store last left it.
	usage float64
}

// errCorrupt: the object's bookkeeping cannot be read; retrying will not help.
var errCorrupt = errors.New("corrupt store bookkeeping")

func readState(obj client.Object) (*state, error) {
	s := &state{obj: obj, entries: map[string]entryMeta{}}
	ann := obj.GetAnnotations()
	if raw := ann[AnnotationEntries]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &s.entries); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationEntries, err)
		}
	}
	var err error
	if raw := ann[AnnotationSeq]; raw != "" {
		if s.seq, err = strconv.ParseUint(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationSeq, err)
		}
	}
	if raw := ann[AnnotationToken]; raw != "" {
		if s.token, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationToken, err)
		}
	}
	s.writer = ann[AnnotationWriter]
	if raw := ann[AnnotationRecent]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &s.recent); err != nil {
			return nil, fmt.Errorf("%w: %s: annotation %s: %w", errCorrupt, obj.GetName(), AnnotationRecent, err)
		}
	}
	return s, nil
}

// store writes the bookkeeping back into the object's annotations, with the key count
// and how full the object is (see AnnotationUsage).
func (s *state) store(layout Layout) error {
	raw, err := json.Marshal(s.entries)
	if err != nil {
		return err
	}
	ann := s.obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationEntries] = string(raw)
	ann[AnnotationSeq] = strconv.FormatUint(s.seq, 10)
	ann[AnnotationKeys] = strconv.Itoa(len(s.entries))
	if raw, err = json.Marshal(s.recent); err != nil {
		return err
	}
	ann[AnnotationRecent] = string(raw)
	if s.token > 0 {
		ann[AnnotationToken] = strconv.FormatInt(s.token, 10)
		ann[AnnotationWriter] = s.writer
	}
	ann[AnnotationUsage] = "100" // its own few bytes count too; set below
	annBytes := 0
	for k, v := range ann {
		annBytes += len(k) + len(v)
	}
	s.usage = float64(annBytes) / maxAnnotationBytes
	if sz, ok := layout.(Sizer); ok {
		used, limit := sz.Size(s.obj)
		s.usage = max(s.usage, float64(used)/float64(limit))
	}
	ann[AnnotationUsage] = strconv.Itoa(int(s.usage * 100))
	s.obj.SetAnnotations(ann)
	if annBytes > maxAnnotationBytes {
		return fmt.Errorf("%w: %s has too many keys for its bookkeeping (%d bytes of annotations, limit %d)",
			driver.ErrTooLarge, s.obj.GetName(), annBytes, maxAnnotationBytes)
	}
	return nil
}

// record numbers one applied write of o and remembers it in recent.
func (s *state) record(o *op) uint64 {
	s.seq++
	s.recent = append(s.recent, applied{WriteID: o.writeID, Seq: s.seq})
	if n := len(s.recent); n > recentWrites {
		s.recent = slices.Delete(s.recent, 0, n-recentWrites)
	}
	return s.seq
}

// landed tells whether o, whose earlier update went unanswered, was applied then:
// applied with the sequence number it took; or known not applied, when recent still
// covers every write since that update's read; or neither, when too many writes came
// since.
func (s *state) landed(o *op) (seq uint64, applied, known bool) {
	for _, a := range s.recent {
		if a.WriteID == o.writeID {
			return a.Seq, true, true
		}
	}
	return 0, false, s.seq-o.baseSeq <= uint64(len(s.recent))
}

func (s *state) revision(m entryMeta) driver.Revision {
	return driver.Revision(fmt.Sprintf("%s.%d", s.obj.GetUID(), m.Rev))
}

// RevisionIncarnation is the Incarnation of the object a revision was read from.
func RevisionIncarnation(r driver.Revision) string {
	inc, _, _ := strings.Cut(string(r), ".")
	return inc
}

func (d *Driver) get(ctx context.Context) (client.Object, error) {
	obj := d.layout.New()
	if err := d.c.Get(ctx, d.name, obj); err != nil {
		return nil, err
	}
	return obj, d.owned(obj)
}

func (d *Driver) wrapAPI(op string, err error) error {
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

// Close implements driver.Driver; the driver holds nothing.
func (d *Driver) Close() error { return nil }

type opKind int

const (
	opPut opKind = iota
	opDelete
	opDeleteAll
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

// fence records this writer's token, or refuses o when another writer holds the store
// (an unfenced writer, such as the operator, records nothing and is never refused):
// one with a newer token, or one with the same token (a token names one holder of the
// Lease; two writers with one token means one of them read the Lease after losing it).
func (d *Driver) fence(s *state, o *op) (changed, refused bool) {
	f := d.opts.Fencing
	switch {
	case f.Token <= 0:
		return false, false
	case s.token == f.Token && s.writer == f.Writer:
		return false, false
	case s.token >= f.Token:
		o.finish("", fmt.Errorf("%w: writer %q has token %d, the store is at %d (writer %q)",
			driver.ErrFenced, f.Writer, f.Token, s.token, s.writer))
		return false, true
	default:
		s.token, s.writer = f.Token, f.Writer
		return true, false
	}
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

// apply applies o to s in memory. It finishes o when its outcome is decided without the
// update (a failed precondition, a fenced or refused write, an op already applied by an
// earlier attempt); otherwise o waits for the update. It reports whether s changed.
func (d *Driver) apply(s *state, o *op) bool {
	o.readSeq = s.seq
	if o.maybeApplied {
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
				o.finish("", fmt.Errorf("%s %s: gave up after %d failed attempts (last error: %v): %w",
					d.layout.Name(), d.name, b.failures, lastErr, o.ctx.Err()))
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
			// wait for it. Nothing landed, and the writes go to the new object.
			lastErr = err
		case err != nil && !transient(err) && !errors.Is(err, ctx.Err()):
			for _, o := range live {
				if !o.done {
					o.finish("", d.wrapAPI("update", err))
				}
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
	for _, o := range carried {
		o.finish(o.rev, nil)
	}
	return false, nil
}

// errIsolate: an update carrying several operations was refused; each must be tried alone.
var errIsolate = errors.New("update refused: isolating its operations")

// ErrRejected wraps a refusal of the API server's validation.
var ErrRejected = errors.New("rejected by the API server")

func invalidOrTooLarge(err error) error {
	if apierrors.IsRequestEntityTooLargeError(err) {
		return driver.ErrTooLarge
	}
	return ErrRejected
}

// transient reports whether err may go away by itself: the API server unreachable,
// overloaded or timing out.
func transient(err error) bool {
	if errors.Is(err, ErrNotOwned) || errors.Is(err, errCorrupt) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == 429 || code >= 500 || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	return true // connection refused, reset, EOF: no answer from the API server
}

// backoff waits between attempts, with jitter: after a lost compare-and-swap long enough
// for the winner's next round trip, so that contenders take turns instead of all
// re-reading at once; after errors longer, up to 2 s.
type backoff struct{ conflicts, failures int }

func (b *backoff) wait(ctx context.Context, conflict bool) {
	var d time.Duration
	if conflict {
		b.conflicts++
		d = min(conflictBackoff<<min(b.conflicts-1, 3), 8*conflictBackoff)
	} else {
		b.failures++
		d = min(50*time.Millisecond<<min(b.failures, 6), 2*time.Second)
	}
	d = d/2 + time.Duration(mrand.Int64N(int64(d)/2+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
