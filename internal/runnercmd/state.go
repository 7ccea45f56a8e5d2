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
	"fmt"
	"log/slog"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/handshake"
	"github.com/strategyops/strategy-operator/internal/names"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
	"github.com/strategyops/strategy-operator/internal/scheme"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// apiClient is the runner's client of the API server (in the pod, its ServiceAccount's;
// elsewhere, KUBECONFIG's). A request the API server never answers must not stall
// trading: it fails after storeRequestTimeout, and the store retries it (resolving
// whether it landed).
func apiClient() (client.Client, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = storeRequestTimeout
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}

// withState runs work with the state of s, on a Kubernetes or database backend, while this
// process holds the strategy's Lease: b writes with the fencing token of this holding,
// under the cache and replicas of s (each replica rebuilt at the start), and c is the
// cluster's client. work's context ends when the Lease is lost, not when ctx ends: work
// watches ctx itself, and the Lease is released once work has returned. After an outage
// cost the Lease, standby (when not nil) runs until this process holds it again and work
// runs again (see leading). m hears about the Lease.
func withState(ctx context.Context, s runner.Settings, log *slog.Logger, m *runnermetrics.Metrics,
	standby func(ctx context.Context, c client.Client, cause error),
	work func(ctx context.Context, b domain.Backend, c client.Client) error) error {
	c, err := apiClient()
	if err != nil {
		return err
	}
	backend := func(f kubestore.Fencing) domain.Backend {
		b, _ := domain.KubeBackend(s.Backend, c, domain.KubeOptions{Namespace: s.Namespace, Fencing: f})
		return b // s.Backend is ConfigMap or StrategyState here (settings checked it)
	}
	owned := func(context.Context, string) error { return nil }
	if domain.HomeOf(s.Backend) == domain.InDatabase {
		// The state lives in a database; the Lease (and the events) stay in the cluster.
		db, err := domain.OpenDatabase(ctx, s.Backend, s.StoreURL)
		if err != nil {
			return err
		}
		defer db.Close()
		backend = db.Backend
		if s.StrategyObject != "" { // the operator's runner: its Strategy must own the rows
			// uid is the Strategy UID the operator wrote on the Lease it made for its
			// Strategy: a Strategy of the same name in another cluster is another owner.
			owned = func(ctx context.Context, uid string) error {
				if uid == "" {
					log.Warn("The Lease names no Strategy UID: the owner record is checked by namespace and name "+
						"only, so a Strategy of this name in another cluster would pass", "lease", s.Lease,
						"annotation", names.LabelOwner)
				}
				return db.CheckOwner(ctx, s.StrategyName, s.ExchangeName, domain.Owner{Namespace: s.Namespace,
					Name: s.StrategyObject, UID: uid})
			}
		}
	}
	layers, closeReplicas, err := openLayers(ctx, s, log)
	if err != nil {
		return err
	}
	defer closeReplicas()
	contexts := domain.StrategyContexts(s.StrategyName, s.ExchangeName, s.Symbols, s.RiskProfiles...)
	recorded := func(ctx context.Context) (int64, error) {
		return domain.HighestToken(ctx, backend(kubestore.Fencing{}), contexts)
	}
	var waiting func(context.Context, error)
	if standby != nil {
		waiting = func(ctx context.Context, cause error) { standby(ctx, c, cause) }
	}
	return leading(ctx, s, log, m, recorded, waiting, func(ctx context.Context, h holding) error {
		f := kubestore.Fencing{Writer: h.identity, Token: h.token}
		if err := owned(ctx, h.owner); err != nil {
			return err
		}
		l := layers(f)
		// Before anything is written: a replica ahead of the backend holds what the backend
		// lost, and trading here would build on the loss. (Checked before the fencing
		// below, which records this holder's token on every store of the backend.)
		if err := domain.CheckReplicas(ctx, backend(kubestore.Fencing{}), l.Replicas, contexts, log); err != nil {
			return err
		}
		// Before the state is read: a deposed holder that wakes now is refused everywhere.
		if err := domain.RaiseFloor(ctx, backend(f), contexts); err != nil {
			return fmt.Errorf("raising the fencing floor: %w", err)
		}
		// Fenced: tell the operator what this holder trades and drains (package handshake).
		go recordHandshake(ctx, c, client.ObjectKey{Namespace: s.Namespace, Name: s.Lease}, handshake.Record{
			Holder: h.identity, Pod: s.PodUID, Symbols: s.Traded(), Draining: s.Draining}, log)
		l.RebuildOnOpen = true // a killed runner's queued copies are lost: start the replicas afresh
		return work(ctx, l.Wrap(backend(f)), c)
	})
}

// openLayers opens the replicas' databases and returns the layers of s (its cache and its
// replicas) for a writer fenced by f, and what closes the databases. A replica's changes
// are written under the writer's fencing, as the backend's are: a deposed runner's last
// changes are refused, and the replica records the token of each change the backend
// recorded first, so that a replica holding what the backend lost is seen
// (domain.CheckReplicas) instead of being rebuilt from it. Its rebuilds write unfenced:
// they record nothing the backend has not.
func openLayers(ctx context.Context, s runner.Settings, log *slog.Logger) (func(driver.Fencing) domain.Layers, func(),
	error) {
	var dbs []*domain.Database
	closeAll := func() {
		for _, db := range dbs {
			db.Close()
		}
	}
	for _, r := range s.Replicas {
		db, err := domain.OpenDatabase(ctx, r.Backend, r.URL)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("replica %s: %w", r.Name, err)
		}
		dbs = append(dbs, db)
	}
	return func(f driver.Fencing) domain.Layers {
		l := domain.Layers{Cache: s.Cache, Log: log, Token: f.Token}
		for i, r := range s.Replicas {
			l.Replicas = append(l.Replicas, domain.Replica{Name: r.Name, Backend: dbs[i].Backend(f),
				Copier: dbs[i].Backend(domain.NoFencing), QueueSize: r.QueueSize})
		}
		return l
	}, closeAll, nil
}

// recordHandshake records r on the Lease, trying again until it lands or ctx ends (the
// Lease is lost): until then the operator keeps the symbols this runner drains.
func recordHandshake(ctx context.Context, c client.Client, lease client.ObjectKey, r handshake.Record,
	log *slog.Logger) {
	for {
		err := handshake.Write(ctx, c, lease, r)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("Could not record on the Lease what this runner trades; trying again", "error", err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
