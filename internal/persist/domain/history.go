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
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/strategyops/strategy-operator/internal/names"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The history ledger on the Kubernetes backends is a live ConfigMap per symbol that the
// runner writes, and sealed archives that the operator moves finished entries into once
// the live one holds more than its limit: immutable ConfigMaps numbered in sequence
// (label LabelArchive), which the runner can neither write nor needs to read. Every part
// carries the live ledger's labels, so one label selector lists the whole history.
const (
	// LabelArchive numbers a ledger archive (zero-padded, so names and labels sort).
	LabelArchive = "trading.strategyops.dev/archive"
	// MaxArchiveBytes bounds the entries one archive holds, well under a ConfigMap's limit.
	MaxArchiveBytes = 768 << 10
)

// Finished reports whether the entry's signal is over (closed or cancelled): nothing will
// be recorded for it again, so it may be archived.
func (h *HistoryEntry) Finished() bool { return h.Has(EventClosed) || h.Has(EventCancelled) }

// The ledger's event kinds of a signal's own life; EventClosed and EventCancelled end it.
const (
	EventScheduled = "scheduled"
	EventOpened    = "opened"
	EventClosed    = "closed"
	EventCancelled = "cancelled"
)

// first is when the entry's first event happened.
func (h *HistoryEntry) first() int64 {
	if len(h.Events) == 0 {
		return 0
	}
	return h.Events[0].At
}

func byFirstEvent(a, b *HistoryEntry) int {
	return cmp.Or(cmp.Compare(a.first(), b.first()), cmp.Compare(a.ID, b.ID))
}

// ArchiveName is the n-th archive of the ledger of k.
func ArchiveName(k Key, n int) string {
	return names.DerivedName(ConfigMapName(History, k), fmt.Sprintf("archive-%06d", n))
}

func historyContext(k Key) string { return string(History) + "/" + k.String() }

// archiveNames lists the names of the ledger archives of k in sequence, from metadata.
func archiveNames(ctx context.Context, c client.Client, namespace string, k Key) ([]string, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels(ConfigMapLabels(History, k)),
		client.HasLabels{LabelArchive}); err != nil {
		return nil, fmt.Errorf("listing the history archives of %s: %w", k, err)
	}
	// Labels can coincide for contexts whose names clean up alike: keep this context's.
	items := slices.DeleteFunc(list.Items, func(m metav1.PartialObjectMetadata) bool {
		return m.Annotations[configmapstore.AnnotationContext] != historyContext(k)
	})
	slices.SortFunc(items, func(a, b metav1.PartialObjectMetadata) int {
		return cmp.Compare(a.Labels[LabelArchive], b.Labels[LabelArchive])
	})
	archives := make([]string, len(items))
	for i, m := range items {
		archives[i] = m.Name
	}
	return archives, nil
}

// archive reads one ledger archive.
func archive(ctx context.Context, c client.Client, namespace, name string) (*corev1.ConfigMap, []*HistoryEntry, error) {
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return nil, nil, fmt.Errorf("reading history archive %s: %w", name, err)
	}
	entries, err := decodeEntries(name, cm.Data)
	return &cm, entries, err
}

func decodeEntries(name string, data map[string]string) ([]*HistoryEntry, error) {
	out := make([]*HistoryEntry, 0, len(data))
	for key, raw := range data {
		var e HistoryEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, fmt.Errorf("history %s, key %s: %w", name, key, err)
		}
		out = append(out, &e)
	}
	return out, nil
}

// liveLedger is the live ledger's driver, unfenced: the operator removes only finished
// entries, which the runner no longer writes.
func liveLedger(c client.Client, namespace string, k Key) *kubestore.Driver {
	return configMapDriver(c, KubeOptions{Namespace: namespace}, History, k).(*kubestore.Driver)
}

// liveEntry is an entry of the live ledger with the revision it was read at.
type liveEntry struct {
	*HistoryEntry
	rev driver.Revision
}

func liveEntries(ctx context.Context, d driver.Driver) (map[string]liveEntry, error) {
	snap, err := driver.ReadAll(ctx, d)
	if err != nil {
		return nil, err
	}
	out := make(map[string]liveEntry, len(snap))
	for key, e := range snap {
		var h HistoryEntry
		if err := json.Unmarshal(e.Value, &h); err != nil {
			return nil, fmt.Errorf("history ledger, key %s: %w", key, err)
		}
		out[key] = liveEntry{&h, e.Revision}
	}
	return out, nil
}

