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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

// storeContents reads every entry of every store of the strategy at url, as canonical JSON
// by domain, context and key.
func storeContents(t *testing.T, b v1.PersistenceBackend, url, strategyName string) map[string]string {
	t.Helper()
	ctx := t.Context()
	db, err := domain.OpenDatabase(ctx, b, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	backend := db.Backend(domain.NoFencing)
	out := map[string]string{}
	for _, c := range domain.StrategyContexts(strategyName, "simulated", restartSymbols) {
		drv, err := backend(ctx, c.Domain, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.Init(ctx, false); err != nil {
			t.Fatal(err)
		}
		keys, err := drv.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			e, err := drv.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(e.Value, &v); err != nil {
				t.Fatal(err)
			}
			canon, err := jsonx.Canonical(v)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s %s %s", c.Domain, c.Key, k)] = canon
		}
		_ = drv.Close()
	}
	return out
}

// wipe removes every store of the strategy at url.
func wipe(t *testing.T, b v1.PersistenceBackend, url, strategyName string) {
	t.Helper()
	ctx := t.Context()
	db, err := domain.OpenDatabase(ctx, b, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range domain.StrategyContexts(strategyName, "simulated", restartSymbols) {
		drv, err := db.Backend(domain.NoFencing)(ctx, c.Domain, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := drv.DeleteAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// replicated is a runner of one strategy on a Redis server, with a PostgreSQL replica
// named copy: its arguments and environment, and its servers.
type replicated struct {
	rs         *testenv.Redis
	pg         *testenv.Postgres
	kubeconfig string
	args, urls []string
}

// replicatedUntil is where the replicated runners' feed ends: six simulated hours.
var replicatedUntil = restartStart.Add(6 * time.Hour)

// newReplicated starts the servers (Redis with redisSettings) of a replicated runner of
// strategy name, which trades six simulated hours in six seconds.
func newReplicated(t *testing.T, name string, redisSettings ...string) *replicated {
	ns := env.Namespace(t.Context(), t)
	r := &replicated{rs: startRedis(t, redisSettings...), pg: startPostgres(t), kubeconfig: env.Kubeconfig(t)}
	r.args = []string{"--strategy-name=" + name, "--exchange=simulated",
		"--symbols=" + strings.Join(restartSymbols, ","), "--backend=Redis", "--namespace=" + ns,
		"--lease=" + name + "-runner", "--start=" + restartStart.Format(time.RFC3339),
		"--until=" + replicatedUntil.Format(time.RFC3339), "--speed=3600", "--lease-duration=4s",
		"--renew-deadline=3s", "--retry-period=500ms", "--replicas=copy:PostgreSQL"}
	r.urls = []string{domain.StoreURLEnv + "=" + r.rs.URL, domain.ReplicaURLEnv("copy") + "=" + r.pg.URL}
	return r
}

// start starts the runner (or one of its tools) with args.
func (r *replicated) start(t *testing.T, args []string) *process {
	t.Helper()
	return startProcess(t, r.kubeconfig, args, r.urls...)
}

// run runs the runner (or a tool) with args, which must exit 0.
func (r *replicated) run(t *testing.T, what string, args []string) {
	t.Helper()
	p := r.start(t, args)
	if code := p.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("%s exited %d; its log:\n%s", what, code, p.log())
	}
}

// TestReplicasFollowTheBackend: a runner on Redis, with a cache and a PostgreSQL replica,
// trades; the replica then holds what Redis holds. A replica that lost everything is made
// whole again by runner rebuild-replicas, and by the next runner's start.
func TestReplicasFollowTheBackend(t *testing.T) {
	const name = "replicated"
	r := newReplicated(t, name)
	rs, pg := r.rs, r.pg
	args := append(slices.Clone(r.args), "--cache-max-entries=100")
	run := func(what string, args []string) { t.Helper(); r.run(t, what, args) }
	same := func(when string) {
		t.Helper()
		primary := storeContents(t, v1.BackendRedis, rs.URL, name)
		if len(primary) == 0 {
			t.Fatal("the runner left nothing in Redis")
		}
		if replica := storeContents(t, v1.BackendPostgreSQL, pg.URL, name); !maps.Equal(replica, primary) {
			t.Fatalf("%s: the replica holds %d entries, Redis %d; they differ:\nreplica %v\nprimary %v", when,
				len(replica), len(primary), replica, primary)
		}
	}

	run("the runner", args)
	same("after the run")

	wipe(t, v1.BackendPostgreSQL, pg.URL, name)
	run("runner rebuild-replicas", append([]string{"rebuild-replicas"}, args...))
	same("after runner rebuild-replicas")

	wipe(t, v1.BackendPostgreSQL, pg.URL, name)
	run("the runner's next start", args) // --until has passed: it restores, and stops
	same("after the next start")
}

// TestReplicaKeepsWhatThePrimaryLost: Redis without its append-only file is SIGKILLed and
// comes back empty. The runner's next start finds the PostgreSQL replica ahead of it
// (domain.ErrPrimaryBehind), refuses to trade and leaves the replica whole; runner
// restore-from-replica brings the state back, and the runner then resumes on it.
func TestReplicaKeepsWhatThePrimaryLost(t *testing.T) {
	ctx := context.Background()
	const name = "rescued"
	r := newReplicated(t, name, "--appendonly", "no") // nothing survives a restart
	rs, pg, args := r.rs, r.pg, r.args
	run := func(what string, args []string) { t.Helper(); r.run(t, what, args) }
	holds := func(where string, url string, b v1.PersistenceBackend, want map[string]string) {
		t.Helper()
		if got := storeContents(t, b, url, name); !maps.Equal(got, want) {
			t.Fatalf("%s holds %d entries, want %d:\ngot  %v\nwant %v", where, len(got), len(want), got, want)
		}
	}

	run("the runner", args)
	before := storeContents(t, v1.BackendRedis, rs.URL, name)
	open := 0
	for k := range before {
		if strings.HasPrefix(k, string(domain.Signal)+" ") {
			open++
		}
	}
	if open == 0 {
		t.Fatalf("no signal is open at the end of the run; the test needs one: %v", before)
	}
	holds("the replica after the run", pg.URL, v1.BackendPostgreSQL, before)

	rs.Kill()
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	holds("Redis after its restart", rs.URL, v1.BackendRedis, map[string]string{})

	p := r.start(t, args)
	if code := p.exit(t, 2*time.Minute); code == 0 || !strings.Contains(p.log(), domain.ErrPrimaryBehind.Error()) {
		t.Fatalf("the runner started on a backend behind its replica (exit %d); its log:\n%s", code, p.log())
	}
	holds("the replica after the refused start", pg.URL, v1.BackendPostgreSQL, before)
	holds("Redis after the refused start", rs.URL, v1.BackendRedis, map[string]string{})

	restore := append([]string{"restore-from-replica", "copy"}, args...)
	run("runner restore-from-replica", restore)
	holds("Redis after the restore", rs.URL, v1.BackendRedis, before)
	p = r.start(t, restore)
	if code := p.exit(t, 2*time.Minute); code == 0 || !strings.Contains(p.log(), domain.ErrNotBehind.Error()) {
		t.Fatalf("a second restore, from a replica no longer ahead, ran (exit %d); its log:\n%s", code, p.log())
	}

	// --until has passed: each start restores the same state, rebuilds the replica, and
	// stops; a start that writes nothing leaves the next one free to start too.
	for _, start := range []string{"the runner's next start", "the start after it"} {
		run(start, args)
		holds("Redis after "+start, rs.URL, v1.BackendRedis, before)
		holds("the replica after "+start, pg.URL, v1.BackendPostgreSQL, before)
	}
}

// TestPromotedReplicaResumes: a runner on Redis with a PostgreSQL replica trades, and
// Redis is lost for good mid-feed (stopped, its folder removed). The runner then started
// on the replica, as the operator starts it once it has promoted the replica (the
// annotation trading.strategyops.dev/primary-lost), resumes there and ends the feed with
// the ledger and state of an uninterrupted run.
func TestPromotedReplicaResumes(t *testing.T) {
	ctx := context.Background()
	const name = "promoted"
	r := newReplicated(t, name)
	slow := slices.Clone(r.args) // a feed long enough to lose Redis in the middle of it
	slow[slices.Index(slow, "--speed=3600")] = "--speed=600"
	p := r.start(t, slow)
	entries := func(state *domain.Persistence) int {
		n := 0
		for _, list := range ledgers(t, state, name) {
			n += len(list)
		}
		return n
	}
	db, err := domain.OpenDatabase(ctx, v1.BackendPostgreSQL, r.pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	state := domain.New(db.Backend(domain.NoFencing))
	var atLoss int // ledger entries the replica held when Redis was lost
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if atLoss = entries(state); atLoss >= 3 {
			break
		}
		if time.Now().After(deadline) || ended(p) {
			t.Fatalf("the replica holds %d ledger entries; the runner's log:\n%s", atLoss, p.log())
		}
	}
	if ended(p) {
		t.Fatalf("the runner ended the feed before Redis was lost; its log:\n%s", p.log())
	}
	r.rs.Stop()
	p.kill() // as the operator stops the pod for the promotion

	promoted := slices.DeleteFunc(slices.Clone(r.args), func(a string) bool { return strings.HasPrefix(a, "--replicas=") })
	promoted[slices.Index(promoted, "--backend=Redis")] = "--backend=PostgreSQL"
	p = startProcess(t, r.kubeconfig, promoted, domain.StoreURLEnv+"="+r.pg.URL)
	if code := p.exit(t, 2*time.Minute); code != 0 {
		t.Fatalf("the runner on the promoted replica exited %d; its log:\n%s", code, p.log())
	}
	got := history(t, ledgers(t, state, name), state, name)
	want := referenceUntil(t, name, replicatedUntil)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s differs from the uninterrupted run:\n got  %s\n want %s", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d entries, the uninterrupted run has %d", len(got), len(want))
	}
	if final := entries(state); final <= atLoss {
		t.Errorf("the ledger held %d entries when Redis was lost and %d at the end: nothing was traded on the "+
			"promoted replica", atLoss, final)
	}
}

func ended(p *process) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
