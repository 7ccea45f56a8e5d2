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
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// typeormBot runs test/sdk/typeorm/bot.mjs against the database at url: a bot's read or
// write through real TypeORM with @backtest-kit/pg's entity schemas, its schema synchronized
// as the package synchronizes it at every start. It returns what the bot printed.
func typeormBot(t *testing.T, url string, args ...string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "test", "sdk", "typeorm")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "typeorm")); err != nil {
		t.Fatalf("TypeORM is not installed in %s: run make sdk-ts (%v)", dir, err)
	}
	cmd := exec.CommandContext(t.Context(), "node", append([]string{"bot.mjs", url}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the TypeORM bot (%s): %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestTypeORMBesideTheRunner: a bot on backtest-kit's PostgreSQL package (TypeORM 0.3 with
// its entity schemas and synchronize: true) and a runner's stores (fenced, with a cache in
// front, as a runner opens them) share rows. The bot reads what the runner wrote; its start
// (the schema sync, which drops columns its entities lack) leaves the runner's writes
// working; and a row the bot rewrote is a new revision to the runner: its cache reads the
// bot's value, and its conditional write made before the bot's is refused, not lost over it.
func TestTypeORMBesideTheRunner(t *testing.T) {
	ctx := t.Context()
	url := testenv.StartDatabase(t, string(v1.BackendPostgreSQL), "")
	db, err := domain.OpenDatabase(ctx, v1.BackendPostgreSQL, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	runner := domain.Layers{Cache: &cachestore.Options{}}.Wrap(db.Backend(driver.Fencing{Writer: "runner", Token: 1}))
	signals, err := runner(ctx, domain.Signal, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signals.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	at, _ := json.Marshal(map[string]string{"symbol": symbol, "strategyName": strategyName,
		"exchangeName": exchangeName})

	opened := testenv.FixtureAsWritten(t, "signal-opened.json")
	rev, err := signals.Put(ctx, symbol, opened, driver.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if got := typeormBot(t, url, "read", "signal", string(at)); !same(t, []byte(got), opened) {
		t.Fatalf("the bot read %s, want the runner's signal", got)
	}

	// The bot started (its schema synchronized): the runner still writes, conditionally.
	activated := testenv.FixtureAsWritten(t, "signal-activated-from-schedule.json")
	if rev, err = signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); err != nil {
		t.Fatalf("the runner's write after the bot's start: %v", err)
	}
	if got := typeormBot(t, url, "read", "signal", string(at)); !same(t, []byte(got), activated) {
		t.Fatalf("the bot read %s, want the runner's new signal", got)
	}

	// The bot writes (clears the signal, its upsert): the runner sees it, and does not
	// overwrite it with a write made at the revision before it.
	typeormBot(t, url, "write", "signal", string(at), "null")
	e, err := signals.Get(ctx, symbol)
	if err != nil || string(e.Value) != "null" || e.Revision == rev {
		t.Fatalf("the runner read %s at %s (%v) after the bot cleared the signal; want null at a revision "+
			"other than %s", e.Value, e.Revision, err, rev)
	}
	if _, err := signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); !errors.Is(err,
		driver.ErrConflict) {
		t.Fatalf("the runner's write at the revision before the bot's: %v, want ErrConflict", err)
	}
	if got := typeormBot(t, url, "read", "signal", string(at)); got != "null" {
		t.Fatalf("the bot's cleared signal reads %s", got)
	}

	// Partial levels with backtest-kit's when, both ways.
	partials, err := runner(ctx, domain.Partial, key)
	if err != nil {
		t.Fatal(err)
	}
	levels := testenv.FixtureAsWritten(t, "partial.json")
	const signalID = "1af31ee8-c897-4000-a4dc-55369e459000"
	withID, _ := json.Marshal(map[string]string{"symbol": symbol, "strategyName": strategyName,
		"exchangeName": exchangeName, "signalId": signalID})
	typeormBot(t, url, "write", "partial", string(withID), string(levels), "1764107640000")
	if e, err := partials.Get(ctx, signalID); err != nil || !same(t, e.Value, levels) {
		t.Fatalf("the runner read the bot's partial levels as %s (%v)", e.Value, err)
	}
	if _, err := partials.Put(ctx, signalID, []byte(`{}`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := typeormBot(t, url, "read", "partial", string(withID)); got != "{}" {
		t.Fatalf("the bot read the runner's partial levels as %s", got)
	}
}
