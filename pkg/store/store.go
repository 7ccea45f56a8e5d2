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

// Package store is strategy-operator's persistence for programs of your own: a typed store
// of JSON values by key over a driver, with revisions (conditional writes) and writer
// fencing, and the drivers a program can open without the operator (the file store in
// backtest-kit's own layout, memory). The crash state of a strategy, by backtest-kit's
// kinds, is what runner exec serves over HTTP (package stateapi).
package store

import (
	"github.com/strategyops/strategy-operator/internal/persist"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/internal/persist/memstore"
)

// Store is a typed store over a driver: Read, ReadRevision, Write (with IfRevision or
// IfAbsent), Remove, SortedKeys, Values, Filter, Take.
type Store[T any] = persist.Store[T]

// Driver is the contract a backend implements; Revision names one version of one key.
type (
	Driver      = driver.Driver
	Revision    = persist.Revision
	WriteOption = persist.WriteOption
)

// NewStore returns the store called name over d; call Init before anything else.
func NewStore[T any](name string, d Driver) *Store[T] { return persist.NewStore[T](name, d) }

// IfRevision applies a write only if the key is still at rev; IfAbsent only if it holds
// nothing.
var (
	IfRevision = persist.IfRevision
	IfAbsent   = persist.IfAbsent
)

// The errors a store returns, tested with errors.Is.
var (
	ErrNotFound       = persist.ErrNotFound
	ErrConflict       = persist.ErrConflict
	ErrInvalidKey     = persist.ErrInvalidKey
	ErrInvalidValue   = persist.ErrInvalidValue
	ErrTooLarge       = persist.ErrTooLarge
	ErrFenced         = persist.ErrFenced
	ErrLocked         = persist.ErrLocked
	ErrUnknownOutcome = persist.ErrUnknownOutcome
	ErrClosed         = persist.ErrClosed
)

// File returns a driver on the folder dir: one JSON file per key, written as backtest-kit
// writes them (temporary file, sync, rename), the folder locked by one process at a time.
func File(dir string) Driver { return filestore.New(dir) }

// Memory returns a driver that keeps the values in memory.
func Memory() Driver { return memstore.New() }
