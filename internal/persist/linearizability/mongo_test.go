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
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// mongoPace is sparser again than databasePace: after a cut connection the MongoDB client
// marks the server unknown and selects it again only after its next check (at least 500 ms
// later), so cuts at the other databases' pace would leave the clients waiting out most of
// the history. At most 50 cuts: a run cut 157 times on a busy machine left 201 calls
// unanswered, past what the checker decides in its time.
var mongoPace = pace{gap: 300 * time.Millisecond, gapSpread: 300 * time.Millisecond,
	down: time.Millisecond, downSpread: 5 * time.Millisecond, allOneIn: 8, most: 50}

func startMongo(t *testing.T) *testenv.Mongo {
	t.Helper()
	m, err := testenv.StartMongo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// mongoDrivers opens one driver per address (each its own client) on one store, in
// backtest-kit's partial-items collection. The clients reach one server through their
// proxies, so they share one store lock (mongostore.SharedLock), as one process's writers
// do: on the test server, FerretDB, whose conditional updates are not atomic, these
// histories check what a connection cut or a server kill does to one process's writes, not
// writers of separate processes racing.
func mongoDrivers(t *testing.T, addrs []string) []driver.Driver {
	t.Helper()
	l := domain.DatabaseLayout(domain.Partial, domain.StrategyKey("BTCUSDT", "linearizability", "e"))
	drivers := make([]driver.Driver, len(addrs))
	for i, addr := range addrs {
		c, db, err := mongostore.Connect("mongodb://" + addr +
			"/strategyops?directConnection=true&serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&maxPoolSize=4")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
		drivers[i] = retryUnsent{mongostore.New(db, l, mongostore.Fencing{}, mongostore.SharedLock("histories"))}
	}
	return initAll(t, drivers)
}

// TestMongoConnectionCuts: separate MongoDB drivers, each behind its own proxy, while
// connections are cut mid-request.
func TestMongoConnectionCuts(t *testing.T) {
	m := startMongo(t)
	ps := proxies(t, m.Addr)
	requireLinearizable(t, run{name: "mongodb, connection cuts", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: mongoDrivers(t, addrs(ps)), faults: cuts(ps, mongoPace)})
}

// TestMongoServerKill: separate MongoDB drivers while the server (FerretDB and its
// PostgreSQL) is SIGKILLed and started again, twice.
func TestMongoServerKill(t *testing.T) {
	m := startMongo(t)
	requireLinearizable(t, run{name: "mongodb, server kills", keys: dbKeys, ops: dbOps, timeout: dbTimeout,
		drivers: mongoDrivers(t, same(m.Addr)), faults: serverKills(t, "ferretdb and its postgres", m)})
}
