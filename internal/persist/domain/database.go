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

package domain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// DatabaseLayout is where context k of domain d lives in a database: the six crash-state
// kinds in the tables (or collections) of backtest-kit's own database adapters, with their
// fields — signal-items, schedule-items and strategy-items one row per symbol, strategy and
// exchange with the value in payload; risk-items one per risk profile and exchange with
// positions; partial-items and breakeven-items one per signal, keyed by signalId — and
// this project's ledger in its own table (its archive in another). A bot on the official
// adapter and a runner of this project read each other's state.
func DatabaseLayout(d Domain, k Key) dblayout.Layout {
	name := string(d) + " " + k.String()
	fields := []dblayout.Field{
		{Name: "symbol", Value: k.Symbol},
		{Name: "strategyName", Value: k.StrategyName},
		{Name: "exchangeName", Value: k.ExchangeName},
	}
	l := dblayout.Layout{Store: name, Table: string(d) + "-items", Scope: fields, ValueField: "payload"}
	switch d {
	case Signal, Schedule:
		l.Only, l.NullableValue = k.Symbol, true
	case Strategy:
		l.Only, l.NullableValue = strategyEntity, true
	case Risk:
		l.Scope = []dblayout.Field{{Name: "riskName", Value: k.RiskName}, {Name: "exchangeName", Value: k.ExchangeName}}
		l.Only, l.ValueField, l.When = riskEntity, "positions", true
	case Partial, Breakeven:
		l.KeyField, l.When = "signalId", true
	case HistoryArchive:
		return dblayout.Archive(name)
	default:
		return dblayout.Own(name)
	}
	return l
}

// StoreURLEnv is the environment variable that holds a database backend's connection URL
// in a runner's container (set from the Secret the Strategy names).
const StoreURLEnv = "STORE_URL"

// ReplicaURLEnv is the environment variable that holds the connection URL of the replica
// named name (a DNS label) in a runner's container: STORE_REPLICA_<NAME>_URL.
func ReplicaURLEnv(name string) string {
	return "STORE_REPLICA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_URL"
}

// Database is an open connection to the database of a backend whose home is InDatabase,
// shared by every store a Backend opens on it.
type Database struct {
	kind   v1.PersistenceBackend
	tables bool   // Kind.Tables
	id     string // the backend and a digest of the URL: which database this is
	conn   Connection
}

// ErrBadURL: a connection URL that is not one of the backend's. The error never repeats
// the URL, which holds credentials.
var ErrBadURL = errors.New("not a valid connection URL")

// OpenDatabase connects to the database of backend b at url (nothing is sent before the
// first call: see Check).
func OpenDatabase(ctx context.Context, b v1.PersistenceBackend, url string) (*Database, error) {
	k, err := lookupAt(b, InDatabase)
	if err != nil {
		return nil, err
	}
	conn, err := k.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	sum := sha256.Sum256([]byte(url))
	return &Database{kind: b, tables: k.Tables, id: string(b) + ":" + hex.EncodeToString(sum[:]), conn: conn}, nil
}

// Backend is the domain backend of the database, writing under fencing f (none when its
// token is 0).
func (db *Database) Backend(f driver.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return db.conn.Store(DatabaseLayout(d, k), f), nil
	}
}

// ownStore is the driver of the store named name in this project's own table.
func (db *Database) ownStore(name string, f driver.Fencing) driver.Driver {
	return db.conn.Store(dblayout.Own(name), f)
}

// Check connects, and prepares the database for the contexts (PostgreSQL's tables): an
// error says what failed, naming the backend and the server's address.
func (db *Database) Check(ctx context.Context, contexts []Context) error {
	b := db.Backend(driver.Fencing{})
	for _, c := range contexts {
		d, err := b(ctx, c.Domain, c.Key)
		if err != nil {
			return err
		}
		if _, err := d.Init(ctx, false); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the connections.
func (db *Database) Close() { db.conn.Close() }

// NoFencing writes unfenced: the operator's own writes, tools.
var NoFencing = driver.Fencing{}

// Durability reads the server's persistence settings and says which acknowledged writes a
// crash of the server (or its machine) could lose; empty when none.
func (db *Database) Durability(ctx context.Context) (string, error) { return db.conn.Durability(ctx) }
