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
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// dropsIfRevision turns conditional writes into unconditional ones: a lost update.
type dropsIfRevision struct{ driver.Driver }

func (s dropsIfRevision) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (
	driver.Revision, error) {
	pre.IfRevision = ""
	return s.Driver.Put(ctx, key, value, pre)
}

func (s dropsIfRevision) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	pre.IfRevision = ""
	return s.Driver.Delete(ctx, key, pre)
}

// staleReads is a client-side cache that knows only its own client's writes: a read
// returns what this client last read or wrote, however others changed the key since.
type staleReads struct {
	driver.Driver
	cache map[string]driver.Entry
}

func (s *staleReads) Get(ctx context.Context, key string) (driver.Entry, error) {
	if e, ok := s.cache[key]; ok {
		return e, nil
	}
	e, err := s.Driver.Get(ctx, key)
	if err == nil {
		s.cache[key] = e
	}
	return e, err
}

func (s *staleReads) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (
	driver.Revision, error) {
	rev, err := s.Driver.Put(ctx, key, value, pre)
	if err == nil {
		s.cache[key] = driver.Entry{Value: value, Revision: rev}
	}
	return rev, err
}

// TestSabotageIsCaught: the harness and the model tell a store that breaks the contract
// from one that keeps it. Each case runs the same clients on an in-process file store,
// wrapped per client; the honest one must be linearizable, the sabotaged ones must not.
func TestSabotageIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(driver.Driver) driver.Driver
		want porcupine.CheckResult
	}{
		{"honest", func(d driver.Driver) driver.Driver { return d }, porcupine.Ok},
		{"drops IfRevision", func(d driver.Driver) driver.Driver { return dropsIfRevision{d} }, porcupine.Illegal},
		{"serves stale reads", func(d driver.Driver) driver.Driver {
			return &staleReads{Driver: d, cache: map[string]driver.Entry{}}
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filestore.New(filepath.Join(t.TempDir(), "store"))
			if _, err := d.Init(t.Context(), true); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = d.Close() }()
			drivers := make([]driver.Driver, fileClients)
			for i := range drivers {
				drivers[i] = tc.wrap(d)
			}
			start := time.Now()
			r := run{name: "filestore, " + tc.name, keys: fileKeys, ops: 200, timeout: time.Second, drivers: drivers}
			ops, f := r.record(t.Context())
			if res, _ := check(t, r.name, len(drivers), ops, f, time.Since(start)); res != tc.want {
				t.Fatalf("the checker said %s, want %s", res, tc.want)
			}
		})
	}
}

// sabotaged are the contract breaches TestSabotageIsCaughtOnEveryBackend plants: each
// wraps one client's driver.
var sabotaged = []struct {
	name string
	wrap func(driver.Driver) driver.Driver
}{
	{"drops IfRevision", func(d driver.Driver) driver.Driver { return dropsIfRevision{d} }},
	{"serves stale reads", func(d driver.Driver) driver.Driver {
		return &staleReads{Driver: d, cache: map[string]driver.Entry{}}
	}},
}

// TestSabotageIsCaughtOnEveryBackend: the same breaches, planted in the clients of every
// backend with a server (the honest runs are each backend's own fault tests), are found
// non-linearizable: the checks that pass on those backends could fail there.
func TestSabotageIsCaughtOnEveryBackend(t *testing.T) {
	backends := []struct {
		name    string
		drivers func(t *testing.T) []driver.Driver
	}{
		{"ConfigMap", func(t *testing.T) []driver.Driver {
			clients, _ := proxiedClients(t)
			return configMaps(t, clients)
		}},
		{"StrategyState", func(t *testing.T) []driver.Driver {
			clients, _ := proxiedClients(t)
			return strategyStates(t, clients)
		}},
		{"Redis", func(t *testing.T) []driver.Driver {
			r := startRedis(t)
			return redisDrivers(t, r, same(r.Addr))
		}},
		{"PostgreSQL", func(t *testing.T) []driver.Driver {
			p := startPostgres(t)
			return postgresDrivers(t, same(fmt.Sprintf("127.0.0.1:%d", p.Port)))
		}},
		{"MongoDB", func(t *testing.T) []driver.Driver {
			m := startMongo(t)
			return mongoDrivers(t, same(m.Addr))
		}},
	}
	for _, b := range backends {
		for _, s := range sabotaged {
			t.Run(b.name+"/"+s.name, func(t *testing.T) {
				drivers := b.drivers(t) // a store of its own: the model starts from an empty one
				for i, d := range drivers {
					drivers[i] = s.wrap(d)
				}
				start := time.Now()
				r := run{name: b.name + ", " + s.name, keys: dbKeys, ops: 150, timeout: dbTimeout, drivers: drivers}
				ops, f := r.record(t.Context())
				if res, _ := check(t, r.name, len(drivers), ops, f, time.Since(start)); res != porcupine.Illegal {
					t.Fatalf("the checker said %s, want %s", res, porcupine.Illegal)
				}
			})
		}
	}
}
