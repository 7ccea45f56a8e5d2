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
	"log/slog"
	"maps"
	"slices"

	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/replicastore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Layers are the patterns a Strategy may put around its database backend: a cache in
// front of each store (package cachestore) and replicas behind it (package replicastore).
type Layers struct {
	// Cache, when not nil, bounds the cache in front of each store.
	Cache *cachestore.Options
	// Replicas are copied each store's changes, asynchronously.
	Replicas []Replica
	// RebuildOnOpen makes each replica of a store owe a rebuild from the store when it is
	// opened (replicastore.Options.RebuildAtStart): a runner's start, after which a replica
	// may have missed the changes a killed runner had queued for it.
	RebuildOnOpen bool
	// Token is the fencing token of the writer (0 unfenced). Each store's token as it is
	// opened is the floor of its replicas' rebuilds: none empties a replica that records a
	// newer token than the floor other than Token (replicastore.Options.Floor).
	Token int64
	// Log receives the replicas' failures and recoveries (slog.Default() when nil).
	Log *slog.Logger
}

// Replica is a backend the stores are copied to.
type Replica struct {
	// Name names the replica in the metrics and logs.
	Name string
	// Backend writes the changes, under the writer's fencing; Copier, when set, the
	// rebuilds, unfenced (replicastore.Replica.Copier).
	Backend, Copier Backend
	// QueueSize is the most changes waiting (replicastore.DefaultQueueSize when 0).
	QueueSize int
}

// Empty reports whether l adds nothing to a backend.
func (l Layers) Empty() bool { return l.Cache == nil && len(l.Replicas) == 0 }

// Wrap returns primary with l's layers around each store it opens: the primary's store,
// under the cache when there is one, copied to the replicas. Closing a store with replicas
// stops the replication and closes no driver (replicastore's rule); the drivers of the
// database backends, the only ones layers go with, hold nothing of their own (the
// connections belong to the Database) and are left to the collector. A store with a cache
// and no replica closes the cache, which closes the store under it.
func (l Layers) Wrap(primary Backend) Backend {
	if l.Empty() {
		return primary
	}
	return func(ctx context.Context, d Domain, k Key) (driver.Driver, error) {
		drv, err := primary(ctx, d, k)
		if err != nil {
			return nil, err
		}
		var floor *int64
		if tr, ok := drv.(driver.TokenRecorder); ok && len(l.Replicas) > 0 {
			token, err := tr.RecordedToken(ctx)
			if err != nil {
				_ = drv.Close()
				return nil, err
			}
			floor = &token
		}
		if l.Cache != nil {
			if drv, err = cachestore.New(drv, *l.Cache); err != nil {
				return nil, err
			}
		}
		if len(l.Replicas) == 0 {
			return drv, nil
		}
		replicas := make([]replicastore.Replica, 0, len(l.Replicas))
		for _, r := range l.Replicas {
			rep := replicastore.Replica{Name: r.Name, QueueSize: r.QueueSize}
			rep.Driver, err = r.Backend(ctx, d, k)
			if err == nil && r.Copier != nil {
				rep.Copier, err = r.Copier(ctx, d, k)
			}
			if err != nil {
				_ = drv.Close()
				return nil, fmt.Errorf("replica %s: %w", r.Name, err)
			}
			replicas = append(replicas, rep)
		}
		rd, err := replicastore.New(drv, replicas, replicastore.Options{Logger: l.Log, RebuildAtStart: l.RebuildOnOpen,
			Floor: floor, Token: l.Token})
		if err != nil {
			_ = drv.Close()
			return nil, err
		}
		return rd, nil
	}
}

// RebuildReplicas copies every context's store of b (a backend wrapped with replicas) to
// each of its replicas, waiting for each copy: the replica then holds what the store held
// when its copy began. It writes the stores as the operator does, unfenced, so run it
// while no runner writes.
func RebuildReplicas(ctx context.Context, b Backend, names []string, contexts []Context) error {
	var errs []error
	for _, c := range contexts {
		drv, err := b(ctx, c.Domain, c.Key)
		if err != nil {
			return err
		}
		rd, ok := drv.(replicastore.Driver)
		if !ok {
			_ = drv.Close()
			return errors.New("the backend has no replicas")
		}
		if _, err := drv.Init(ctx, false); err != nil {
			_ = drv.Close()
			return fmt.Errorf("%s %s: %w", c.Domain, c.Key, err)
		}
		for _, name := range names {
			if err := rd.Rebuild(ctx, name); err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", c.Domain, c.Key, err))
			}
		}
		if err := drv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", c.Domain, c.Key, err))
		}
	}
	return errors.Join(errs...)
}

// ErrPrimaryBehind: a replica records writes of a newer fencing token than the backend: the
// backend lost state (a server restarted without its data) that the replica still holds.
var ErrPrimaryBehind = replicastore.ErrPrimaryBehind

// CheckReplicas compares, store by store, the fencing token each replica recorded with
// the backend's, before a writer starts. A replica records a token only with a change the
// backend recorded it with first (its rebuilds copy unfenced), so a replica store ahead of
// the backend's holds what the backend lost (a server restarted without its data): that
// fails with ErrPrimaryBehind, naming the replica and the store, since trading on would
// build on the loss and rebuilding the replica would destroy the only copy. A replica
// that cannot be read is logged and skipped (it does not stop trading); its rebuilds,
// under each store's floor, still leave it whole if it is ahead.
func CheckReplicas(ctx context.Context, primary Backend, replicas []Replica, contexts []Context, log *slog.Logger) error {
	for _, r := range replicas {
		c, theirs, ours, err := ahead(ctx, r.Backend, primary, contexts)
		if err != nil {
			log.Warn("Could not compare a replica with the backend; its rebuild will check it", "replica", r.Name,
				"error", err.Error())
			continue
		}
		if theirs > ours {
			return fmt.Errorf("%w: replica %s records fencing token %d for the %s store of %s, the backend only %d: "+
				"the backend lost state the replica holds; restore it with runner restore-from-replica %s (with "+
				"the runner's settings, the Strategy suspended)", ErrPrimaryBehind, r.Name, theirs, c.Domain, c.Key,
				ours, r.Name)
		}
	}
	return nil
}

