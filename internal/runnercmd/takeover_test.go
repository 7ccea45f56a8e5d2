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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestDeposedHolderLandsNoWrite: on every backend a Lease guards, a runner stalled
// (SIGSTOP) right after taking its fencing token, and resumed once another runner has taken
// the Lease over and trades, lands no write on any store of the strategy and exits
// non-zero; the new holder trades on. The new holder fenced every store before it read
// its state (each records its token), so the stores it has not written yet refuse the old
// holder too.
func TestDeposedHolderLandsNoWrite(t *testing.T) {
	for _, b := range domain.Backends(domain.InObjects, domain.InDatabase) {
		t.Run(string(b), func(t *testing.T) { deposedHolder(t, b) })
	}
}

func deposedHolder(t *testing.T, b v1.PersistenceBackend) {
	ctx := context.Background()
	ns := env.Namespace(ctx, t)
	const name = "deposed"
	symbols := []string{"BTCUSDT", "ETHUSDT", "SOLUSDT"}
	var extraEnv []string
	var state domain.Backend // reads what the stores record, unfenced
	var url string
	if domain.HomeOf(b) == domain.InDatabase {
		url = testenv.StartDatabase(t, string(b), "deposed")
		extraEnv = append(extraEnv, domain.StoreURLEnv+"="+url)
		db, err := domain.OpenDatabase(ctx, b, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		state = db.Backend(domain.NoFencing)
	} else {
		createStoreObjects(ctx, t, ns, b, name, symbols)
		var err error
		if state, err = domain.KubeBackend(b, env.Client, domain.KubeOptions{Namespace: ns}); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--strategy-name=" + name, "--exchange=simulated", "--symbols=" + strings.Join(symbols, ","),
		"--backend=" + string(b), "--namespace=" + ns, "--lease=" + name + "-runner",
		"--start=2026-11-01T00:00:00Z", "--speed=600",
		"--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"}
	kubeconfig := env.Kubeconfig(t)

	a := startProcess(t, kubeconfig, args, append([]string{stallTokenEnv + "=1"}, extraEnv...)...)
	tokenA := token(a.waitLog(t, "Acquired the lease", 30*time.Second))
	for deadline := time.Now().Add(10 * time.Second); !a.stopped(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("runner A did not stall after taking its token; its log:\n%s", a.log())
		}
	}
	bb := startProcess(t, kubeconfig, args, extraEnv...)
	tokenB := token(bb.waitLog(t, "Acquired the lease", 30*time.Second))
	if tokenB <= tokenA {
		t.Fatalf("runner B's token %d is not above A's %d", tokenB, tokenA)
	}
	// B trades: it has restored, and writes. It writes ahead on every candle, so its first
	// signal waits on as many commits as candles come before it. On PostgreSQL with every
	// core busy (make test-stress) it once did not come within a minute; whether slow or
	// stuck was not seen then (a runner that times out now prints its stacks).
	wait := 3 * time.Minute
	if b == v1.BackendPostgreSQL {
		// Should B not trade, what PostgreSQL's sessions hold and wait for, read while both
		// runners still hold theirs (the failed wait below ends B, for its stacks).
		for deadline := time.Now().Add(wait); !bb.logged("Signal opened") && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if !bb.logged("Signal opened") {
			t.Logf("PostgreSQL's sessions and locks:\n%s", postgresSessions(url))
			wait = time.Second
		}
	}
	bb.waitLog(t, "Signal opened", wait)
	// B raised the floor on every store, also on those it has not written.
	for _, c := range domain.StrategyContexts(name, "simulated", symbols) {
		if got := recordedToken(ctx, t, state, c); got < tokenB {
			t.Errorf("the %s store of %s records token %d, below the new holder's %d", c.Domain, c.Key, got, tokenB)
		}
	}

	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code := a.exit(t, 20*time.Second); code == 0 {
		t.Fatalf("the deposed runner exited 0; its log:\n%s", a.log())
	}
	if a.logged("Signal opened") || a.logged("Signal scheduled") {
		t.Fatalf("the deposed runner traded after waking; its log:\n%s", a.log())
	}
	for _, c := range domain.StrategyContexts(name, "simulated", symbols) {
		if got := recordedToken(ctx, t, state, c); got == tokenA {
			t.Errorf("the %s store of %s records runner A's token %d: A wrote after the takeover", c.Domain,
				c.Key, tokenA)
		}
	}
	time.Sleep(time.Second)
	if bb.logged("Runner stopped") {
		t.Fatalf("runner B stopped; its log:\n%s", bb.log())
	}
}

// recordedToken is the fencing token the store of c records on b.
func recordedToken(ctx context.Context, t *testing.T, b domain.Backend, c domain.Context) int64 {
	t.Helper()
	drv, err := b(ctx, c.Domain, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = drv.Close() }()
	r, ok := drv.(driver.TokenRecorder)
	if !ok {
		t.Fatalf("the %s store records no tokens", c.Domain)
	}
	tok, err := r.RecordedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// postgresSessions lists the sessions of the PostgreSQL server at url (what each runs,
// waits for, and since when its transaction is open) and the locks each holds or waits
// for, or why it could not.
func postgresSessions(url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = conn.Close(ctx) }()
	var out strings.Builder
	for _, q := range []string{
		`SELECT pid, pg_blocking_pids(pid), state, coalesce(wait_event_type || ':' || wait_event, ''),
			coalesce((now() - xact_start)::text, ''), left(query, 160)
			FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
		`SELECT pid, locktype, coalesce(relation::regclass::text, transactionid::text, virtualxid, objid::text, ''),
			mode, granted FROM pg_locks WHERE pid <> pg_backend_pid() ORDER BY granted, pid`,
	} {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			return out.String() + err.Error()
		}
		for rows.Next() {
			values, err := rows.Values()
			if err != nil {
				return out.String() + err.Error()
			}
			fmt.Fprintln(&out, values...)
		}
		rows.Close()
		out.WriteString("\n")
	}
	return out.String()
}
