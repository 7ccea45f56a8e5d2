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
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/internal/persist/redisstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// DatabaseLayout is where context k of domain d lives in a database: the six crash-state
// kinds in the tables (or collections) of backtest-kit's own database adapters, with their
// fields — signal-items, schedule-items and strategy-items one row per symbol, strategy and
// exchange with the value in payload; risk-items one per risk profile and exchange with
// positions; partial-items and breakeven-items one per signal, keyed by signalId — and
// this project's ledger in its own table. A bot on the official adapter and a runner of
// this project read each other's state.
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
	default:
		return dblayout.Own(name)
	}
	return l
}

// PostgresBackend keeps every context in the PostgreSQL database of pool, laid out by
// DatabaseLayout, written under fencing f (none when its token is 0).
func PostgresBackend(pool *pgxpool.Pool, f pgstore.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return pgstore.New(pool, DatabaseLayout(d, k), f), nil
	}
}

// MongoBackend keeps every context in the MongoDB database db, laid out by DatabaseLayout,
// written under fencing f (none when its token is 0).
func MongoBackend(db *mongo.Database, f mongostore.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return mongostore.New(db, DatabaseLayout(d, k), f), nil
	}
}

// StoreURLEnv is the environment variable that holds a database backend's connection URL
// in a runner's container (set from the Secret the Strategy names).
const StoreURLEnv = "STORE_URL"

// ReplicaURLEnv is the environment variable that holds the connection URL of the replica
// named name (a DNS label) in a runner's container: STORE_REPLICA_<NAME>_URL.
func ReplicaURLEnv(name string) string {
	return "STORE_REPLICA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_URL"
}

// Database is an open connection to the database of a database backend (Redis,
// PostgreSQL, MongoDB), shared by every store a Backend opens on it.
type Database struct {
	kind  v1.PersistenceBackend
	pool  *pgxpool.Pool
	redis *redis.Client
	mongo *mongo.Database
	// mongoLoss is what the MongoDB URL's write concern could lose (mongostore.Durability).
	mongoLoss string
}

// ErrBadURL: a connection URL that is not one of the backend's. The error never repeats
// the URL, which holds credentials.
var ErrBadURL = errors.New("not a valid connection URL")

// OpenDatabase connects to the database of backend b at url (nothing is sent before the
// first call: see Check).
func OpenDatabase(ctx context.Context, b v1.PersistenceBackend, url string) (*Database, error) {
	db := &Database{kind: b}
	switch b {
	case v1.BackendPostgreSQL:
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (want postgres://user:password@host:port/database)", b, ErrBadURL)
		}
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = 10 * time.Second
		}
		if db.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
	case v1.BackendRedis:
		c, err := redisstore.Connect(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (want redis://[user:password@]host:port/db)", b, ErrBadURL)
		}
		db.redis = c
	case v1.BackendMongoDB:
		_, m, err := mongostore.Connect(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (want mongodb://[user:password@]host:port/database)", b, ErrBadURL)
		}
		db.mongo, db.mongoLoss = m, mongostore.Durability(url)
	default:
		return nil, fmt.Errorf("%s is not a database backend", b)
	}
	return db, nil
}

// Backend is the domain backend of the database, writing under fencing f (none when its
// token is 0).
func (db *Database) Backend(f driver.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return db.store(DatabaseLayout(d, k), f), nil
	}
}

// store is the driver of the store laid out by l, written under fencing f. Redis keeps
// every store under its name alone.
func (db *Database) store(l dblayout.Layout, f driver.Fencing) driver.Driver {
	switch {
	case db.pool != nil:
		return pgstore.New(db.pool, l, f)
	case db.mongo != nil:
		return mongostore.New(db.mongo, l, f)
	}
	return redisstore.New(db.redis, l.Store, f)
}

// ownStore is the driver of the store named name in this project's own table.
func (db *Database) ownStore(name string, f driver.Fencing) driver.Driver {
	return db.store(dblayout.Own(name), f)
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
func (db *Database) Close() {
	if db.pool != nil {
		db.pool.Close()
	}
	if db.redis != nil {
		_ = db.redis.Close()
	}
	if db.mongo != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = db.mongo.Client().Disconnect(ctx)
	}
}

// NoFencing writes unfenced: the operator's own writes, tools.
var NoFencing = driver.Fencing{}

// Durability reads the server's persistence settings and says which acknowledged writes a
// crash of the server (or its machine) could lose; empty when none.
func (db *Database) Durability(ctx context.Context) (string, error) {
	if db.redis != nil {
		d, err := redisstore.CheckDurability(ctx, db.redis)
		if err != nil {
			return "", fmt.Errorf("redis: reading the persistence settings: %w", err)
		}
		return d.Loss(), nil
	}
	if db.mongo != nil {
		return db.mongoLoss, nil
	}
	var fsync, commit string
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&fsync, &commit); err != nil {
		return "", fmt.Errorf("postgresql: reading the persistence settings: %w", err)
	}
	switch {
	case fsync != "on":
		return "anything, on a crash of the PostgreSQL server's machine (fsync is off)", nil
	case commit == "off":
		return "the last moments of writes, on a crash of the PostgreSQL server (synchronous_commit is off)", nil
	}
	return "", nil
}
