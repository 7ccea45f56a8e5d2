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
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
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
func (h *HistoryEntry) Finished() bool { return h.Has("closed") || h.Has("cancelled") }

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
	return kubestore.ObjectName(ConfigMapName(History, k), "archive", fmt.Sprintf("%06d", n))
}

func historyContext(k Key) string { return string(History) + "/" + k.String() }

// archives lists the ledger archives of k in sequence.
func archives(ctx context.Context, c client.Client, namespace string, k Key) ([]corev1.ConfigMap, error) {
	var list corev1.ConfigMapList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels(ConfigMapLabels(History, k)),
		client.HasLabels{LabelArchive}); err != nil {
		return nil, fmt.Errorf("listing the history archives of %s: %w", k, err)
	}
	// Labels can coincide for contexts whose names clean up alike: keep this context's.
	out := slices.DeleteFunc(list.Items, func(cm corev1.ConfigMap) bool {
		return cm.Annotations[configmapstore.AnnotationContext] != historyContext(k)
	})
	slices.SortFunc(out, func(a, b corev1.ConfigMap) int { return cmp.Compare(a.Labels[LabelArchive], b.Labels[LabelArchive]) })
	return out, nil
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

func liveEntries(ctx context.Context, d *kubestore.Driver) (map[string]*HistoryEntry, error) {
	snap, err := d.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*HistoryEntry, len(snap))
	for key, e := range snap {
		var h HistoryEntry
		if err := json.Unmarshal(e.Value, &h); err != nil {
			return nil, fmt.Errorf("history %s, key %s: %w", d.Name(), key, err)
		}
		out[key] = &h
	}
	return out, nil
}

// ArchiveHistory moves the oldest finished entries of k's live ledger into a new sealed
// archive once the live ledger holds more than keep entries, leaving keep/2 (and every
// unfinished one). It is safe to run again after a crash at any point: the archive is
// written whole before anything leaves the live ledger, and a pass that stopped between
// the two finishes by removing what the newest archive already holds. It returns how many
// entries left the live ledger.
func ArchiveHistory(ctx context.Context, c client.Client, namespace string, k Key, keep int) (int, error) {
	live := liveLedger(c, namespace, k)
	entries, err := liveEntries(ctx, live)
	if err != nil {
		return 0, err
	}
	done, err := archives(ctx, c, namespace, k)
	if err != nil {
		return 0, err
	}
	if n := len(done); n > 0 {
		// A pass that created this archive may have stopped before emptying the live ledger.
		sealed, err := decodeEntries(done[n-1].Name, done[n-1].Data)
		if err != nil {
			return 0, err
		}
		var leftover []string
		for _, e := range sealed {
			if _, ok := entries[e.ID]; ok {
				leftover = append(leftover, e.ID)
			}
		}
		if len(leftover) > 0 {
			return len(leftover), deleteKeys(ctx, live, leftover)
		}
	}
	if len(entries) <= keep {
		return 0, nil
	}
	finished := make([]*HistoryEntry, 0, len(entries))
	for _, e := range entries {
		if e.Finished() {
			finished = append(finished, e)
		}
	}
	slices.SortFunc(finished, byFirstEvent)
	finished = finished[:min(len(finished), len(entries)-keep/2)]
	data, size := map[string]string{}, 0
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
	}
	if len(data) == 0 {
		return 0, nil
	}
	seq := 1
	if n := len(done); n > 0 {
		last, err := strconv.Atoi(done[n-1].Labels[LabelArchive])
		if err != nil {
			return 0, fmt.Errorf("history archive %s: label %s: %w", done[n-1].Name, LabelArchive, err)
		}
		seq = last + 1
	}
	labels := ConfigMapLabels(History, k)
	labels[LabelArchive] = fmt.Sprintf("%06d", seq)
	archive := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ArchiveName(k, seq), Namespace: namespace, Labels: labels,
			Annotations: map[string]string{configmapstore.AnnotationContext: historyContext(k)}},
		Data: data, Immutable: new(true),
	}
	if err := c.Create(ctx, archive); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("sealing history archive %s: %w", archive.Name, err)
	}
	keys := make([]string, 0, len(data))
	for _, e := range finished {
		if _, ok := data[configmapstore.EncodeKey(e.ID)]; ok {
			keys = append(keys, e.ID)
		}
	}
	return len(keys), deleteKeys(ctx, live, keys)
}

// deleteKeys removes keys from the live ledger, concurrently so that the driver carries
// them in few updates.
func deleteKeys(ctx context.Context, live *kubestore.Driver, keys []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, key := range keys {
		wg.Go(func() {
			if err := live.Delete(ctx, key, driver.Precondition{}); err != nil && !errors.Is(err, driver.ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ReadHistory returns the whole ledger of k on the Kubernetes backends, archives and live
// entries alike, oldest first. An entry found twice (a close replayed after its entry was
// archived) is read as one, with the events of both.
func ReadHistory(ctx context.Context, c client.Client, namespace string, k Key) ([]*HistoryEntry, error) {
	done, err := archives(ctx, c, namespace, k)
	if err != nil {
		return nil, err
	}
	byID := map[string]*HistoryEntry{}
	add := func(entries []*HistoryEntry) {
		for _, e := range entries {
			if have, ok := byID[e.ID]; ok {
				have.merge(e)
			} else {
				byID[e.ID] = e
			}
		}
	}
	for _, cm := range done {
		entries, err := decodeEntries(cm.Name, cm.Data)
		if err != nil {
			return nil, err
		}
		add(entries)
	}
	live, err := liveEntries(ctx, liveLedger(c, namespace, k))
	if err != nil {
		return nil, err
	}
	for _, e := range live {
		add([]*HistoryEntry{e})
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
		if !h.Has(ev.Kind) {
			h.Events = append(h.Events, ev)
		}
	}
	slices.SortStableFunc(h.Events, func(a, b HistoryEvent) int { return cmp.Compare(a.At, b.At) })
}
