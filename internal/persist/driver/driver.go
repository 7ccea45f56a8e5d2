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
package driver

import (
	"context"
	"errors"
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
	// initial is true for the first instance of this context in the process.
	Init(ctx context.Context, initial bool) (InitReport, error)

	// Get returns the value at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Entry, error)

	// Put stores value at key atomically and returns the new revision. A failed
	// precondition returns ErrConflict; a value over the backend's limit returns
	// ErrTooLarge. In both cases nothing is changed.
	Put(ctx context.Context, key string, value []byte, pre Precondition) (Revision, error)

	// Delete removes key. ErrNotFound if absent; ErrConflict on a failed IfRevision.
	Delete(ctx context.Context, key string, pre Precondition) error

	// DeleteAll removes every key of the store.
	DeleteAll(ctx context.Context) error

	// Keys lists the stored keys in any order.
	Keys(ctx context.Context) ([]string, error)

	// Close releases what the driver holds (locks, connections).
	Close() error
}

// Capabilities lets a backend declare what it cannot do, so that the conformance suite
// skips exactly those cases, by name.
type Capabilities struct {
	// NoCorruption: the backend cannot hold a corrupt entry (it never writes partial data
	// and nothing else writes to it), so the corrupt-at-init cases do not apply.
	NoCorruption bool
	// MaxValueSize is the largest value the backend accepts, 0 for no limit below 8 MiB.
	MaxValueSize int
	// Persistent: a new instance on the same location sees what an earlier one wrote.
	Persistent bool
}
