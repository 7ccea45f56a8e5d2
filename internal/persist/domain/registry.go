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

package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Home is where a backend keeps a strategy's state. It decides everything the operator and
// the runner do differently from one backend to another: who can reach the state, how a
// second writer is kept out, and what the operator makes, reads, moves and deletes. Code
// outside this package's backend_*.go files asks a backend's Home, never its name.
type Home int

// The homes.
const (
	// OnVolume: files on a volume the operator mounts into the strategy's pod. Only the
	// runner reaches them, and a lock on each folder keeps a second writer out (no Lease).
	OnVolume Home = iota + 1
	// InObjects: Kubernetes objects in the Strategy's namespace. The operator makes them
	// (so the runner needs no create permission), reads, moves and deletes them; the
	// runner writes them fenced under the Strategy's Lease.
	InObjects
	// InDatabase: a database at a connection URL that a labelled Secret holds. The
	// operator checks the connection and its durability, claims the rows with an owner
	// record, reads, moves and deletes them; the runner writes them fenced under the Lease,
	// with the cache and replicas a Strategy may put around them.
	InDatabase
)

// Kind is one persistence backend, as it registers itself (Register): its name, its home,
// and how its stores open. Only the opener of its home is set.
type Kind struct {
	Name v1.PersistenceBackend
	Home Home
	// OpenFiles opens the stores in the folder dir (OnVolume).
	OpenFiles func(dir string) Backend
	// OpenObjects opens the stores in the Kubernetes objects that c reads and writes
	// (InObjects).
	OpenObjects func(c client.Client, o KubeOptions) Backend
	// Objects lists the objects that hold the given contexts, each once (InObjects).
	Objects func(contexts []Context) []StoreObject
	// Connect opens the database at url (InDatabase): nothing needs to be sent before the
	// first call. An error must not repeat the URL, which holds credentials.
	Connect func(ctx context.Context, url string) (Connection, error)
	// Tables: the database keeps a store in the table its layout names (InDatabase);
	// else the layout's Store name alone places it, and a table is never moved.
	Tables bool
}

// Connection is an open database of a backend whose home is InDatabase.
type Connection interface {
	// Store is the driver of the store laid out by l (see DatabaseLayout), written under
	// fencing f (none when its token is 0).
	Store(l dblayout.Layout, f driver.Fencing) driver.Driver
	// Durability reads the server's persistence settings and says which acknowledged
	// writes a crash could lose; empty when none.
	Durability(ctx context.Context) (string, error)
	// Close closes the connections.
	Close()
}

// ErrUnknownBackend: a name no backend registered.
var ErrUnknownBackend = errors.New("unknown backend")

var registry = struct {
	sync.RWMutex
	kinds map[v1.PersistenceBackend]Kind
}{kinds: map[v1.PersistenceBackend]Kind{}}

// Register adds a backend. It panics on a name registered twice, a missing home, or an
// opener missing for the home: each is a programming error, found at start-up.
func Register(k Kind) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.kinds[k.Name]; dup || k.Name == "" {
		panic(fmt.Sprintf("domain.Register: backend %q registered twice, or unnamed", k.Name))
	}
	ok := false
	switch k.Home {
	case OnVolume:
		ok = k.OpenFiles != nil
	case InObjects:
		ok = k.OpenObjects != nil && k.Objects != nil
	case InDatabase:
		ok = k.Connect != nil
	}
	if !ok {
		panic(fmt.Sprintf("domain.Register: backend %q lacks a home or the opener its home needs", k.Name))
	}
	registry.kinds[k.Name] = k
}

// Lookup returns the backend named name; the error names the registered ones.
func Lookup(name v1.PersistenceBackend) (Kind, error) {
	registry.RLock()
	k, ok := registry.kinds[name]
	registry.RUnlock()
	if !ok {
		return Kind{}, fmt.Errorf("%w %q: want %s", ErrUnknownBackend, name, BackendNames())
	}
	return k, nil
}

// HomeOf is the home of the backend named name, 0 when none is registered by that name.
func HomeOf(name v1.PersistenceBackend) Home {
	k, _ := Lookup(name)
	return k.Home
}

// Backends lists the registered backends' names, sorted; with homes, only those at one of
// them.
func Backends(homes ...Home) []v1.PersistenceBackend {
	registry.RLock()
	defer registry.RUnlock()
	var out []v1.PersistenceBackend
	for name, k := range registry.kinds {
		if len(homes) == 0 || slices.Contains(homes, k.Home) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// BackendNames lists the registered backends (of homes, when given) for a message:
// "ConfigMap, File, … or StrategyState".
func BackendNames(homes ...Home) string {
	names := Backends(homes...)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = string(n)
	}
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// lookupAt is the backend named name, which must be at home h.
func lookupAt(name v1.PersistenceBackend, h Home) (Kind, error) {
	k, err := Lookup(name)
	if err == nil && k.Home != h {
		err = fmt.Errorf("%q is not one of %s", name, BackendNames(h))
	}
	return k, err
}
