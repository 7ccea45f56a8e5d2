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
	"encoding/json"
	"slices"
	"testing"

	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestOldArchiveMoves: on every database whose tables place its stores, what an older operator archived beside the live
// ledgers moves into the archive table on the next archiving pass (merged with a copy the
// archive holds already), and retention Delete removes it from either place.
func TestOldArchiveMoves(t *testing.T) {
	for _, name := range Backends(InDatabase) {
		if k, _ := Lookup(name); !k.Tables {
			continue // a store placed by its name alone (Redis): the archive never moved
		}
		t.Run(string(name), func(t *testing.T) {
			ctx := context.Background()
			db, err := OpenDatabase(ctx, name, testenv.StartDatabase(t, string(name), "oldarchive"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			key := StrategyKey("BTCUSDT", "mover", "binance")
			put := func(d driver.Driver, e HistoryEntry) {
				t.Helper()
				raw, _ := json.Marshal(e)
				if _, err := d.Init(ctx, false); err != nil {
					t.Fatal(err)
				}
				if _, err := d.Put(ctx, e.ID, raw, driver.Precondition{}); err != nil {
					t.Fatal(err)
				}
			}
			entry := func(id string, kinds ...string) HistoryEntry {
				e := HistoryEntry{ID: id, Symbol: "BTCUSDT"}
				for i, kind := range kinds {
					e.Events = append(e.Events, HistoryEvent{Kind: kind, At: int64(1000 * (i + 1)), Seq: i + 1})
				}
				return e
			}
			archive, err := db.Backend(NoFencing)(ctx, HistoryArchive, key)
			if err != nil {
				t.Fatal(err)
			}
			put(db.oldArchive(key), entry("a", "opened", "closed"))
			put(db.oldArchive(key), entry("b", "opened", "closed"))
			put(archive, entry("b", "scheduled"))

			if moved, err := db.ArchiveLedger(ctx, key, 10); err != nil || moved != 0 {
				t.Fatalf("ArchiveLedger: moved %d live entries (%v), want none: the live ledger is empty", moved, err)
			}
			if left, err := driver.ReadAll(ctx, db.oldArchive(key)); err != nil || len(left) != 0 {
				t.Fatalf("the old place still holds %d entries (%v), want none", len(left), err)
			}
			got, err := driver.ReadAll(ctx, archive)
			if err != nil || len(got) != 2 {
				t.Fatalf("the archive holds %d entries (%v), want a and b", len(got), err)
			}
			var b HistoryEntry
			if err := json.Unmarshal(got["b"].Value, &b); err != nil {
				t.Fatal(err)
			}
			kinds := make([]string, 0, len(b.Events))
			for _, ev := range b.Events {
				kinds = append(kinds, ev.Kind)
			}
			if !slices.Equal(kinds, []string{"scheduled", "opened", "closed"}) {
				t.Fatalf("b's events in the archive: %v, want both copies'", kinds)
			}

			put(db.oldArchive(key), entry("c", "opened", "closed"))
			if err := db.DeleteState(ctx, []Context{{Domain: HistoryArchive, Key: key}}); err != nil {
				t.Fatal(err)
			}
			for place, d := range map[string]driver.Driver{"archive": archive, "old place": db.oldArchive(key)} {
				if left, err := driver.ReadAll(ctx, d); err != nil || len(left) != 0 {
					t.Errorf("after DeleteState the %s holds %d entries (%v), want none", place, len(left), err)
				}
			}
		})
	}
}
