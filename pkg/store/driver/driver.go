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

// Package driver is the contract a persistence backend implements. Backends deal in bytes
// and opaque revisions; package persist owns keys, JSON, ordering and error wrapping on top.
//
// Every backend lives in its own package, implements Driver, and runs the conformance suite
// in package drivertest from its own tests.
//
// What every method of a Driver promises, beyond its own comment:
//   - Errors. A method returns nil, one of the sentinel errors below (wrapped or not, tested
//     with errors.Is), the context's error, or another error that says what failed. Only the
//     sentinels a method's comment names carry a meaning callers act on; a backend-specific
//     cause (an API status, a SQL error) is wrapped, never returned bare as the only clue.
//   - Cancellation. A method that waits (on a server, a retry, another writer) stops when
//     its context ends and returns an error that wraps ctx.Err(); a read then has had no
//     effect. A write whose context ended may have been applied (a request already sent
//     cannot be recalled): the driver wraps ErrUnknownOutcome too when it sent one whose
//     answer it lost, and returns the context's error alone only when nothing was sent. A
//     method that waits only on local work (the file store's disk and its shared flushes,
//     the memory store) may finish without looking at its context.
//   - Close. Close is called once, and no method is called after it: package persist's
//     Store guarantees both, answering every later call with ErrClosed. A driver need not
//     guard against use after Close itself.
package driver

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Drivers return them (wrapped or not) and callers test with errors.Is.
var (
	// ErrNotFound: the key holds no value.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a conditional write or delete found the key at another revision (or
	// present, for "only if absent"). Nothing was changed.
	ErrConflict = errors.New("conflict: stale revision")
	// ErrInvalidKey: the key cannot be stored by this store.
	ErrInvalidKey = errors.New("invalid key")
	// ErrTooLarge: the value is larger than the backend can hold. Nothing was changed.
	ErrTooLarge = errors.New("value too large")
	// ErrFenced: a writer with a newer fencing token has taken over. Nothing was changed.
	ErrFenced = errors.New("fenced: a newer writer holds this store")
	// ErrLocked: another process holds the store open for writing.
	ErrLocked = errors.New("store is locked by another writer")
	// ErrUnknownOutcome: the store's answer to a write was lost and it can no longer tell
	// whether the write was applied; read the key to find out.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrNotOwned: the store's location (an object, a folder) holds another context's data,
	// which it neither reads nor overwrites.
	ErrNotOwned = errors.New("location belongs to another store")
	// ErrInvalidValue: the backend refused the value itself (its schema, a field's type or
	// format; not its size, which is ErrTooLarge). Nothing was changed.
	ErrInvalidValue = errors.New("invalid value")
	// ErrClosed: the driver has been closed.
	ErrClosed = errors.New("store closed")
	// ErrGone: the object that holds the store does not exist now (it was deleted; whoever
	// makes it makes it again). Nothing was read or changed. Only an Incarnator returns it.
	ErrGone = errors.New("the store's object is gone")
)

// Revision identifies one stored version of one key. It is opaque to callers; the only
// operation on it is equality. The empty revision means "no version".
type Revision string

// Precondition restricts a Put or Delete. The zero value applies unconditionally.
type Precondition struct {
	// IfRevision, when set, applies the operation only if the key is still at this revision.
	IfRevision Revision
	// IfAbsent applies a Put only if the key holds no value.
	IfAbsent bool
}

// IsZero reports whether p places no condition.
func (p Precondition) IsZero() bool { return p.IfRevision == "" && !p.IfAbsent }

// Entry is one stored value with its revision.
type Entry struct {
	Value    []byte
	Revision Revision
}

// InitReport says what Init found.
type InitReport struct {
	// Quarantined is how many corrupt entries Init moved aside.
	Quarantined int
}

