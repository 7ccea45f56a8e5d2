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

package runnercmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/testenv/runstate"
)

// The feed every run in this file trades: twelve simulated hours on two symbols.
var (
	restartStart   = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	restartUntil   = restartStart.Add(12 * time.Hour)
	restartSymbols = []string{"BTCUSDT", "ETHUSDT"}
)

// supervised runs a runner as a kubelet would: started again whenever it exits non-zero,
// until it exits 0 (it reached --until), ctx ends, or the test gives up.
type supervised struct {
	restarts int
	err      error
	mu       sync.Mutex
	lives    []*process
}

func supervise(ctx context.Context, kubeconfig string, args []string, done *sync.WaitGroup,
	env ...string) *supervised {
	sv := &supervised{}
	done.Go(func() {
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			p, err := launch(kubeconfig, args, env...)
			if err != nil {
				sv.err = err
				return
			}
			sv.mu.Lock()
			sv.lives = append(sv.lives, p)
			sv.mu.Unlock()
			select {
			case <-p.done:
			case <-ctx.Done():
				p.kill()
				sv.err = ctx.Err()
				return
			}
			if p.cmd.ProcessState.ExitCode() == 0 {
				return
			}
			sv.restarts++
			time.Sleep(500 * time.Millisecond) // a kubelet's back-off, short
		}
		sv.err = fmt.Errorf("still not done after %d restarts", sv.restarts)
	})
	return sv
}

// killCurrent SIGKILLs the runner's current life (the supervisor starts another). Between
// two lives it waits for the next, up to 10 seconds; it reports whether it killed one.
func (sv *supervised) killCurrent() bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		sv.mu.Lock()
		var p *process
		if len(sv.lives) > 0 {
			p = sv.lives[len(sv.lives)-1]
		}
		sv.mu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.done:
			continue // between two lives
		default:
		}
		p.kill()
		return true
	}
	return false
}

func (sv *supervised) logs() string {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	var b strings.Builder
	for i, p := range sv.lives {
		fmt.Fprintf(&b, "--- life %d:\n%s", i+1, p.log())
	}
	return b.String()
}

