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

// Package configmapstore keeps a store in one ConfigMap: each entity a data key holding its
// JSON document.
//
// Every change is a compare-and-swap on the ConfigMap's resourceVersion. Each key also has
// its own revision (kept in an annotation with a per-object sequence), so a write
// conditioned on key K fails only if K changed; when the object-level swap loses to a
// change of another key, the driver re-reads and tries again by itself. Unconditional
// writes never fail because of other writers: they are retried, with jittered backoff,
// until the caller's context ends. Concurrent operations on one ConfigMap are coalesced
// into one update (group commit); each caller returns once the update carrying its
// operation succeeded.
//
// Reads are read-your-writes: every read is a direct GET from the API server, never an
// informer cache.
//
// A driver opened with a fencing token records the newest token on the object, inside the
// same compare-and-swap as each write; a write carrying an older token fails with
// driver.ErrFenced and changes nothing.
package configmapstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
	"github.com/strategyops/strategy-operator/internal/persist/metrics"
)

// Annotations the driver keeps on its ConfigMap.
const (
	AnnotationEntries = "trading.strategyops.dev/entries"
	AnnotationSeq     = "trading.strategyops.dev/seq"
	AnnotationToken   = "trading.strategyops.dev/fencing-token"
	AnnotationWriter  = "trading.strategyops.dev/writer"

	// quarantinePrefix marks data keys holding values found corrupt at Init. Encoded keys
	// never start with it ('_' is always followed by two hex digits or 'h').
	quarantinePrefix = "_q."
	hashedPrefix     = "_h"
	maxPlainKey      = 200

	// MaxDataBytes is the API server's limit on a ConfigMap's data (keys and values).
	MaxDataBytes = 1 << 20
	// maxAnnotationBytes is the API server's limit on an object's annotations.
	maxAnnotationBytes = 256 << 10

	backendName = "configmap"

	// contendedReads is how many updates start from a fresh read after the cached copy
	// lost a compare-and-swap.
	contendedReads = 32
	// conflictBackoff is the first wait after a lost compare-and-swap.
	conflictBackoff = 5 * time.Millisecond
)

// entryMeta is the per-key bookkeeping kept in AnnotationEntries.
type entryMeta struct {
	Rev     uint64 `json:"r"`
	WriteID string `json:"w,omitempty"`
	Key     string `json:"k,omitempty"` // the original key, for hashed data keys
}

// Fencing identifies a writer and its fencing token. The zero value writes unfenced.
type Fencing struct {
	Writer string
	Token  int64
}

// Options configures a Driver.
type Options struct {
	// Labels and Annotations are set on the ConfigMap when the driver creates it.
	Labels      map[string]string
	Annotations map[string]string
	// Create lets Init create the ConfigMap when it does not exist. A runner whose RBAC
	// only allows get and update on pre-created objects leaves it false.
	Create bool
	// Fencing, when Token is positive, fences this writer.
	Fencing Fencing
}

// Driver is a store in one ConfigMap.
type Driver struct {
	c    client.Client
	name types.NamespacedName
	opts Options

	batcher groupcommit.Batcher[*op]
	// last is the object as our last update left it, the base of the next update; only
	// the batch leader touches it. Nil after a lost compare-and-swap, which forces a fresh
	// read. While other writers keep changing the object (contended > 0), updates start
	// from a fresh read instead, since the cached copy would only lose.
	last      *state
	contended int
}

var _ driver.Driver = (*Driver)(nil)

// New returns a driver for the ConfigMap name. c must read from the API server directly
// (client.New, or a manager's APIReader for reads): a cached client would break
// read-your-writes.
func New(c client.Client, name types.NamespacedName, opts Options) *Driver {
	d := &Driver{c: c, name: name, opts: opts}
	d.batcher.Commit = d.commit
	return d
}

// EncodeKey maps an entity id to a valid ConfigMap data key: [-._a-zA-Z0-9] kept (a
// leading '.' excepted), every other byte written as _XX; keys longer than 200 bytes once
// encoded are hashed, with the original kept in the entries annotation.
func EncodeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || (c == '.' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	if b.Len() > maxPlainKey {
		sum := sha256.Sum256([]byte(key))
		return hashedPrefix + hex.EncodeToString(sum[:20])
	}
	return b.String()
}

