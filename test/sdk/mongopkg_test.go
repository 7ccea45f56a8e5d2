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
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// mongoBot is a bot on backtest-kit 19.5.0 with the official @backtest-kit/mongo (its
// MongoDB collections, its Redis cache in front), run once per call (test/sdk/testdata/
// mongobot.mjs).
type mongoBot struct {
	dir string
	env []string
}

func newMongoBot(t *testing.T, mongoURL string, redis *testenv.Redis) mongoBot {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(testenv.BacktestKit(t), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "test", "sdk", "testdata", "mongobot.mjs"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "mongobot.mjs"), script, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(redis.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return mongoBot{dir: dir, env: append(os.Environ(), "MONGO_URL="+mongoURL, "REDIS_HOST="+host,
		"REDIS_PORT="+port, "REDIS_PASSWORD="+redis.Password)}
}

// run runs one read or write of the bot (args: op, kind and the context), value on its
// stdin, and returns what it printed.
func (b mongoBot) run(t *testing.T, value []byte, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "node", append([]string{"mongobot.mjs"}, args...)...)
	cmd.Dir, cmd.Env, cmd.Stdin = b.dir, b.env, bytes.NewReader(value)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the @backtest-kit/mongo bot (%s): %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestMongoPackageBesideTheRunner: a bot on the official @backtest-kit/mongo (against the
// test's MongoDB-protocol server, with its Redis cache) and a runner's stores (fenced, with
// a cache in front, as a runner opens them) share documents. The bot reads each row the
// runner writes, also after its Redis cache holds the document (the cache keys documents,
// not values); a document the bot rewrote is a new revision to the runner, whose cache
// reads it and whose conditional write made before it is refused; partial levels carry
// backtest-kit's when both ways. (The test server, FerretDB 1.x, cannot hold the package's
// risk document, an array of pairs: risk positions are left to the MongoDB compatibility
// tests of mongostore.)
func TestMongoPackageBesideTheRunner(t *testing.T) {
	ctx := t.Context()
	mongoURL := testenv.StartDatabase(t, string(v1.BackendMongoDB), "bk")
	redis, err := testenv.StartRedis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	db, err := domain.OpenDatabase(ctx, v1.BackendMongoDB, mongoURL)
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
	bot := newMongoBot(t, mongoURL, redis)
	signal := []string{"signal", symbol, strategyName, exchangeName}

	opened := testenv.FixtureAsWritten(t, "signal-opened.json")
	rev, err := signals.Put(ctx, symbol, opened, driver.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if got := bot.run(t, nil, append([]string{"read"}, signal...)...); !same(t, []byte(got), opened) {
		t.Fatalf("the bot read %s, want the runner's signal", got)
	}
	// Its Redis cache now holds the document: the runner's next write is read all the same.
	activated := testenv.FixtureAsWritten(t, "signal-activated-from-schedule.json")
	if rev, err = signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); err != nil {
		t.Fatal(err)
	}
	if got := bot.run(t, nil, append([]string{"read"}, signal...)...); !same(t, []byte(got), activated) {
		t.Fatalf("the bot read %s through its cache, want the runner's new signal", got)
	}

	// The bot clears the signal (the package's upsert): the runner sees it, and does not
	// overwrite it with a write made at the revision before it.
	time.Sleep(2 * time.Millisecond) // the documents' updatedDate counts milliseconds
	bot.run(t, []byte("null"), append([]string{"write"}, signal...)...)
	e, err := signals.Get(ctx, symbol)
	if err != nil || string(e.Value) != "null" || e.Revision == rev {
		t.Fatalf("the runner read %s at %s (%v) after the bot cleared the signal; want null at a revision "+
			"other than %s", e.Value, e.Revision, err, rev)
	}
	if _, err := signals.Put(ctx, symbol, activated, driver.Precondition{IfRevision: rev}); !errors.Is(err,
		driver.ErrConflict) {
		t.Fatalf("the runner's write at the revision before the bot's: %v, want ErrConflict", err)
	}
	// The runner removes the document the bot's cache names: the bot reads none.
	if err := signals.Delete(ctx, symbol, driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := bot.run(t, nil, append([]string{"read"}, signal...)...); got != "null" {
		t.Fatalf("the bot read %s after the runner removed its signal", got)
	}

	// Partial levels, with backtest-kit's when, both ways.
	partials, err := runner(ctx, domain.Partial, key)
	if err != nil {
		t.Fatal(err)
	}
	const signalID, when = "1af31ee8-c897-4000-a4dc-55369e459000", "1764107640000"
	partial := []string{"partial", symbol, strategyName, exchangeName, signalID, when}
	levels := testenv.FixtureAsWritten(t, "partial.json")
	bot.run(t, levels, append([]string{"write"}, partial...)...)
	if e, err := partials.Get(ctx, signalID); err != nil || !same(t, e.Value, levels) {
		t.Fatalf("the runner read the bot's partial levels as %s (%v)", e.Value, err)
	}
	if _, err := partials.Put(ctx, signalID, []byte(`{}`), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if got := bot.run(t, nil, append([]string{"read"}, partial...)...); got != "{}" {
		t.Fatalf("the bot read the runner's partial levels as %s", got)
	}
}
