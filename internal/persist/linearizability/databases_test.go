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

package linearizability_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/internal/persist/redisstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const (
	// dbClients separate writers, each with its own connections, on one store.
	dbClients = 12
	dbOps     = 400
	// dbTimeout bounds each call: longer than a server's restart, so that calls wait
	// through it where the client library can.
	dbTimeout = 3 * time.Second
)

// dbKeys are the keys of the database histories.
var dbKeys = []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"}

// server is a database server a test can kill and start again.
type server interface {
	Kill()
	Restart(ctx context.Context) error
}

// serverKills SIGKILLs the server at a random point of each half of the history and
// starts it again on its folder and port.
func serverKills(t *testing.T, name string, s server) func(func() float64) faults {
	return func(progress func() float64) faults {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
		var down time.Duration
		var outages []time.Duration
		for n, half := range []float64{0, 0.5} {
			for at := half + 0.1 + 0.3*rng.Float64(); progress() < at; {
				time.Sleep(time.Millisecond)
			}
			start := time.Now()
			s.Kill()
			if err := s.Restart(context.Background()); err != nil {
				t.Errorf("restarting %s: %v", name, err)
				return faults{n: n + 1, kind: name + " kills (the restart failed)", outages: outages}
			}
			outages = append(outages, time.Since(start))
			down += time.Since(start)
		}
		return faults{n: 2, kind: fmt.Sprintf("%s SIGKILLs, down %s in all", name, down.Round(time.Millisecond)),
			outages: outages}
	}
}

// retryUnsent retries a call that failed without sending anything (a refused connection,
// a server still starting), as a runner does, until its context ends: the error of such a
// call carries no sentinel. A driver that called a sent write unsent would have it applied
// twice, which the checker sees.
type retryUnsent struct{ driver.Driver }

func unsent(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	for _, answer := range []error{driver.ErrUnknownOutcome, driver.ErrNotFound, driver.ErrConflict,
		driver.ErrFenced, driver.ErrInvalidKey, driver.ErrInvalidValue, driver.ErrTooLarge} {
		if errors.Is(err, answer) {
			return false
		}
	}
	time.Sleep(5 * time.Millisecond)
	return true
}

func (r retryUnsent) Get(ctx context.Context, key string) (driver.Entry, error) {
	for {
		e, err := r.Driver.Get(ctx, key)
		if !unsent(ctx, err) {
			return e, err
		}
	}
}

func (r retryUnsent) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (
	driver.Revision, error) {
	for {
		rev, err := r.Driver.Put(ctx, key, value, pre)
		if !unsent(ctx, err) {
			return rev, err
		}
	}
}

func (r retryUnsent) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	for {
		err := r.Driver.Delete(ctx, key, pre)
		if !unsent(ctx, err) {
			return err
		}
	}
}

// databasePace is sparser than apiServerPace: a database answers in well under a
// millisecond, so the API server's pace would leave most of its calls unanswered and the
// check vacuous.
var databasePace = pace{gap: 20 * time.Millisecond, gapSpread: 40 * time.Millisecond,
	down: time.Millisecond, downSpread: 5 * time.Millisecond, allOneIn: 8}

// batchedPace cuts the one connection batched drivers share: sparser, and at most 60 cuts,
// since each cut leaves every driver's call without an answer (and a PostgreSQL pool's
// connections must be made again), which would otherwise leave the check little to decide.
var batchedPace = pace{gap: 50 * time.Millisecond, gapSpread: 100 * time.Millisecond,
	down: time.Millisecond, downSpread: 5 * time.Millisecond, allOneIn: 1, most: 60}