func decodeKey(enc string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		if enc[i] != '_' {
			b.WriteByte(enc[i])
			continue
		}
		if i+2 >= len(enc) {
			return "", fmt.Errorf("truncated escape in data key %q", enc)
		}
		v, err := hex.DecodeString(enc[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("bad escape in data key %q", enc)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}

// state is the decoded bookkeeping of a ConfigMap.
type state struct {
	cm      *corev1.ConfigMap
	entries map[string]entryMeta
	seq     uint64
	token   int64
}

func readState(cm *corev1.ConfigMap) (*state, error) {
	s := &state{cm: cm, entries: map[string]entryMeta{}}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	if raw := cm.Annotations[AnnotationEntries]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &s.entries); err != nil {
			return nil, fmt.Errorf("configmap %s: annotation %s: %w", cm.Name, AnnotationEntries, err)
		}
	}
	var err error
	if raw := cm.Annotations[AnnotationSeq]; raw != "" {
		if s.seq, err = strconv.ParseUint(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("configmap %s: annotation %s: %w", cm.Name, AnnotationSeq, err)
		}
	}
	if raw := cm.Annotations[AnnotationToken]; raw != "" {
		if s.token, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return nil, fmt.Errorf("configmap %s: annotation %s: %w", cm.Name, AnnotationToken, err)
		}
	}
	return s, nil
}

func (s *state) store() error {
	raw, err := json.Marshal(s.entries)
	if err != nil {
		return err
	}
	s.cm.Annotations[AnnotationEntries] = string(raw)
	s.cm.Annotations[AnnotationSeq] = strconv.FormatUint(s.seq, 10)
	if s.token > 0 {
		s.cm.Annotations[AnnotationToken] = strconv.FormatInt(s.token, 10)
	}
	return nil
}

func (s *state) revision(m entryMeta) driver.Revision {
	return driver.Revision(fmt.Sprintf("%s.%d", s.cm.UID, m.Rev))
}

func dataSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	for k, v := range cm.BinaryData {
		n += len(k) + len(v)
	}
	return n
}

func annotationSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Annotations {
		n += len(k) + len(v)
	}
	return n
}

func (d *Driver) get(ctx context.Context) (*corev1.ConfigMap, error) {
	var cm corev1.ConfigMap
	if err := d.c.Get(ctx, d.name, &cm); err != nil {
		return nil, err
	}
	return &cm, nil
}

// Init makes sure the ConfigMap exists (creating it when allowed) and moves values that
// are not valid JSON aside, under a "_q." key.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	var report driver.InitReport
	for {
		cm, err := d.get(ctx)
		if apierrors.IsNotFound(err) && d.opts.Create {
			err = d.create(ctx)
			if err == nil || apierrors.IsAlreadyExists(err) {
				continue
			}
		}
		if err != nil {
			return report, d.wrapAPI("init", err)
		}
		s, err := readState(cm)
		if err != nil {
			return report, err
		}
		moved := 0
		for k, v := range cm.Data {
			if strings.HasPrefix(k, quarantinePrefix) || json.Valid([]byte(v)) {
				continue
			}
			cm.Data[quarantinePrefix+time.Now().UTC().Format("20060102T150405Z")+"."+k] = v
			delete(cm.Data, k)
			delete(s.entries, k)
			moved++
		}
		if moved == 0 {
			return report, nil
		}
		if err := s.store(); err != nil {
			return report, err
		}
		err = d.c.Update(ctx, cm)
		if apierrors.IsConflict(err) {
			metrics.ConflictRetried(backendName)
			continue
		}
		if err != nil {
			return report, d.wrapAPI("init", err)
		}
		report.Quarantined = moved
		return report, nil
	}
}

func (d *Driver) create(ctx context.Context) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: d.name.Name, Namespace: d.name.Namespace,
		Labels: d.opts.Labels, Annotations: d.opts.Annotations,
	}}
	return d.c.Create(ctx, cm)
}

func (d *Driver) wrapAPI(op string, err error) error {
	return fmt.Errorf("configmap %s: %s: %w", d.name, op, err)
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	start := time.Now()
	e, err := d.getEntry(ctx, key)
	metrics.Observe(backendName, "get", start, err)
	return e, err
}

func (d *Driver) getEntry(ctx context.Context, key string) (driver.Entry, error) {
	cm, err := d.get(ctx)
	if err != nil {
		return driver.Entry{}, d.wrapAPI("get", err)
	}
	s, err := readState(cm)
	if err != nil {
		return driver.Entry{}, err
	}
	enc := EncodeKey(key)
	v, ok := cm.Data[enc]
	if !ok {
		return driver.Entry{}, driver.ErrNotFound
	}
	return driver.Entry{Value: []byte(v), Revision: s.revision(s.entries[enc])}, nil
}

