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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// mongoBot is a bot on backtest-kit 19.5.0 with the official @backtest-kit/mongo (its
// MongoDB collections, its Redis cache in front), run once per call (test/sdk/testdata/
// mongobot.mjs).
type mongoBot struct {
	dir, url string
	env      []string
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
	return mongoBot{dir: dir, url: mongoURL, env: append(os.Environ(), "MONGO_URL="+mongoURL, "REDIS_HOST="+host,
		"REDIS_PORT="+port, "REDIS_PASSWORD="+redis.Password)}
}

// run runs one read or write of the bot, value on its stdin, and returns what it printed.
func (b mongoBot) run(t *testing.T, value []byte, op, signalID, when string) string {
	t.Helper()
	args := []string{"mongobot.mjs", op, "signal", symbol, strategyName, exchangeName}
	if signalID != "" {
		args = append(args, signalID, when)
		args[2] = "partial"
	}
	cmd := exec.CommandContext(t.Context(), "node", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = b.dir, b.env, bytes.NewReader(value)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the @backtest-kit/mongo bot (%s): %v\n%s", strings.Join(args[1:], " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (b mongoBot) read(t *testing.T, signalID, when string) string {
	return b.run(t, nil, "read", signalID, when)
}

func (b mongoBot) write(t *testing.T, signalID, when string, value []byte) {
	b.run(t, value, "write", signalID, when)
}

func (b mongoBot) when(t *testing.T, signalID string) int64 {
	return rowWhen(t, v1.BackendMongoDB, b.url, mongoDB, "partial-items", bson.D{{Key: "signalId", Value: signalID}})
}

// mongoDB is the database the bot and the runner share.
const mongoDB = "bk"

// TestMongoPackageBesideTheRunner: a bot on the official @backtest-kit/mongo, against the
// test's MongoDB-protocol server with the package's Redis cache (which keys documents, not
// values), and a runner share documents (besideTheRunner). (The test server, FerretDB 1.x,
// cannot hold the package's risk document, an array of pairs: risk positions are left to
// the MongoDB compatibility tests of mongostore.)
func TestMongoPackageBesideTheRunner(t *testing.T) {
	mongoURL := testenv.StartDatabase(t, string(v1.BackendMongoDB), mongoDB)
	redis, err := testenv.StartRedis(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	besideTheRunner(t, openDatabase(t, v1.BackendMongoDB, mongoURL), newMongoBot(t, mongoURL, redis))
}
