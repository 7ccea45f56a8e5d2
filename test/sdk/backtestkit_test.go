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

// Package sdk_test runs the backtest-kit adapter package (sdk/backtest-kit), and a real
// backtest-kit bot using it, as a user's process under a real runner exec, on every
// backend (a real API server, real database servers).
package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var (
	env    *testenv.Environment
	runner string // the runner binary, built for the tests
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strategyops-sdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runner = filepath.Join(dir, "runner")
	build := exec.Command("go", "build", "-o", runner, "./cmd/runner")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the runner: %v\n%s", err, out)
		os.Exit(1)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	testenv.RunMain(m, &env)
}

const (
	strategyName, exchangeName, symbol = "trace-immediate", "trace-exchange", "BTCUSDT"
	leaseName                          = "trace-runner"
)

var key = domain.StrategyKey(symbol, strategyName, exchangeName)

// runExec runs runner exec with flags and the command, and returns its exit code and output.
func runExec(t *testing.T, flags []string, command []string, extraEnv ...string) (int, string) {
	t.Helper()
	code, out, err := execute(t, flags, command, extraEnv...)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// execute is runExec for any goroutine: it returns an error rather than failing t.
func execute(t *testing.T, flags []string, command []string, extraEnv ...string) (int, string, error) {
	cmd := exec.CommandContext(t.Context(), runner, append(append(append([]string{"exec",
		"--strategy-name=" + strategyName, "--exchange=" + exchangeName, "--symbols=" + symbol}, flags...), "--"),
		command...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), append([]string{"FIXTURES=" + filepath.Join(testenv.RepoRoot(), "test",
		"fixtures", "backtest-kit")}, extraEnv...)...)
	cmd.SysProcAttr = childproc.SysProcAttr()
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		return -1, out.String(), err
	}
	return cmd.ProcessState.ExitCode(), out.String(), nil
}

func nodeTests(t *testing.T) []string {
	return []string{"node", "--test", filepath.Join(testenv.AdapterPackage(t), "dist", "test", "adapters.test.js")}
}

// TestAdaptersOnFile: the package's tests pass as runner exec's process on the File backend,
// and what they wrote is in backtest-kit's own files.
func TestAdaptersOnFile(t *testing.T) {
	dir := t.TempDir()
	code, out := runExec(t, []string{"--backend=File", "--data-dir=" + dir}, nodeTests(t))
	if code != 0 {
		t.Fatalf("the package's tests failed under runner exec (exit %d):\n%s", code, out)
	}
	written, err := os.ReadFile(filepath.Join(dir, "signal", "BTCUSDT_trace-immediate_trace-exchange", "BTCUSDT.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !testenv.SameJSON(written, testenv.FixtureAsWritten(t, "signal-opened.json")) {
		t.Fatalf("backtest-kit's signal file holds %s", written)
	}
}

// configMapNamespace is a namespace with the ConfigMaps the operator would make for the
// strategy, and the runner's flags for it.
func configMapNamespace(ctx context.Context, t *testing.T) (string, []string) {
	t.Helper()
	ns := env.Namespace(ctx, t)
	backend := domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true})
	for _, c := range domain.StrategyContexts(strategyName, exchangeName, []string{symbol}) {
		if err := domain.CreateObject(ctx, backend, c.Domain, c.Key); err != nil {
			t.Fatal(err)
		}
	}
	return ns, []string{"--backend=ConfigMap", "--namespace=" + ns, "--lease=" + leaseName,
		"--lease-duration=6s", "--renew-deadline=3s", "--retry-period=500ms"}
}

// TestAdaptersOnConfigMaps: the package's tests pass as runner exec's process on ConfigMaps,
// under the Lease, and the signal is in the strategy's ConfigMap as backtest-kit wrote it.
func TestAdaptersOnConfigMaps(t *testing.T) {
	ctx := t.Context()
	ns, flags := configMapNamespace(ctx, t)
	adaptersOn(t, flags, domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns}))
}