// proxies puts a proxy in front of addr for each client.
func proxies(t *testing.T, addr string) []*testenv.Proxy {
	t.Helper()
	out := make([]*testenv.Proxy, dbClients)
	for i := range out {
		p, err := testenv.NewProxy(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		out[i] = p
	}
	return out
}

func startRedis(t *testing.T) *testenv.Redis {
	t.Helper()
	r, err := testenv.StartRedis(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// redisDrivers opens one driver per address (each its own client) on one store.
func redisDrivers(t *testing.T, r *testenv.Redis, addrs []string) []driver.Driver {
	t.Helper()
	drivers := make([]driver.Driver, len(addrs))
	for i, addr := range addrs {
		c, err := redisstore.Connect(fmt.Sprintf("redis://:%s@%s/0", r.Password, addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		drivers[i] = retryUnsent{redisstore.New(c, "linearizability", redisstore.Fencing{})}
	}
	return initAll(t, drivers)
}

// batchedRedisDrivers opens n drivers on one store through one client at addr, their
// writes sharing pipelines through one Batch, as a runner's stores share their connection.
func batchedRedisDrivers(t *testing.T, r *testenv.Redis, addr string, n int) []driver.Driver {
	t.Helper()
	c, err := redisstore.Connect(fmt.Sprintf("redis://:%s@%s/0", r.Password, addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	batch := redisstore.NewBatch(c)
	drivers := make([]driver.Driver, n)
	for i := range drivers {
		drivers[i] = retryUnsent{redisstore.New(c, "linearizability", redisstore.Fencing{}).WithBatch(batch)}
	}
	return initAll(t, drivers)
}

func addrs(ps []*testenv.Proxy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Addr()
	}
	return out
}

func same(addr string) []string {
	out := make([]string, dbClients)
	for i := range out {
		out[i] = addr
	}
	return out
}

// TestRedisConnectionCuts: separate Redis drivers, each behind its own proxy, while
// connections are cut mid-request.
func TestRedisConnectionCuts(t *testing.T) {
	r := startRedis(t)
	ps := proxies(t, r.Addr)
	requireLinearizable(t, run{name: "redis, connection cuts", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: redisDrivers(t, r, addrs(ps)), faults: cuts(ps, databasePace)})
}

// TestRedisBatchedConnectionCuts: drivers whose writes share pipelines (one client, one
// Batch), while its connections are cut mid-pipeline: each write of a cut pipeline has an
// unknown outcome, and the history stays linearizable.
func TestRedisBatchedConnectionCuts(t *testing.T) {
	r := startRedis(t)
	ps := proxies(t, r.Addr)
	requireLinearizable(t, run{name: "redis, batched writes, connection cuts", keys: dbKeys, ops: dbOps,
		timeout: dbTimeout, drivers: batchedRedisDrivers(t, r, ps[0].Addr(), dbClients), shared: dbClients,
		faults: cuts(ps[:1], batchedPace)})
}

// TestRedisServerKill: separate Redis drivers while the server is SIGKILLed and started
// again, twice; its append-only file (fsync always) keeps every acknowledged write.
func TestRedisServerKill(t *testing.T) {
	r := startRedis(t)
	requireLinearizable(t, run{name: "redis, server kills", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: redisDrivers(t, r, same(r.Addr)), faults: serverKills(t, "redis-server", r)})
}

func startPostgres(t *testing.T) *testenv.Postgres {
	t.Helper()
	p, err := testenv.StartPostgres(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// linearizabilityLayout is the store of the PostgreSQL histories, in backtest-kit's
// partial-items table.
var linearizabilityLayout = dblayout.Layout{Store: "linearizability", Table: "partial-items", ValueField: "payload",
	When: true, KeyField: "signalId", Scope: []dblayout.Field{{Name: "symbol", Value: "BTCUSDT"},
		{Name: "strategyName", Value: "linearizability"}, {Name: "exchangeName", Value: "e"}}}

func postgresPool(t *testing.T, addr, params string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(),
		fmt.Sprintf("postgres://strategyops@%s/postgres?sslmode=disable&connect_timeout=2%s", addr, params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// postgresDrivers opens one driver per address (each its own pool) on one store.
func postgresDrivers(t *testing.T, addrs []string) []driver.Driver {
	t.Helper()
	drivers := make([]driver.Driver, len(addrs))
	for i, addr := range addrs {
		drivers[i] = retryUnsent{pgstore.New(postgresPool(t, addr, ""), linearizabilityLayout, pgstore.Fencing{})}
	}
	return initAll(t, drivers)
}

// batchedPostgresDrivers opens n drivers on one store through one pool at addr, their
// writes sharing batches through one Batch, as a runner's stores share their connection.
// The pool holds one connection, so that a cut ends one call or one batch, not also the
// calls later sent on idle connections the cut killed unseen (the fault budget counts one
// dead connection per cut).
func batchedPostgresDrivers(t *testing.T, addr string, n int) []driver.Driver {
	t.Helper()
	pool := postgresPool(t, addr, "&pool_max_conns=1")
	batch := pgstore.NewBatch(pool)
	drivers := make([]driver.Driver, n)
	for i := range drivers {
		drivers[i] = retryUnsent{pgstore.New(pool, linearizabilityLayout, pgstore.Fencing{}).WithBatch(batch)}
	}
	return initAll(t, drivers)
}

// TestPostgresBatchedConnectionCuts: drivers whose writes share batches (one pool, one
// Batch), while its connections are cut mid-batch: each write of a cut batch has an
// unknown outcome, and the history stays linearizable.
func TestPostgresBatchedConnectionCuts(t *testing.T) {
	p := startPostgres(t)
	ps := proxies(t, fmt.Sprintf("127.0.0.1:%d", p.Port))
	requireLinearizable(t, run{name: "postgresql, batched writes, connection cuts", keys: dbKeys, ops: dbOps,
		timeout: dbTimeout, drivers: batchedPostgresDrivers(t, ps[0].Addr(), dbClients), shared: dbClients,
		faults: cuts(ps[:1], batchedPace)})
}

// TestPostgresConnectionCuts: separate PostgreSQL drivers, each behind its own proxy,
// while connections are cut mid-request.
func TestPostgresConnectionCuts(t *testing.T) {
	p := startPostgres(t)
	ps := proxies(t, fmt.Sprintf("127.0.0.1:%d", p.Port))
	requireLinearizable(t, run{name: "postgresql, connection cuts", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: postgresDrivers(t, addrs(ps)), faults: cuts(ps, databasePace)})
}

// TestPostgresServerKill: separate PostgreSQL drivers while the server is SIGKILLed and
// started again, twice; it recovers every committed write from its log.
func TestPostgresServerKill(t *testing.T) {
	p := startPostgres(t)
	requireLinearizable(t, run{name: "postgresql, server kills", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: postgresDrivers(t, same(fmt.Sprintf("127.0.0.1:%d", p.Port))), faults: serverKills(t, "postgres", p)})
}
