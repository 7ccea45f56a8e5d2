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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// typeormBot is a bot on backtest-kit's PostgreSQL package as test/sdk/typeorm/bot.mjs plays
// it: real TypeORM 0.3 with @backtest-kit/pg's entity schemas, its schema synchronized as
// the package synchronizes it at every start.
type typeormBot struct{ url string }

func (b typeormBot) run(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(), "test", "sdk", "typeorm")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "typeorm")); err != nil {
		t.Fatalf("TypeORM is not installed in %s: run make sdk-ts (%v)", dir, err)
	}
	cmd := exec.CommandContext(t.Context(), "node", append([]string{"bot.mjs", b.url}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the TypeORM bot (%s): %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// at is the kind and context of the signal (signalID "") or of its partial levels.
func (typeormBot) at(signalID string) (string, string) {
	fields := map[string]string{"symbol": symbol, "strategyName": strategyName, "exchangeName": exchangeName}
	kind := "signal"
	if signalID != "" {
		kind, fields["signalId"] = "partial", signalID
	}
	data, _ := json.Marshal(fields)
	return kind, string(data)
}

func (b typeormBot) read(t *testing.T, signalID, _ string) string {
	kind, at := b.at(signalID)
	return b.run(t, "read", kind, at)
}

func (b typeormBot) write(t *testing.T, signalID, when string, value []byte) {
	kind, at := b.at(signalID)
	b.run(t, "write", kind, at, string(value), when)
}

func (b typeormBot) when(t *testing.T, signalID string) int64 {
	return rowWhen(t, v1.BackendPostgreSQL, b.url, "", "partial-items", bson.D{{Key: "signalId", Value: signalID}})
}

// TestTypeORMBesideTheRunner: a bot on backtest-kit's PostgreSQL package (TypeORM with its
// entity schemas and synchronize: true, whose start drops the columns its entities lack)
// and a runner share rows (besideTheRunner).
func TestTypeORMBesideTheRunner(t *testing.T) {
	url := testenv.StartDatabase(t, string(v1.BackendPostgreSQL), "")
	besideTheRunner(t, openDatabase(t, v1.BackendPostgreSQL, url), typeormBot{url})
}