// TestAdaptersOnEveryDatabase: the same on each database: the value backtest-kit wrote
// through the adapter reads back as it wrote it, whatever keeps it. (StrategyState holds
// one typed signal per object, of its own identity, and refuses the package's round trip
// of rows of other strategies and symbols through one context, as an invalid value.)
func TestAdaptersOnEveryDatabase(t *testing.T) {
	ctx := t.Context()
	for _, b := range []v1.PersistenceBackend{v1.BackendRedis, v1.BackendPostgreSQL, v1.BackendMongoDB} {
		t.Run(string(b), func(t *testing.T) {
			ns := env.Namespace(ctx, t)
			flags := []string{"--backend=" + string(b), "--namespace=" + ns, "--lease=" + leaseName,
				"--lease-duration=6s", "--renew-deadline=3s", "--retry-period=500ms"}
			url := testenv.StartDatabase(t, string(b), "sdk")
			db, err := domain.OpenDatabase(ctx, b, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			adaptersOn(t, flags, db.Backend(domain.NoFencing), domain.StoreURLEnv+"="+url)
			if got := rowWhens(t, b, url); got != nil && !slices.Equal(got, []int64{adaptersWhen, adaptersWhen,
				adaptersWhen}) {
				t.Errorf("the risk, partial and breakeven rows' when are %v ms; want backtest-kit's %d", got,
					adaptersWhen)
			}
		})
	}
}

// adaptersWhen is the when the package's tests give their writes (Unix milliseconds).
var adaptersWhen = time.Date(2026, 11, 25, 21, 54, 0, 0, time.UTC).UnixMilli()

// rowWhens reads the when field of the risk, partial and breakeven rows the package's tests
// left in the database at url, as backtest-kit's database packages read it; nil for a
// backend without such rows (Redis keeps no when).
func rowWhens(t *testing.T, b v1.PersistenceBackend, url string) []int64 {
	t.Helper()
	if b != v1.BackendPostgreSQL && b != v1.BackendMongoDB {
		return nil
	}
	const signalID = "1af31ee8-c897-4000-a4dc-55369e459000"
	return []int64{
		rowWhen(t, b, url, "sdk", "risk-items", bson.D{{Key: "riskName", Value: strategyName}}),
		rowWhen(t, b, url, "sdk", "partial-items", bson.D{{Key: "strategyName", Value: strategyName},
			{Key: "signalId", Value: signalID}}),
		rowWhen(t, b, url, "sdk", "breakeven-items", bson.D{{Key: "strategyName", Value: strategyName},
			{Key: "signalId", Value: signalID}}),
	}
}

// rowWhen reads the when field of the row of table (a collection of the database db, on
// MongoDB) whose fields hold the values given, as backtest-kit's database packages read it.
func rowWhen(t *testing.T, b v1.PersistenceBackend, url, db, table string, fields bson.D) int64 {
	t.Helper()
	ctx := t.Context()
	if b == v1.BackendMongoDB {
		client, err := mongo.Connect(options.Client().ApplyURI(url))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = client.Disconnect(ctx) }()
		var doc struct {
			When float64 `bson:"when"`
		}
		if err := client.Database(db).Collection(table).FindOne(ctx, fields).Decode(&doc); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		return int64(doc.When)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	where := make([]string, len(fields))
	args := make([]any, len(fields))
	for i, f := range fields {
		where[i], args[i] = pgx.Identifier{f.Key}.Sanitize()+" = $"+strconv.Itoa(i+1), f.Value
	}
	sql := `SELECT "when" FROM ` + pgx.Identifier{table}.Sanitize() + ` WHERE ` + strings.Join(where, " AND ")
	var w int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&w); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return w
}

// adaptersOn runs the package's tests as runner exec's process with flags (and env
// extra), then reads the signal they left from backend.
func adaptersOn(t *testing.T, flags []string, backend domain.Backend, extra ...string) {
	t.Helper()
	code, out := runExec(t, flags, nodeTests(t), append([]string{"KUBECONFIG=" + env.Kubeconfig(t)}, extra...)...)
	if code != 0 {
		t.Fatalf("the package's tests failed under runner exec (exit %d):\n%s", code, out)
	}
	p := domain.New(backend)
	defer func() { _ = p.Close() }()
	sig, err := p.ReadSignal(t.Context(), key)
	if err != nil || sig == nil {
		t.Fatalf("the signal in the store: %v, %v", sig, err)
	}
	got, _ := json.Marshal(sig)
	if !testenv.SameJSON(got, testenv.FixtureAsWritten(t, "signal-opened.json")) {
		t.Fatalf("the store's signal is %s", got)
	}
}

// writer is a bot's process that writes its strategy snapshot through the adapter every 20
// ms, saying whether each write landed.
const writer = `
import { StrategyAdapter } from "%s";
const [symbol] = process.env.STRATEGYOPS_SYMBOLS.split(",");
const s = new StrategyAdapter(symbol, process.env.STRATEGYOPS_STRATEGY_NAME, process.env.STRATEGYOPS_EXCHANGE_NAME);
await s.waitForInit(true);
for (let n = 1; ; n++) {
  try { await s.writeStrategyData({ retryOpenCount: n }); console.log("wrote", n); }
  catch (e) { console.log("refused:", e.code ?? e.message); }
  await new Promise((r) => setTimeout(r, 20));
}
`

// TestFencedOffBot: a bot writing through the adapter loses the Lease to another runner,
// which writes with its newer token: the old bot's writes are refused, and runner exec
// stops it and exits non-zero.
func TestFencedOffBot(t *testing.T) {
	ctx := t.Context()
	ns, flags := configMapNamespace(ctx, t)
	script := fmt.Sprintf(writer, filepath.Join(testenv.AdapterPackage(t), "dist", "src", "index.js"))
	done := make(chan struct{})
	var code int
	var out string
	var runErr error
	go func() {
		defer close(done)
		code, out, runErr = execute(t, append(flags, "--grace-period=500ms"),
			[]string{"node", "--input-type=module", "-e", script}, "KUBECONFIG="+env.Kubeconfig(t))
	}()
	snapshot := func() int64 {
		p := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns}))
		defer func() { _ = p.Close() }()
		snap, err := p.ReadSnapshot(ctx, key)
		if err != nil || snap == nil {
			return 0
		}
		return snap.RetryOpenCount
	}
	for deadline := time.Now().Add(30 * time.Second); snapshot() < 5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the bot did not write")
		}
	}
	thief := domain.New(domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns,
		Fencing: kubestore.Fencing{Writer: "thief", Token: env.StealLease(ctx, t, ns, leaseName)}}))
	defer func() { _ = thief.Close() }()
	if err := thief.WriteSnapshot(ctx, key, &v1.StrategySnapshot{RetryOpenCount: -1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runner exec did not stop after losing the Lease")
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
	if code == 0 || !strings.Contains(out, "refused: fenced") {
		t.Fatalf("runner exec exited %d; the bot's writes were not refused as fenced:\n%s", code, out)
	}
	if now := snapshot(); now != -1 {
		t.Fatalf("the snapshot holds %d, not the new holder's -1: an old write landed after it", now)
	}
}
