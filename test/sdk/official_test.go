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

package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// officialBot is a bot on one of backtest-kit's own database packages, run once per call:
// its read or write of the signal (signalID "") or of a signal's partial levels, with
// backtest-kit's when.
type officialBot interface {
	read(t *testing.T, signalID, when string) string
	write(t *testing.T, signalID, when string, value []byte)
	// when is the when of a signal's partial levels, as the package stores it.
	when(t *testing.T, signalID string) int64
}

// besideTheRunner has bot and a runner's stores on db (fenced, with a cache in front, as a
// runner opens them) share rows: the bot reads each write of the runner (also after its own
// cache holds the row); a row the bot rewrote is a new revision to the runner, whose cache
// reads the bot's value and whose conditional write made before it is refused, not lost
// over it; a row the runner removed reads as none; partial levels carry when both ways.
func besideTheRunner(t *testing.T, db *domain.Database, bot officialBot) {
	ctx := t.Context()
	runner := domain.Layers{Cache: &cachestore.Options{}}.Wrap(db.Backend(driver.Fencing{Writer: "runner", Token: 1}))
	signals := openStore(ctx, t, runner, domain.Signal)

	opened := testenv.FixtureAsWritten(t, "signal-opened.json")
	rev, err := signals.Put(ctx, symbol, opened, driver.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if got := bot.read(t, "", ""); !testenv.SameJSON([]byte(got), opened) {
		t.Fatalf("the bot read %s, want the runner's signal", got)
	}
	// The bot started (and, on PostgreSQL, synchronized its schema), and its cache names
	// the row: the runner's next conditional write lands, and the bot reads it.
	activated := testenv.FixtureAsWritten(t, "signal-activated-from-schedule.json")
	if rev, err = signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); err != nil {
		t.Fatalf("the runner's write after the bot's start: %v", err)
	}
	if got := bot.read(t, "", ""); !testenv.SameJSON([]byte(got), activated) {
		t.Fatalf("the bot read %s, want the runner's new signal", got)
	}

	// The bot clears the signal (its package's upsert).
	time.Sleep(2 * time.Millisecond) // MongoDB's updatedDate counts milliseconds
	bot.write(t, "", "", []byte("null"))
	e, err := signals.Get(ctx, symbol)
	if err != nil || string(e.Value) != "null" || e.Revision == rev {
		t.Fatalf("the runner read %s at %s (%v) after the bot cleared the signal; want null at a revision "+
			"other than %s", e.Value, e.Revision, err, rev)
	}
	if _, err := signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); !errors.Is(err,
		driver.ErrConflict) {
		t.Fatalf("the runner's write at the revision before the bot's: %v, want ErrConflict", err)
	}
	if got := bot.read(t, "", ""); got != "null" {
		t.Fatalf("the bot's cleared signal reads %s", got)
	}
	if err := signals.Delete(ctx, symbol, driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := bot.read(t, "", ""); got != "null" {
		t.Fatalf("the bot read %s after the runner removed the row its cache names", got)
	}

	partials := openStore(ctx, t, runner, domain.Partial)
	const signalID, when = "1af31ee8-c897-4000-a4dc-55369e459000", "1764107640000"
	levels := testenv.FixtureAsWritten(t, "partial.json")
	bot.write(t, signalID, when, levels)
	if e, err := partials.Get(ctx, signalID); err != nil || !testenv.SameJSON(e.Value, levels) {
		t.Fatalf("the runner read the bot's partial levels as %s (%v)", e.Value, err)
	}
	tick := time.UnixMilli(1764107700000) // the runner's write belongs to another tick
	if _, err := partials.Put(driver.WithWriteTime(ctx, tick), signalID, []byte(`{}`),
		driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := bot.read(t, signalID, when); got != "{}" {
		t.Fatalf("the bot read the runner's partial levels as %s", got)
	}
	if got := bot.when(t, signalID); got != tick.UnixMilli() {
		t.Fatalf("the runner's partial levels are stored at when %d, want its write's %d", got, tick.UnixMilli())
	}
}

// openStore opens and initialises the store of domain d of the test's strategy on b.
func openStore(ctx context.Context, t *testing.T, b domain.Backend, d domain.Domain) driver.Driver {
	t.Helper()
	drv, err := b(ctx, d, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	return drv
}

// openDatabase opens the database of backend b at url for the test.
func openDatabase(t *testing.T, b v1.PersistenceBackend, url string) *domain.Database {
	t.Helper()
	db, err := domain.OpenDatabase(t.Context(), b, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}