// Driver stores byte values under string keys for one store context. Keys have been
// validated by the caller: non-empty, at most 255 bytes of UTF-8. Implementations are safe
// for concurrent use.
type Driver interface {
	// Init prepares the store. It is called once per instance before any other method;
	// initial is true for the first instance of this context in the process. It may
	// return ErrLocked (another process writes the location), ErrNotOwned, and ErrFenced.
	Init(ctx context.Context, initial bool) (InitReport, error)

	// Get returns the value at key, or ErrNotFound. It may return ErrNotOwned.
	Get(ctx context.Context, key string) (Entry, error)

	// Put stores value at key atomically and returns the new revision. A failed
	// precondition returns ErrConflict; a value over the backend's limit ErrTooLarge; a
	// value the backend refuses ErrInvalidValue; a newer writer ErrFenced; another
	// context's location ErrNotOwned. In all these cases nothing is changed. A lost answer
	// is ErrUnknownOutcome.
	Put(ctx context.Context, key string, value []byte, pre Precondition) (Revision, error)

	// Delete removes key. ErrNotFound if absent; ErrConflict on a failed IfRevision (nothing
	// is changed); ErrFenced, ErrNotOwned and ErrUnknownOutcome as for Put.
	Delete(ctx context.Context, key string, pre Precondition) error

	// DeleteAll removes every key of the store; ErrFenced, ErrNotOwned and
	// ErrUnknownOutcome as for Put.
	DeleteAll(ctx context.Context) error

	// Keys lists the stored keys in any order. It may return ErrNotOwned.
	Keys(ctx context.Context) ([]string, error)

	// Close releases what the driver holds (locks, connections).
	Close() error
}

// Snapshotter is a Driver that can also read every key at once, in one round trip; package
// persist then reads a whole store with it.
type Snapshotter interface {
	// Snapshot returns every stored key with its entry. It may return ErrNotOwned.
	Snapshot(ctx context.Context) (map[string]Entry, error)
}

// ReadAll reads every key of d with its entry: at once when d is a Snapshotter, else key by
// key (a key removed meanwhile is left out).
func ReadAll(ctx context.Context, d Driver) (map[string]Entry, error) {
	if s, ok := d.(Snapshotter); ok {
		return s.Snapshot(ctx)
	}
	keys, err := d.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Entry, len(keys))
	for _, k := range keys {
		e, err := d.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound): // removed meanwhile
		case err != nil:
			return nil, err
		default:
			out[k] = e
		}
	}
	return out, nil
}

// TokenRecorder is a Driver that keeps the fencing token of the newest fenced writer on its
// store and can tell it, so that a new writer can start above it.
type TokenRecorder interface {
	// RecordedToken returns the newest fencing token written to the store, 0 when no fenced
	// writer has written.
	RecordedToken(ctx context.Context) (int64, error)
}

// Fencer is a Driver, opened with a fencing token, that can record its writer as the
// store's newest without changing a value: from then on an older writer's writes are
// refused there, even before the new writer's first write. A new holder fences every store
// of its state before it restores it, so that a deposed holder that wakes after the
// takeover lands nothing anywhere.
type Fencer interface {
	// Fence records the writer, or returns ErrFenced when a newer writer holds the store.
	// It is idempotent; an unfenced driver records nothing. A store whose location does
	// not exist (yet) holds nothing to protect, and is not an error.
	Fence(ctx context.Context) error
}

// Fencing names a writer and its fencing token (a number that grows with each new holder
// of the writer's lease). A token of 0 or less writes unfenced: such a writer (the
// operator) records nothing and is never refused.
type Fencing struct {
	Writer string
	Token  int64
}

// Against decides a write by f on a store whose newest fenced writer is writer, with
// token (0 when none has written). It is refused (ErrFenced) when another writer holds the
// store: one with a newer token, or one with the same token — a token names one holder of
// the lease, so two writers with one token means one of them read the lease after losing
// it. record says whether the write must record f as the store's newest writer.
func (f Fencing) Against(writer string, token int64) (record bool, err error) {
	switch {
	case f.Token <= 0, token == f.Token && writer == f.Writer:
		return false, nil
	case token >= f.Token:
		return false, fmt.Errorf("%w: writer %q has token %d, the store is at %d (writer %q)",
			ErrFenced, f.Writer, f.Token, token, writer)
	}
	return true, nil
}

// Incarnator is a Driver whose store lives in one object that can be deleted and made
// again (a Kubernetes object): each making is an incarnation, and a revision read from one
// incarnation is never one of another. A store that lives in no such object has a single
// incarnation, "".
type Incarnator interface {
	// Incarnation names the object as it exists now (ErrGone when it does not).
	Incarnation(ctx context.Context) (string, error)
	// RevisionIncarnation names the incarnation revision r was read from.
	RevisionIncarnation(r Revision) string
}

// RevisionProber is a Driver that can tell a key's current revision without its value, in
// one cheap round trip; a cache then checks that what it holds is still current without
// transferring the value again (package cachestore).
type RevisionProber interface {
	// Revision returns the revision of the value at key, the one Get would return with it,
	// or ErrNotFound when the key holds no value. It may return ErrNotOwned.
	Revision(ctx context.Context, key string) (Revision, error)
}