// ahead finds the first context whose store records a newer fencing token in replica than
// in primary, and both tokens; theirs <= ours when there is none.
func ahead(ctx context.Context, replica, primary Backend, contexts []Context) (c Context, theirs, ours int64,
	err error) {
	for _, c := range contexts {
		if theirs, ours, err = tokens(ctx, replica, primary, c); err != nil || theirs > ours {
			return c, theirs, ours, err
		}
	}
	return Context{}, 0, 0, nil
}

// tokens are the fencing tokens the store of c records in replica and in primary.
func tokens(ctx context.Context, replica, primary Backend, c Context) (theirs, ours int64, err error) {
	if theirs, err = HighestToken(ctx, replica, []Context{c}); err != nil {
		return 0, 0, fmt.Errorf("the replica: %w", err)
	}
	ours, err = HighestToken(ctx, primary, []Context{c})
	return theirs, ours, err
}

// ErrNotBehind: restoring from a replica that is not ahead of the backend would take the
// backend back to the replica's older state.
var ErrNotBehind = errors.New("the backend is not behind the replica")

// RestoreFromReplica makes each store of contexts that replica r is ahead of (it records
// a newer fencing token there than the backend) hold in the backend what it holds in r;
// the others, which r may lag behind, are left alone. None ahead fails with ErrNotBehind.
// It copies unfenced first, every entry and the removal of every key the replica lacks,
// and only then records a fencing token one above the newest either side holds in each
// store restored (a fenced write of a value just copied, or a fenced clearing of a store
// left empty): until that last pass a restored store stays behind and a runner still
// refuses to start, so an interrupted restore is run again; after it, the next writer
// starts above the token. Run it while no runner of the strategy runs.
func RestoreFromReplica(ctx context.Context, primary func(driver.Fencing) Backend, r Replica,
	contexts []Context) (entries int, err error) {
	var behind []Context
	var newest int64
	for _, c := range contexts {
		theirs, ours, err := tokens(ctx, r.Backend, primary(driver.Fencing{}), c)
		if err != nil {
			return 0, fmt.Errorf("comparing replica %s with the backend: %w", r.Name, err)
		}
		if theirs > ours {
			behind = append(behind, c)
		}
		newest = max(newest, theirs, ours)
	}
	if len(behind) == 0 {
		return 0, fmt.Errorf("%w: no store of replica %s records a newer fencing token than the backend's", ErrNotBehind,
			r.Name)
	}
	copied := make(map[Context]map[string][]byte, len(behind))
	for _, c := range behind {
		state, err := CopyStore(ctx, r.Backend, primary(driver.Fencing{}), c, true)
		if err != nil {
			return entries, fmt.Errorf("%s %s: %w", c.Domain, c.Key, err)
		}
		copied[c], entries = state, entries+len(state)
	}
	fenced := primary(driver.Fencing{Writer: "restore-from-replica/" + r.Name, Token: newest + 1})
	for _, c := range behind {
		if err := recordToken(ctx, fenced, c, copied[c]); err != nil {
			return entries, fmt.Errorf("%s %s: recording the fencing token: %w", c.Domain, c.Key, err)
		}
	}
	return entries, nil
}

// recordToken makes the store of c record its driver's fencing token without changing what
// it holds, state: one value written again, or, when it holds none, a clearing.
func recordToken(ctx context.Context, b Backend, c Context, state map[string][]byte) error {
	d, err := b(ctx, c.Domain, c.Key)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	if _, err := d.Init(ctx, false); err != nil {
		return err
	}
	if len(state) == 0 {
		return d.DeleteAll(ctx)
	}
	k := slices.Min(slices.Collect(maps.Keys(state)))
	_, err = d.Put(ctx, k, state[k], driver.Precondition{})
	return err
}

// CopyStore makes the store of c in to hold every entry the store of c in from holds, as
// stored, and, when exact, nothing else; it returns what it copied. Writes are
// unconditional: run it while nobody else writes the store in to.
func CopyStore(ctx context.Context, from, to Backend, c Context, exact bool) (map[string][]byte, error) {
	src, err := from(ctx, c.Domain, c.Key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }()
	dst, err := to(ctx, c.Domain, c.Key)
	if err != nil {
		return nil, err
	}
	defer func() { _ = dst.Close() }()
	for _, d := range []driver.Driver{src, dst} {
		if _, err := d.Init(ctx, false); err != nil {
			return nil, err
		}
	}
	keys, err := src.Keys(ctx)
	if err != nil {
		return nil, err
	}
	state := make(map[string][]byte, len(keys))
	for _, k := range keys {
		e, err := src.Get(ctx, k)
		switch {
		case errors.Is(err, driver.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		if _, err := dst.Put(ctx, k, e.Value, driver.Precondition{}); err != nil {
			return nil, err
		}
		state[k] = e.Value
	}
	if !exact {
		return state, nil
	}
	have, err := dst.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range have {
		if _, ok := state[k]; ok {
			continue
		}
		if err := dst.Delete(ctx, k, driver.Precondition{}); err != nil && !errors.Is(err, driver.ErrNotFound) {
			return nil, err
		}
	}
	return state, nil
}
