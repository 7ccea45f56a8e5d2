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
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Retention bounds the archived ledger of one symbol.
type Retention struct {
	// Entries is the most finished signals kept (the newest); 0 keeps all.
	Entries int
	// MaxAge, when above 0, drops the signals that ended longer ago than that.
	MaxAge time.Duration
}

// last is when the entry's last event happened.
func (h *HistoryEntry) last() time.Time {
	if len(h.Events) == 0 {
		return time.Time{}
	}
	return time.UnixMilli(slices.MaxFunc(h.Events, func(a, b HistoryEvent) int { return cmp.Compare(a.At, b.At) }).At)
}

// expired lists the entries r drops at now: past the newest r.Entries by first event, or
// ended before now minus r.MaxAge.
func (r Retention) expired(entries []*HistoryEntry, now time.Time) map[string]bool {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, byFirstEvent)
	out := map[string]bool{}
	for i, e := range sorted {
		tooMany := r.Entries > 0 && i < len(sorted)-r.Entries
		tooOld := r.MaxAge > 0 && len(e.Events) > 0 && e.last().Before(now.Add(-r.MaxAge))
		if tooMany || tooOld {
			out[e.ID] = true
		}
	}
	return out
}

// PruneArchive deletes from k's archive store on b (a database, or File's folders) the
// entries r drops at now, and returns how many it deleted.
func PruneArchive(ctx context.Context, b Backend, k Key, r Retention, now time.Time) (int, error) {
	archive, err := openStore(ctx, b, HistoryArchive, k)
	if err != nil {
		return 0, err
	}
	defer func() { _ = archive.Close() }()
	snap, err := driver.ReadAll(ctx, archive)
	if err != nil {
		return 0, err
	}
	entries := make([]*HistoryEntry, 0, len(snap))
	for key, e := range snap {
		var h HistoryEntry
		if err := json.Unmarshal(e.Value, &h); err != nil {
			return 0, fmt.Errorf("history archive of %s, key %s: %w", k, key, err)
		}
		h.ID = key
		entries = append(entries, &h)
	}
	n := 0
	for id := range r.expired(entries, now) {
		switch err := archive.Delete(ctx, id, driver.Precondition{}); {
		case errors.Is(err, driver.ErrNotFound): // gone already
		case err != nil:
			return n, fmt.Errorf("pruning the history archive of %s: %w", k, err)
		default:
			n++
		}
	}
	return n, nil
}

// PruneArchives deletes, oldest first, the archive ConfigMaps of k every entry of which r
// drops at now (an archive is sealed: it goes whole or stays), and returns how many
// entries went with them.
func PruneArchives(ctx context.Context, c client.Client, namespace string, k Key, r Retention,
	now time.Time) (int, error) {
	names, err := archiveNames(ctx, c, namespace, k)
	if err != nil {
		return 0, err
	}
	type sealed struct {
		cm      *corev1.ConfigMap
		entries []*HistoryEntry
	}
	archives := make([]sealed, 0, len(names))
	var all []*HistoryEntry
	for _, name := range names {
		cm, entries, err := archive(ctx, c, namespace, name)
		if err != nil {
			return 0, err
		}
		archives = append(archives, sealed{cm, entries})
		all = append(all, entries...)
	}
	drop := r.expired(all, now)
	n := 0
	for _, a := range archives {
		if slices.ContainsFunc(a.entries, func(e *HistoryEntry) bool { return !drop[e.ID] }) {
			break // this one keeps an entry, and so do the newer ones
		}
		if err := client.IgnoreNotFound(c.Delete(ctx, a.cm, client.Preconditions{UID: &a.cm.UID})); err != nil {
			return n, fmt.Errorf("pruning history archive %s: %w", a.cm.Name, err)
		}
		n += len(a.entries)
	}
	return n, nil
}

// TendLedger is the runner's own archiving, on a backend only the runner reaches (File):
// once the live ledger of k holds more than keep entries, the oldest finished ones move to
// k's archive store on b, which r then bounds. It returns how many entries moved and how
// many archived ones went.
func (p *Persistence) TendLedger(ctx context.Context, b Backend, k Key, keep int, r Retention,
	now time.Time) (moved, pruned int, err error) {
	s, err := p.History.Store(ctx, k)
	if err != nil {
		return 0, 0, err
	}
	if moved, err = archiveLedger(ctx, s.Driver(), b, k, keep); err != nil || moved == 0 {
		return moved, 0, err
	}
	pruned, err = PruneArchive(ctx, b, k, r, now)
	return moved, pruned, err
}
