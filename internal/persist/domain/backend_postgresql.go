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
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// The PostgreSQL backend: backtest-kit's tables (DatabaseLayout) in a PostgreSQL database.
func init() {
	Register(Kind{Name: v1.BackendPostgreSQL, Home: InDatabase, Connect: connectPostgres, Tables: true})
}

// PostgresBackend keeps every context in the PostgreSQL database of pool, laid out by
// DatabaseLayout, written under fencing f (none when its token is 0).
func PostgresBackend(pool *pgxpool.Pool, f pgstore.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return pgstore.New(pool, DatabaseLayout(d, k), f), nil
	}
}

// postgresConnection is one pool, whose stores' concurrent writes share batches.
type postgresConnection struct {
	pool  *pgxpool.Pool
	batch *pgstore.Batch
}

func connectPostgres(ctx context.Context, url string) (Connection, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w (want postgres://user:password@host:port/database)", ErrBadURL)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return postgresConnection{pool, pgstore.NewBatch(pool)}, nil
}

func (c postgresConnection) Store(l dblayout.Layout, f driver.Fencing) driver.Driver {
	return pgstore.New(c.pool, l, f).WithBatch(c.batch)
}

func (c postgresConnection) Close() { c.pool.Close() }

func (c postgresConnection) Durability(ctx context.Context) (string, error) {
	var fsync, commit string
	if err := c.pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).
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