// ArchiveHistory moves the oldest finished entries of k's live ledger into a new sealed
// archive once the live ledger holds more than keep entries, leaving keep/2 (and every
// unfinished one). It is safe to run again after a crash at any point, and beside
// another pass: the archive is written whole before anything leaves the live ledger; an
// entry leaves only at the revision that was archived (a runner that wrote it since keeps
// it live, to be archived again); and a pass that finds the newest archive's entries
// still live (its own interrupted pass, or another's) only finishes that one. It returns
// how many entries left the live ledger. The archives carry extra, beside the ledger's
// own labels (the operator records their owner so).
func ArchiveHistory(ctx context.Context, c client.Client, namespace string, k Key, keep int,
	extra map[string]string) (int, error) {
	live := liveLedger(c, namespace, k)
	entries, err := liveEntries(ctx, live)
	if err != nil {
		return 0, err
	}
	archives, err := archiveNames(ctx, c, namespace, k)
	if err != nil {
		return 0, err
	}
	seq := 1
	if n := len(archives); n > 0 {
		newest, sealed, err := archive(ctx, c, namespace, archives[n-1])
		if err != nil {
			return 0, err
		}
		if moved, err := removeArchived(ctx, live, entries, sealed); moved > 0 || err != nil {
			return moved, err
		}
		last, err := strconv.Atoi(newest.Labels[LabelArchive])
		if err != nil {
			return 0, fmt.Errorf("history archive %s: label %s: %w", newest.Name, LabelArchive, err)
		}
		seq = last + 1
	}
	finished := toArchive(entries, keep)
	data, size := map[string]string{}, 0
	var sealed []*HistoryEntry
	for _, e := range finished {
		raw, err := json.Marshal(e)
		if err != nil {
			return 0, err
		}
		key := configmapstore.EncodeKey(e.ID)
		if size+len(key)+len(raw) > MaxArchiveBytes {
			break // the rest go to the next archive, on the next pass
		}
		data[key], size = string(raw), size+len(key)+len(raw)
		sealed = append(sealed, e)
	}
	if len(data) == 0 {
		return 0, nil
	}
	labels := ConfigMapLabels(History, k)
	maps.Copy(labels, extra)
	labels[LabelArchive] = fmt.Sprintf("%06d", seq)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ArchiveName(k, seq), Namespace: namespace, Labels: labels,
			Annotations: map[string]string{configmapstore.AnnotationContext: historyContext(k)}},
		Data: data, Immutable: new(true),
	}
	if err := c.Create(ctx, cm); err != nil {
		// AlreadyExists too: another pass sealed this number first; the next pass finishes it.
		return 0, fmt.Errorf("sealing history archive %s: %w", cm.Name, err)
	}
	return removeArchived(ctx, live, entries, sealed)
}

// removeArchived removes from the live ledger the entries of sealed that it still holds as
// sealed, each only at the revision read (concurrently, so that the driver carries them
// in few updates), and returns how many it removed. An entry that differs from its sealed
// copy (a replayed event) stays live.
// toArchive are the entries a pass moves out of a live ledger that holds more than keep:
// its oldest finished ones, leaving keep/2 (and every unfinished one).
func toArchive(entries map[string]liveEntry, keep int) []*HistoryEntry {
	if len(entries) <= keep {
		return nil
	}
	finished := make([]*HistoryEntry, 0, len(entries))
	for _, e := range entries {
		if e.Finished() {
			finished = append(finished, e.HistoryEntry)
		}
	}
	slices.SortFunc(finished, byFirstEvent)
	return finished[:min(len(finished), len(entries)-keep/2)]
}

// ArchiveLedger is ArchiveHistory on an archive store (a database's table, or File's
// folders, the runner's own: see TendLedger): once k's live ledger holds more
// than keep entries, its oldest finished ones (leaving keep/2) move into k's archive store
// (domain HistoryArchive, in the same database), so that the live ledger, which the
// operator reads on every pass, stays bounded. Each entry is written to the archive before
// it leaves the live ledger, and leaves only at the revision that was copied, so a crash
// at any point loses nothing and the next pass finishes the move.
func ArchiveLedger(ctx context.Context, b Backend, k Key, keep int) (int, error) {
	live, err := openStore(ctx, b, History, k)
	if err != nil {
		return 0, err
	}
	defer func() { _ = live.Close() }()
	return archiveLedger(ctx, live, b, k, keep)
}

