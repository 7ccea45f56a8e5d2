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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// files counts the files in dir (none when it does not exist).
func files(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() && filepath.Ext(e.Name()) == ".json" {
			n++
		}
	}
	return n
}

// TestFileLedgerIsBounded: on File, where only the runner reaches the ledger, the runner's
// tending keeps the live ledger's files under its limit (every open signal kept) and the
// archive's under the retention's count, as signals go on finishing; the age limit drops
// what ended long ago.
func TestFileLedgerIsBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := domain.FileBackend(dir)
	p := domain.New(b)
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "bounded", "binance")
	folder, err := domain.FileFolder(domain.History, k)
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, string(domain.History), folder)
	archive := filepath.Join(dir, string(domain.HistoryArchive), folder)
	r := domain.Retention{Entries: 25}
	now := time.UnixMilli(1_000_000 + 200*60_000) // the signals' clock, of 1970
	for round := range 10 {
		recordSignalsFrom(t, p, k, round*20, 20) // 20 more finished signals each round
		if _, _, err := p.TendLedger(ctx, b, k, 10, r, now); err != nil {
			t.Fatal(err)
		}
		if n := files(t, live); n > 20 {
			t.Fatalf("round %d: %d live ledger files, want at most twice the limit of 10", round, n)
		}
		if n := files(t, archive); n > 25 {
			t.Fatalf("round %d: %d archived files, want at most the retention's 25", round, n)
		}
	}
	if n := files(t, archive); n != 25 {
		t.Fatalf("%d archived files after 200 signals, want the retention's 25", n)
	}
	// An age limit: only what ended within the last 10 minutes stays archived. The round
	// archives sig-200 to sig-214 (sig-215 on stay live); of those, sig-210 on ended in time.
	recordSignalsFrom(t, p, k, 200, 20)
	if _, _, err := p.TendLedger(ctx, b, k, 10, domain.Retention{Entries: 25, MaxAge: 10 * time.Minute},
		time.UnixMilli(1_000_000+220*60_000)); err != nil {
		t.Fatal(err)
	}
	if n := files(t, archive); n != 5 {
		t.Fatalf("%d archived files under a 10-minute age limit, want the 5 that ended within it", n)
	}
	s, err := p.History.Store(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Has(ctx, "sig-219"); err != nil || !ok {
		t.Fatalf("the newest signal left the live ledger (%v)", err)
	}
}

// TestArchiveConfigMapsFollowRetention: sealed archive ConfigMaps go whole, oldest first,
// once the retention drops every entry they hold; one holding a kept entry stays, and so
// do the newer ones.
func TestArchiveConfigMapsFollowRetention(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	p := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true}))
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey("BTCUSDT", "pruner", "binance")
	for round := range 4 { // four archives of 15 entries each: sig-000..014, 015..029, …
		recordSignalsFrom(t, p, k, round*15, 15)
		if _, err := domain.ArchiveHistory(ctx, env.Client, ns, k, 10, nil); err != nil {
			t.Fatal(err)
		}
	}
	before := archivesOf(t, ns)
	if len(before) != 4 {
		t.Fatalf("%d archives, want 4", len(before))
	}
	total := 0
	for _, a := range before {
		total += len(a.Data)
	}
	// Keep the newest total-20 entries: the first archive (15 entries) goes whole; the
	// second holds 5 kept entries, and stays.
	pruned, err := domain.PruneArchives(ctx, env.Client, ns, k, domain.Retention{Entries: total - 20}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	after := archivesOf(t, ns)
	if len(after) != 3 || pruned != len(before[0].Data) {
		t.Fatalf("%d archives left and %d entries pruned, want 3 and the first archive's %d", len(after), pruned,
			len(before[0].Data))
	}
	for _, a := range after {
		if a.Name == domain.ArchiveName(k, 1) {
			t.Fatal("the oldest archive is still there")
		}
	}
}
