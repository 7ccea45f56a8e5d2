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
	// may have missed the changes a killed runner had queued for it. The store's fencing
	// token as it is opened is the rebuild's floor (replicastore.Options.Floor): a replica
	// with a newer one is never emptied.
	RebuildOnOpen bool
	// Log receives the replicas' failures and recoveries (slog.Default() when nil).
	Log *slog.Logger
}

// Replica is a backend the stores are copied to.
type Replica struct {
	// Name names the replica in the metrics and logs.
	Name    string
	Backend Backend
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
		if tr, ok := drv.(driver.TokenRecorder); ok && l.RebuildOnOpen && len(l.Replicas) > 0 {
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
			rd, err := r.Backend(ctx, d, k)
			if err != nil {
				_ = drv.Close()
				return nil, fmt.Errorf("replica %s: %w", r.Name, err)
			}
			replicas = append(replicas, replicastore.Replica{Name: r.Name, Driver: rd, QueueSize: r.QueueSize})
		}
		rd, err := replicastore.New(drv, replicas, replicastore.Options{Logger: l.Log, RebuildAtStart: l.RebuildOnOpen,
			Floor: floor})
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

// CheckReplicas compares the newest fencing token each replica recorded in the stores of
// contexts with the backend's, before a writer starts: a replica ahead of the backend fails
// with ErrPrimaryBehind, naming it; trading on the backend would build on lost state, and
// rebuilding the replica would destroy the only copy. A replica that cannot be read is
// logged and skipped (it does not stop trading); its rebuild, with the backend's tokens as
// its floor, still leaves it whole if it is ahead.
func CheckReplicas(ctx context.Context, primary Backend, replicas []Replica, contexts []Context, log *slog.Logger) error {
	if len(replicas) == 0 {
		return nil
	}
	ours, err := HighestToken(ctx, primary, contexts)
	if err != nil {
		return err
	}
	for _, r := range replicas {
		theirs, err := HighestToken(ctx, r.Backend, contexts)
		if err != nil {
			log.Warn("Could not compare a replica with the backend; its rebuild will check it", "replica", r.Name,
				"error", err.Error())
			continue
		}
		if theirs > ours {
			return fmt.Errorf("%w: replica %s records fencing token %d, the backend only %d: the backend lost state "+
				"the replica holds; restore it with runner restore-from-replica %s (with the runner's settings, "+
				"while no runner of the strategy runs)", ErrPrimaryBehind, r.Name, theirs, ours, r.Name)
		}
	}
	return nil
}

// RestoreFromReplica makes the stores of contexts in the backend hold what they hold in
// replica r: each is emptied, then written with the replica's entries, under a fencing
// token one above the newest any store of the replica or the backend recorded, so that
// the next writer starts above it and the replica is no longer ahead. Run it while no
// runner writes.
func RestoreFromReplica(ctx context.Context, primary func(driver.Fencing) Backend, r Replica,
	contexts []Context) (entries int, err error) {
	theirs, err := HighestToken(ctx, r.Backend, contexts)
	if err != nil {
		return 0, fmt.Errorf("replica %s: %w", r.Name, err)
	}
	ours, err := HighestToken(ctx, primary(driver.Fencing{}), contexts)
	if err != nil {
		return 0, err
	}
	to := primary(driver.Fencing{Writer: "restore-from-replica/" + r.Name, Token: max(theirs, ours) + 1})
	for _, c := range contexts {
		n, err := restoreStore(ctx, r.Backend, to, c)
		if err != nil {
			return entries, fmt.Errorf("%s %s: %w", c.Domain, c.Key, err)
		}
		entries += n
	}
	return entries, nil
}

// restoreStore copies one store from one backend to another, replacing what it held.
func restoreStore(ctx context.Context, from, to Backend, c Context) (int, error) {
	src, err := from(ctx, c.Domain, c.Key)
	if err != nil {
		return 0, err
	}
	defer func() { _ = src.Close() }()
	dst, err := to(ctx, c.Domain, c.Key)
	if err != nil {
		return 0, err
	}
	defer func() { _ = dst.Close() }()
	for _, d := range []driver.Driver{src, dst} {
		if _, err := d.Init(ctx, false); err != nil {
			return 0, err
		}
	}
	keys, err := src.Keys(ctx)
	if err != nil {
		return 0, err
	}
	state := make(map[string][]byte, len(keys))
	for _, k := range keys {
		e, err := src.Get(ctx, k)
		switch {
		case errors.Is(err, driver.ErrNotFound):
		case err != nil:
			return 0, err
		default:
			state[k] = e.Value
		}
	}
	if err := dst.DeleteAll(ctx); err != nil {
		return 0, err
	}
	for k, v := range state {
		if _, err := dst.Put(ctx, k, v, driver.Precondition{}); err != nil {
			return 0, err
		}
	}
	return len(state), nil
}