// history is the run state (runstate.Of) a runner left in p, from its ledger entries.
func history(t *testing.T, entries map[string][]*domain.HistoryEntry, p *domain.Persistence,
	strategyName string) map[string]string {
	t.Helper()
	out, err := runstate.Of(t.Context(), entries, p, strategyName, "simulated", restartSymbols)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reference runs the feed once, straight through, on the File backend in this process.
func reference(t *testing.T, strategyName string) map[string]string {
	return referenceUntil(t, strategyName, restartUntil)
}

// referenceUntil is reference for the feed's first candles, up to until.
func referenceUntil(t *testing.T, strategyName string, until time.Time) map[string]string {
	dir := t.TempDir()
	s := runner.Settings{StrategyName: strategyName, ExchangeName: "simulated", Symbols: restartSymbols,
		Backend: v1.BackendFile, DataDir: dir, Strategy: "indicator", StrategyOptions: map[string]string{},
		Market: "simulated", Seed: 1, Start: restartStart, Until: until, Speed: 1e6,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	if err := run(context.Background(), s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	p := domain.New(domain.FileBackend(dir))
	defer func() { _ = p.Close() }()
	return history(t, ledgers(t, p, strategyName), p, strategyName)
}

// ledgers reads every symbol's ledger from p.
func ledgers(t *testing.T, p *domain.Persistence, strategyName string) map[string][]*domain.HistoryEntry {
	t.Helper()
	entries, err := readLedgers(t.Context(), p, strategyName)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// readLedgers reads every symbol's ledger from p.
func readLedgers(ctx context.Context, p *domain.Persistence, strategyName string) (map[string][]*domain.HistoryEntry,
	error) {
	return runstate.Ledgers(ctx, p, strategyName, "simulated", restartSymbols)
}

// compare fails t unless got, a runner's ledger and final state on backend b, is the
// uninterrupted run's, with enough closed signals to prove something.
func compare(t *testing.T, b v1.PersistenceBackend, got, want map[string]string, sv *supervised) {
	t.Helper()
	closed := 0
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %s differs from the uninterrupted run:\n got  %s\n want %s", b, id, got[id], w)
		}
		if strings.Contains(w, `"kind":"closed"`) {
			closed++
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d ledger entries, the uninterrupted run has %d", b, len(got), len(want))
	}
	if closed < 5 {
		t.Errorf("%s: only %d signals closed in the feed: the comparison proves little", b, closed)
	}
	t.Logf("%s: %d signals (%d closed) as in the uninterrupted run; the runner was started again %d times",
		b, len(want)-len(restartSymbols), closed, sv.restarts)
	if t.Failed() {
		t.Logf("%s runner lives:\n%s", b, sv.logs())
	}
}

// TestTradingThroughControlPlaneRestarts: runners on ConfigMap and on StrategyState trade
// while kube-apiserver, then etcd, are SIGKILLed and started again, and then the runners
// themselves are SIGKILLed. Each keeps or regains its Lease (a runner that loses it, or is
// killed, is started again, as a kubelet would), and each ends with the ledger, open
// signal and schedule of an uninterrupted run of the same feed: no signal lost, none
// closed twice (every ledger event carries its sequence, so a second close differs).
func TestTradingThroughControlPlaneRestarts(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)
	backends := map[v1.PersistenceBackend]string{v1.BackendConfigMap: "restart-cm", v1.BackendStrategyState: "restart-ss"}
	var done sync.WaitGroup
	stop, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); done.Wait() }) // a failing test stops its runners too
	runs := map[v1.PersistenceBackend]*supervised{}
	for b, name := range backends {
		createStoreObjects(ctx, t, ns, b, name, restartSymbols)
		runs[b] = supervise(stop, kubeconfig, []string{"--strategy-name=" + name, "--exchange=simulated",
			"--symbols=" + strings.Join(restartSymbols, ","), "--backend=" + string(b), "--namespace=" + ns,
			"--lease=" + name + "-runner", "--start=" + restartStart.Format(time.RFC3339),
			"--until=" + restartUntil.Format(time.RFC3339), "--speed=1200",
			"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}, &done)
	}

	faults := []struct {
		what        string
		kill, start func() error
	}{
		{"kube-apiserver", env.KillAPIServer, env.StartAPIServer},
		{"etcd", env.KillEtcd, env.StartEtcd},
	}
	for _, f := range faults {
		time.Sleep(8 * time.Second) // trading
		if err := f.kill(); err != nil {
			t.Fatalf("killing %s: %v", f.what, err)
		}
		time.Sleep(3 * time.Second) // down
		if err := f.start(); err != nil {
			t.Fatalf("starting %s again: %v", f.what, err)
		}
		t.Logf("%s SIGKILLed and started again", f.what)
	}
	time.Sleep(4 * time.Second)
	for b, sv := range runs {
		if !sv.killCurrent() {
			t.Errorf("the %s runner was not running when it was to be SIGKILLed", b)
		}
	}
	t.Log("the runners were SIGKILLed")
	done.Wait()

	for b, name := range backends {
		sv := runs[b]
		if sv.err != nil {
			t.Fatalf("%s runner: %v; its lives:\n%s", b, sv.err, sv.logs())
		}
		want := reference(t, name)
		p := domain.New(kubeBackend(b, ns))
		entries := map[string][]*domain.HistoryEntry{}
		for _, sym := range restartSymbols {
			list, err := domain.ReadHistory(ctx, env.Client, ns, domain.StrategyKey(sym, name, "simulated"))
			if err != nil {
				t.Fatal(err)
			}
			entries[sym] = list
		}
		got := history(t, entries, p, name)
		_ = p.Close()
		compare(t, b, got, want, sv)
	}
}

// TestTradingThroughDatabaseKills: runners on Redis, PostgreSQL and MongoDB trade while
// their database server is SIGKILLed and started again, and while the runners themselves are
// SIGKILLed (and started again, as a kubelet would). Each ends with the ledger, open signal
// and schedule of an uninterrupted run of the same feed.
func TestTradingThroughDatabaseKills(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	kubeconfig := env.Kubeconfig(t)
	rs, pg, mg := startRedis(t), startPostgres(t), startMongo(t)
	type server interface {
		Kill()
		Restart(context.Context) error
	}
	backends := []struct {
		b      v1.PersistenceBackend
		name   string
		url    string
		server server
	}{
		{v1.BackendRedis, "restart-redis", rs.URL, rs},
		{v1.BackendPostgreSQL, "restart-pg", pg.URL, pg},
		{v1.BackendMongoDB, "restart-mongo", mg.URL("restart"), mg},
	}
	var done sync.WaitGroup
	stop, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); done.Wait() })
	runs := make([]*supervised, len(backends))
	for i, c := range backends {
		runs[i] = supervise(stop, kubeconfig, []string{"--strategy-name=" + c.name, "--exchange=simulated",
			"--symbols=" + strings.Join(restartSymbols, ","), "--backend=" + string(c.b), "--namespace=" + ns,
			"--lease=" + c.name + "-runner", "--start=" + restartStart.Format(time.RFC3339),
			"--until=" + restartUntil.Format(time.RFC3339), "--speed=1200",
			"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}, &done,
			domain.StoreURLEnv+"="+c.url)
	}
	time.Sleep(8 * time.Second) // trading
	for _, c := range backends {
		c.server.Kill()
	}
	time.Sleep(2 * time.Second) // down
	for _, c := range backends {
		if err := c.server.Restart(ctx); err != nil {
			t.Fatalf("starting the %s server again: %v", c.b, err)
		}
	}
	t.Log("the Redis, PostgreSQL and MongoDB servers were SIGKILLed and started again")
	for range 2 {
		time.Sleep(5 * time.Second)
		for i, sv := range runs {
			if !sv.killCurrent() {
				t.Errorf("the %s runner was not running when it was to be SIGKILLed", backends[i].b)
			}
		}
		t.Log("the runners were SIGKILLed")
	}
	done.Wait()

	for i, c := range backends {
		sv := runs[i]
		if sv.err != nil {
			t.Fatalf("%s runner: %v; its lives:\n%s", c.b, sv.err, sv.logs())
		}
		db, err := domain.OpenDatabase(ctx, c.b, c.url)
		if err != nil {
			t.Fatal(err)
		}
		p := domain.New(db.Backend(domain.NoFencing))
		got := history(t, ledgers(t, p, c.name), p, c.name)
		_ = p.Close()
		db.Close()
		compare(t, c.b, got, reference(t, c.name), sv)
	}
}

func kubeBackend(b v1.PersistenceBackend, ns string) domain.Backend {
	if b == v1.BackendStrategyState {
		return domain.StrategyStateBackend(env.Client, domain.KubeOptions{Namespace: ns})
	}
	return domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns})
}

// createStoreObjects makes the store objects the operator would make for a strategy on b.
func createStoreObjects(ctx context.Context, t *testing.T, ns string, b v1.PersistenceBackend, name string,
	symbols []string) {
	t.Helper()
	backend := domain.ConfigMapBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true})
	if b == v1.BackendStrategyState {
		backend = domain.StrategyStateBackend(env.Client, domain.KubeOptions{Namespace: ns, Create: true})
	}
	for _, c := range domain.StrategyContexts(name, "simulated", symbols) {
		if err := domain.CreateObject(ctx, backend, c.Domain, c.Key); err != nil {
			t.Fatal(err)
		}
	}
}