// Keys implements driver.Driver.
func (d *Driver) Keys(ctx context.Context) ([]string, error) {
	cm, err := d.get(ctx)
	if err != nil {
		return nil, d.wrapAPI("keys", err)
	}
	s, err := readState(cm)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(cm.Data))
	for enc := range cm.Data {
		switch {
		case strings.HasPrefix(enc, quarantinePrefix):
			continue
		case strings.HasPrefix(enc, hashedPrefix):
			keys = append(keys, s.entries[enc].Key)
		default:
			k, err := decodeKey(enc)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
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
	enc     string
	value   []byte
	pre     driver.Precondition
	writeID string

	// maybeApplied: an update that carried this op ended with an unknown outcome.
	maybeApplied bool
	done         bool
	rev          driver.Revision
	err          error
}

func (o *op) finish(rev driver.Revision, err error) {
	o.done, o.rev, o.err = true, rev, err
}

func newWriteID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	start := time.Now()
	o := &op{ctx: ctx, kind: opPut, key: key, enc: EncodeKey(key), value: value, pre: pre, writeID: newWriteID()}
	d.batcher.Do(o)
	metrics.Observe(backendName, "put", start, o.err)
	return o.rev, o.err
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	start := time.Now()
	o := &op{ctx: ctx, kind: opDelete, key: key, enc: EncodeKey(key), pre: pre, writeID: newWriteID()}
	d.batcher.Do(o)
	metrics.Observe(backendName, "delete", start, o.err)
	return o.err
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	start := time.Now()
	o := &op{ctx: ctx, kind: opDeleteAll, writeID: newWriteID()}
	d.batcher.Do(o)
	metrics.Observe(backendName, "delete_all", start, o.err)
	return o.err
}

// apply applies o to s in memory. It finishes o when its outcome is decided without the
// update (a failed precondition, a fenced or oversized write, an op already applied by an
// earlier attempt); otherwise it reports whether s changed.
func (d *Driver) apply(s *state, o *op) (changed bool) {
	if tok := d.opts.Fencing.Token; tok > 0 {
		if s.token > tok {
			o.finish("", fmt.Errorf("%w: writer %q has token %d, the store is at %d",
				driver.ErrFenced, d.opts.Fencing.Writer, tok, s.token))
			return false
		}
		if s.token < tok {
			s.token = tok
			s.cm.Annotations[AnnotationWriter] = d.opts.Fencing.Writer
			changed = true
		}
	}
	meta := s.entries[o.enc]
	_, exists := s.cm.Data[o.enc]
	switch o.kind {
	case opDeleteAll:
		for k := range s.cm.Data {
			if !strings.HasPrefix(k, quarantinePrefix) {
				delete(s.cm.Data, k)
				delete(s.entries, k)
				changed = true
			}
		}
		return changed
	case opDelete:
		if !exists {
			if o.maybeApplied {
				o.finish("", nil) // our own earlier attempt removed it
			} else {
				o.finish("", driver.ErrNotFound)
			}
			return false
		}
		if o.pre.IfRevision != "" && s.revision(meta) != o.pre.IfRevision {
			o.finish("", fmt.Errorf("%w: want revision %s", driver.ErrConflict, o.pre.IfRevision))
			return false
		}
		delete(s.cm.Data, o.enc)
		delete(s.entries, o.enc)
		return true
	}
	if o.maybeApplied && exists && meta.WriteID == o.writeID {
		o.finish(s.revision(meta), nil) // an earlier attempt stored it after all
		return changed
	}
	switch {
	case o.pre.IfAbsent && exists:
		o.finish("", fmt.Errorf("%w: key exists", driver.ErrConflict))
		return changed
	case o.pre.IfRevision != "" && (!exists || s.revision(meta) != o.pre.IfRevision):
		o.finish("", fmt.Errorf("%w: want revision %s", driver.ErrConflict, o.pre.IfRevision))
		return changed
	}
	old, had := s.cm.Data[o.enc]
	s.cm.Data[o.enc] = string(o.value)
	if dataSize(s.cm) > MaxDataBytes {
		if had {
			s.cm.Data[o.enc] = old
		} else {
			delete(s.cm.Data, o.enc)
		}
		o.finish("", fmt.Errorf("%w: %d bytes would take configmap %s past its %d-byte limit",
			driver.ErrTooLarge, len(o.value), d.name, MaxDataBytes))
		return changed
	}
	s.seq++
	m := entryMeta{Rev: s.seq, WriteID: o.writeID}
	if strings.HasPrefix(o.enc, hashedPrefix) {
		m.Key = o.key
	}
	s.entries[o.enc] = m
	o.rev = s.revision(m)
	return true
}

