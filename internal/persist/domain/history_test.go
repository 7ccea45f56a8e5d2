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

package domain_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// recordSignals records n signals in the ledger of k, the first finished ones closed.
func recordSignals(t *testing.T, p *domain.Persistence, k domain.Key, n, finished int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("sig-%03d", i)
		at := int64(1_000_000 + i*60_000)
		if err := p.RecordHistory(ctx, k, nil, id, domain.HistoryEvent{Kind: "opened", At: at, Price: 100}); err != nil {
			t.Fatal(err)
		}
		if i < finished {
			ev := domain.HistoryEvent{Kind: "closed", At: at + 30_000, Price: 101, Reason: "take_profit"}
			if err := p.RecordHistory(ctx, k, nil, id, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func archivesOf(t *testing.T, ns string) []corev1.ConfigMap {
	t.Helper()
	var list corev1.ConfigMapList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns),
		client.HasLabels{domain.LabelArchive}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func liveKeys(t *testing.T, p *domain.Persistence, k domain.Key) []string {
	t.Helper()
	s, err := p.History.Store(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.SortedKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// failingUpdates refuses every update: a pass that sealed an archive and then could not
// empty the live ledger, as if the operator died between the two.
type failingUpdates struct{ client.Client }

func (failingUpdates) Update(context.Context, client.Object, ...client.UpdateOption) error {
	return errors.New("the operator died here")
}

// TestHistoryArchive: a live ledger past its limit keeps its newest half and every open
// signal; the oldest finished entries move to a sealed, immutable archive; the whole
// history still reads in order; a pass interrupted between sealing and emptying finishes
// on the next pass without a second copy; a close replayed after its entry left reads as
// one entry.
func TestHistoryArchive(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	p := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true}))
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "archiver", "binance")
	recordSignals(t, p, k, 40, 36) // sig-036..039 stay open

	if moved, err := domain.ArchiveHistory(ctx, env.Client, ns, k, 50, nil); err != nil || moved != 0 {
		t.Fatalf("a ledger under its limit: moved %d (%v), want nothing", moved, err)
	}
	// The driver retries a failed update until its context ends.
	dying, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := domain.ArchiveHistory(dying, failingUpdates{env.Client}, ns, k, 20, nil); err == nil {
		t.Fatal("the interrupted pass reported success")
	}
	if n := len(archivesOf(t, ns)); n != 1 {
		t.Fatalf("%d archives after the interrupted pass, want the one it sealed", n)
	}
	if n := len(liveKeys(t, p, k)); n != 40 {
		t.Fatalf("the interrupted pass left %d live entries, want all 40", n)
	}
	moved, err := domain.ArchiveHistory(ctx, env.Client, ns, k, 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	archived := archivesOf(t, ns)
	if len(archived) != 1 || moved != 30 {
		t.Fatalf("the next pass made %d archives and moved %d entries, want to finish the first: 1 and 30",
			len(archived), moved)
	}
	if a := archived[0]; a.Immutable == nil || !*a.Immutable || len(a.Data) != 30 ||
		a.Labels[domain.LabelArchive] != "000001" || a.Name != domain.ArchiveName(k, 1) {
		t.Fatalf("archive %s: immutable %v, %d entries, label %q; want sealed, 30, 000001",
			a.Name, a.Immutable, len(a.Data), a.Labels[domain.LabelArchive])
	}
	live := liveKeys(t, p, k)
	if len(live) != 10 || live[0] != "sig-030" || live[9] != "sig-039" {
		t.Fatalf("live entries %v, want the newest ten (sig-030 to sig-039, the open ones among them)", live)
	}

	// More signals, a second archive.
	recordSignalsFrom(t, p, k, 40, 20)
	if _, err := domain.ArchiveHistory(ctx, env.Client, ns, k, 20, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(archivesOf(t, ns)); n != 2 {
		t.Fatalf("%d archives, want 2", n)
	}
	// A restarted runner replays the close of sig-000, long archived.
	ev := domain.HistoryEvent{Kind: "closed", At: 1_030_000, Price: 101, Reason: "take_profit"}
	if err := p.RecordHistory(ctx, k, nil, "sig-000", ev); err != nil {
		t.Fatal(err)
	}
	all, err := domain.ReadHistory(ctx, env.Client, ns, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 60 {
		t.Fatalf("the whole history holds %d entries, want 60", len(all))
	}
	for i, e := range all {
		if want := fmt.Sprintf("sig-%03d", i); e.ID != want {
			t.Fatalf("entry %d is %s, want %s (oldest first)", i, e.ID, want)
		}
	}
	if first := all[0]; len(first.Events) != 2 || first.Events[0].Kind != "opened" || first.Events[1].Kind != "closed" {
		t.Fatalf("sig-000 reads as %+v, want opened then closed, once each", first.Events)
	}
}

// recordSignalsFrom records n more finished signals after the first `from`.
func recordSignalsFrom(t *testing.T, p *domain.Persistence, k domain.Key, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("sig-%03d", i)
		at := int64(1_000_000 + i*60_000)
		for _, ev := range []domain.HistoryEvent{{Kind: "opened", At: at}, {Kind: "closed", At: at + 30_000}} {
			if err := p.RecordHistory(ctx, k, nil, id, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestArchiveLedgerMerges: on an archive store (a database's), the oldest finished entries
// move out of the live ledger; one the archive holds already (a pass that stopped after
// its copy, and an event replayed live since) keeps every event of both copies.
func TestArchiveLedgerMerges(t *testing.T) {
	ctx := context.Background()
	b := domain.MemoryBackend()
	p := domain.New(b)
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "merger", "binance")
	recordSignals(t, p, k, 10, 10)
	archive, err := b(ctx, domain.HistoryArchive, k)
	if err != nil {
		t.Fatal(err)
	}
	had := domain.HistoryEntry{ID: "sig-000", Symbol: "BTCUSDT", Events: []domain.HistoryEvent{
		{Kind: "scheduled", At: 999_000, Price: 99, Seq: 1}}}
	raw, _ := json.Marshal(had)
	if _, err := archive.Put(ctx, had.ID, raw, driver.Precondition{IfAbsent: true}); err != nil {
		t.Fatal(err)
	}

	moved, err := domain.ArchiveLedger(ctx, b, k, 4)
	if err != nil || moved != 8 {
		t.Fatalf("moved %d (%v), want the 8 oldest of 10 with 4 kept", moved, err)
	}
	if live := liveKeys(t, p, k); len(live) != 2 {
		t.Fatalf("live ledger %v, want the newest 2", live)
	}
	all, err := driver.ReadAll(ctx, archive)
	if err != nil || len(all) != 8 {
		t.Fatalf("archive holds %d entries (%v), want 8", len(all), err)
	}
	var merged domain.HistoryEntry
	if err := json.Unmarshal(all["sig-000"].Value, &merged); err != nil {
		t.Fatal(err)
	}
	kinds := make([]string, 0, len(merged.Events))
	for _, ev := range merged.Events {
		kinds = append(kinds, ev.Kind)
	}
	if want := []string{"scheduled", "opened", "closed"}; !slices.Equal(kinds, want) {
		t.Fatalf("sig-000 in the archive has events %v, want %v: both copies' events", kinds, want)
	}
}