// archiveLedger moves the oldest finished entries of the live ledger live into k's archive
// store on b (see ArchiveLedger).
func archiveLedger(ctx context.Context, live driver.Driver, b Backend, k Key, keep int) (int, error) {
	entries, err := liveEntries(ctx, live)
	if err != nil || len(entries) <= keep {
		return 0, err
	}
	archive, err := openStore(ctx, b, HistoryArchive, k)
	if err != nil {
		return 0, err
	}
	defer func() { _ = archive.Close() }()
	moving := toArchive(entries, keep)
	for _, e := range moving {
		if err := archiveEntry(ctx, archive, e); err != nil {
			return 0, fmt.Errorf("archiving %s of %s: %w", e.ID, k, err)
		}
	}
	return removeArchived(ctx, live, entries, moving)
}

// openStore opens and prepares the driver of domain d of context k on b.
func openStore(ctx context.Context, b Backend, d Domain, k Key) (driver.Driver, error) {
	drv, err := b(ctx, d, k)
	if err != nil {
		return nil, err
	}
	if _, err := drv.Init(ctx, false); err != nil {
		_ = drv.Close()
		return nil, err
	}
	return drv, nil
}

// archiveEntry writes e into the archive store. An entry archived before (a pass
// interrupted after the copy, and a replayed event written live since) keeps every event
// either copy has: the archive never loses what it held.
func archiveEntry(ctx context.Context, archive driver.Driver, e *HistoryEntry) error {
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	// Nearly every entry is new to the archive: written blind first, read and merged
	// only when it is there already.
	if _, err := archive.Put(ctx, e.ID, raw, driver.Precondition{IfAbsent: true}); !errors.Is(err, driver.ErrConflict) {
		return err
	}
	for {
		merged, pre := e, driver.Precondition{IfAbsent: true}
		old, err := archive.Get(ctx, e.ID)
		switch {
		case err == nil:
			var had HistoryEntry
			if err := json.Unmarshal(old.Value, &had); err != nil {
				return err
			}
			for _, ev := range e.Events {
				if !slices.ContainsFunc(had.Events, ev.same) {
					had.Events = append(had.Events, ev)
				}
			}
			if e.Signal != nil {
				had.Signal = e.Signal
			}
			merged, pre = &had, driver.Precondition{IfRevision: old.Revision}
		case !errors.Is(err, driver.ErrNotFound):
			return err
		}
		raw, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		if _, err := archive.Put(ctx, e.ID, raw, pre); !errors.Is(err, driver.ErrConflict) {
			return err
		}
	}
}

func removeArchived(ctx context.Context, live driver.Driver, entries map[string]liveEntry,
	sealed []*HistoryEntry) (int, error) {
	var wg sync.WaitGroup
	var removed atomic.Int64
	errs := make([]error, len(sealed))
	slots := make(chan struct{}, 16) // deletes in flight at once
	for i, e := range sealed {
		le, ok := entries[e.ID]
		if !ok || !sameEntry(le.HistoryEntry, e) {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			err := live.Delete(ctx, e.ID, driver.Precondition{IfRevision: le.rev})
			switch {
			case err == nil:
				removed.Add(1)
			case errors.Is(err, driver.ErrConflict), errors.Is(err, driver.ErrNotFound):
				// written since (a replayed event): it stays live; or gone already
			default:
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return int(removed.Load()), errors.Join(errs...)
}

func sameEntry(a, b *HistoryEntry) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && string(ja) == string(jb)
}

// ReadHistory returns the whole ledger of k on the Kubernetes backends, archives and live
// entries alike, oldest first. An entry found twice (a close replayed after its entry was
// archived) is read as one, with the events of both.
func ReadHistory(ctx context.Context, c client.Client, namespace string, k Key) ([]*HistoryEntry, error) {
	archives, err := archiveNames(ctx, c, namespace, k)
	if err != nil {
		return nil, err
	}
	byID := map[string]*HistoryEntry{}
	add := func(e *HistoryEntry) {
		if have, ok := byID[e.ID]; ok {
			have.merge(e)
		} else {
			byID[e.ID] = e
		}
	}
	for _, name := range archives {
		_, entries, err := archive(ctx, c, namespace, name)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			add(e)
		}
	}
	live, err := liveEntries(ctx, liveLedger(c, namespace, k))
	if err != nil {
		return nil, err
	}
	for _, e := range live {
		add(e.HistoryEntry)
	}
	out := make([]*HistoryEntry, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	slices.SortFunc(out, byFirstEvent)
	return out, nil
}

// merge adds the events of o that h lacks, and o's row when h has none.
func (h *HistoryEntry) merge(o *HistoryEntry) {
	if h.Signal == nil {
		h.Signal = o.Signal
	}
	for _, ev := range o.Events {
		if !slices.ContainsFunc(h.Events, ev.same) {
			h.Events = append(h.Events, ev)
		}
	}
	slices.SortStableFunc(h.Events, func(a, b HistoryEvent) int { return cmp.Compare(a.At, b.At) })
}