// commit runs one batch: read, apply every op, one update; on a lost compare-and-swap or a
// transient API error, all over again, until every op is decided or its context ends.
func (d *Driver) commit(batch []*op) {
	metrics.Batch(backendName, len(batch))
	backoff := newBackoff()
	for {
		live := batch[:0:0]
		for _, o := range batch {
			if o.done {
				continue
			}
			if err := o.ctx.Err(); err != nil {
				o.finish("", fmt.Errorf("configmap %s: gave up: %w", d.name, err))
				continue
			}
			live = append(live, o)
		}
		if len(live) == 0 {
			return
		}
		ctx := live[0].ctx
		retry, err := d.attempt(ctx, live)
		if err == nil && !retry {
			return
		}
		if err != nil && !transient(err) && !errors.Is(err, ctx.Err()) {
			for _, o := range live {
				if !o.done {
					o.finish("", d.wrapAPI("update", err))
				}
			}
			return
		}
		if err != nil {
			for _, o := range live {
				o.maybeApplied = true
			}
		}
		backoff.wait(ctx, apierrors.IsConflict(err) || retry)
	}
}

// attempt reads the ConfigMap, applies ops and updates it once. retry is true when the
// update lost a compare-and-swap.
//
// The base is the object our own last update returned when there is one, so a writer
// that is alone costs one request per write; the compare-and-swap on its resourceVersion
// makes that safe, and losing it costs one fresh read.
func (d *Driver) attempt(ctx context.Context, ops []*op) (retry bool, err error) {
	s, fresh := d.last, false
	d.last = nil
	if d.contended > 0 {
		s, d.contended = nil, d.contended-1
	}
	if s == nil {
		cm, err := d.get(ctx)
		if err != nil {
			return false, err
		}
		if s, err = readState(cm); err != nil {
			return false, err
		}
		fresh = true
	}
	cm := s.cm
	changed := false
	var carried []*op
	for _, o := range ops {
		if d.apply(s, o) {
			changed = true
		}
		if !o.done {
			carried = append(carried, o)
		}
	}
	if !fresh && refusedAny(ops) {
		// A refusal decided on our cached copy may be stale: decide again on a fresh read.
		for _, o := range ops {
			*o = op{ctx: o.ctx, kind: o.kind, key: o.key, enc: o.enc, value: o.value, pre: o.pre,
				writeID: o.writeID, maybeApplied: o.maybeApplied}
		}
		return true, nil
	}
	if !changed {
		for _, o := range carried {
			o.finish(o.rev, nil)
		}
		return false, nil
	}
	if err := s.store(); err != nil {
		return false, err
	}
	if annotationSize(cm) > maxAnnotationBytes {
		for _, o := range carried {
			o.finish("", fmt.Errorf("%w: configmap %s has too many keys for its bookkeeping", driver.ErrTooLarge, d.name))
		}
		return false, nil
	}
	err = d.c.Update(ctx, cm)
	if apierrors.IsConflict(err) {
		metrics.ConflictRetried(backendName)
		if !fresh {
			d.contended = contendedReads
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	d.last = s
	for _, o := range carried {
		o.finish(o.rev, nil)
	}
	return false, nil
}

func refusedAny(ops []*op) bool {
	for _, o := range ops {
		if o.done && o.err != nil {
			return true
		}
	}
	return false
}

// transient reports whether err may go away by itself: the API server unreachable,
// overloaded or timing out.
func transient(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == 429 || code >= 500 || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	return true // connection refused, reset, EOF: no answer from the API server
}

// backoff waits between attempts: briefly after a lost compare-and-swap, longer after
// errors, always with jitter.
type backoff struct{ conflicts, failures int }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) wait(ctx context.Context, conflict bool) {
	var d time.Duration
	if conflict {
		// Losers step back long enough for the winner's next round trip, so that
		// contenders take turns instead of all re-reading at once.
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

// Name is the ConfigMap the driver stores into.
func (d *Driver) Name() types.NamespacedName { return d.name }
