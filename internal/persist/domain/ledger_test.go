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
	"errors"
	"reflect"
	"testing"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
)

// TestReplay: a ledger entry replays from the levels its signal began with through its
// adopted edits; a lost, repeated or overwritten event shows as a gap.
func TestReplay(t *testing.T) {
	minutes := int64(90)
	opened := &domain.Levels{PriceTakeProfit: 110, PriceStopLoss: 95}
	edited := &domain.Levels{PriceTakeProfit: 104.3, PriceStopLoss: 95, MinuteEstimatedTime: &minutes}
	refused := &domain.Levels{PriceTakeProfit: 90, PriceStopLoss: 95}
	events := func(evs ...domain.HistoryEvent) *domain.HistoryEntry {
		for i := range evs {
			if evs[i].Seq == 0 {
				evs[i].Seq = i + 1
			}
		}
		return &domain.HistoryEntry{ID: "s1", Events: evs}
	}
	open := domain.HistoryEvent{Kind: domain.EventOpened, After: opened}
	edit := domain.HistoryEvent{Kind: domain.EventEdited, Before: opened, After: edited}
	refuse := domain.HistoryEvent{Kind: domain.EventEditRefused, Before: edited, After: refused, Note: "wrong side"}
	closed := domain.HistoryEvent{Kind: domain.EventClosed, Price: 104.3, Reason: "take_profit"}

	got, err := events(open, edit, refuse, closed).Replay()
	if err != nil || !reflect.DeepEqual(got, edited) {
		t.Fatalf("replay: %+v, %v; want %+v", got, err, *edited)
	}
	// Recorded out of order in the list: the sequence numbers order them.
	shuffled := events(open, edit, refuse, closed)
	shuffled.Events[1], shuffled.Events[2] = shuffled.Events[2], shuffled.Events[1]
	if got, err := shuffled.Replay(); err != nil || !reflect.DeepEqual(got, edited) {
		t.Fatalf("replay in sequence order: %+v, %v", got, err)
	}
	for name, entry := range map[string]*domain.HistoryEntry{
		"an edit lost":          events(open, refuse, closed),
		"a sequence number gap": events(open, domain.HistoryEvent{Kind: edit.Kind, Before: opened, After: edited, Seq: 3}),
		"a repeat":              events(open, edit, domain.HistoryEvent{Kind: edit.Kind, Before: opened, After: edited, Seq: 2}),
		"no beginning":          events(edit, closed),
	} {
		if _, err := entry.Replay(); !errors.Is(err, domain.ErrLedgerGap) {
			t.Errorf("%s: replay gives %v, want ErrLedgerGap", name, err)
		}
	}
}
