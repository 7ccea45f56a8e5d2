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

package runnercmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
)

// withReplicas opens the database backend of s and its replicas for a tool run by hand
// (rebuild-replicas, restore-from-replica), and calls work with them, unfenced.
func withReplicas(ctx context.Context, s runner.Settings, log *slog.Logger,
	work func(db *domain.Database, l domain.Layers, contexts []domain.Context) error) error {
	db, err := domain.OpenDatabase(ctx, s.Backend, s.StoreURL)
	if err != nil {
		return err
	}
	defer db.Close()
	layers, closeReplicas, err := openLayers(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeReplicas()
	return work(db, layers(domain.NoFencing), domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols, s.RiskProfiles...))
}

// rebuildReplicas copies every store of the strategy from its database backend to each of
// its replicas (runner rebuild-replicas).
func rebuildReplicas(ctx context.Context, s runner.Settings, log *slog.Logger) error {
	if domain.HomeOf(s.Backend) != domain.InDatabase || len(s.Replicas) == 0 {
		return errors.New("rebuild-replicas needs a database backend and --replicas")
	}
	return withReplicas(ctx, s, log, func(db *domain.Database, l domain.Layers, contexts []domain.Context) error {
		return rebuild(ctx, db, l, contexts, log)
	})
}

func rebuild(ctx context.Context, db *domain.Database, l domain.Layers, contexts []domain.Context,
	log *slog.Logger) error {
	names := make([]string, len(l.Replicas))
	for i, r := range l.Replicas {
		names[i] = r.Name
	}
	if err := domain.CheckReplicas(ctx, db.Backend(domain.NoFencing), l.Replicas, contexts, log); err != nil {
		return err // a replica ahead of the backend is not rebuilt from it
	}
	if err := domain.RebuildReplicas(ctx, l.Wrap(db.Backend(domain.NoFencing)), names, contexts); err != nil {
		return err
	}
	log.Info("Rebuilt the replicas from the backend", "replicas", names, "stores", len(contexts))
	return nil
}

// restoreFromReplica makes the database backend hold what the replica named holds, for
// every store of the strategy (runner restore-from-replica NAME): the way back after the
// backend lost state that a replica kept (domain.ErrPrimaryBehind).
func restoreFromReplica(ctx context.Context, s runner.Settings, name string, log *slog.Logger) error {
	i := slices.IndexFunc(s.Replicas, func(r runner.Replica) bool { return r.Name == name })
	if domain.HomeOf(s.Backend) != domain.InDatabase || i < 0 {
		return fmt.Errorf("restore-from-replica needs a database backend and a replica named %q among --replicas", name)
	}
	switch holder, err := leaseHolder(ctx, s); {
	case err != nil:
		return fmt.Errorf("cannot tell whether a runner holds the Lease %s, so restoring nothing: %w", s.Lease, err)
	case holder != "":
		return fmt.Errorf("runner %s holds the Lease %s: suspend the Strategy (spec.suspend) and restore once it "+
			"has stopped", holder, s.Lease)
	}
	return withReplicas(ctx, s, log, func(db *domain.Database, l domain.Layers, contexts []domain.Context) error {
		n, err := domain.RestoreFromReplica(ctx, db.Backend, l.Replicas[i], contexts)
		if err != nil {
			return err
		}
		log.Info("Restored the backend from the replica", "replica", name, "stores", len(contexts), "entries", n)
		return nil
	})
}
