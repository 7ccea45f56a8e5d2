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

// Package pgstore keeps stores in PostgreSQL, one row per key, in the table a
// dblayout.Layout names: backtest-kit's own tables for its crash-state kinds (so a bot on
// its PostgreSQL adapter reads what a runner wrote, and the other way round), this
// project's table for the rest.
//
//   - Every write is one statement, atomic on its own (the concurrent writes of a
//     connection's stores may share a round trip and a commit: Batch). An unconditional
//     write is an upsert on the layout's unique fields; "only if absent" an insert that does
//     nothing on a conflict; "only if at revision R" an update (or delete) whose WHERE names
//     R. A revision is a digest of what every writer of a row changes: its value, its when
//     and its updatedDate (which backtest-kit's adapter, TypeORM, sets on every write, and
//     this driver moves forward by at least a microsecond on each of its own). So a row the
//     adapter rewrote is a new revision for the cache and for conditional writes, and the
//     tables carry no column of this project's, which the adapter's schema sync
//     (synchronize: true) would drop at every bot start.
//   - A driver opened with a fencing token puts the fencing check in the same statement: it
//     takes the store's fencing row FOR SHARE (writes of one holder run side by side; a
//     takeover's update waits for them, and they see its newest version) and guards the
//     write, which goes through only if the row names this writer. A new holder's first
//     write upserts the row instead, keeping the newer of the recorded token and its own
//     (driver.Fencing.Against's rule). Check, record and write commit together; a writer
//     killed mid-statement holds nothing once its session ends. A refused write changes no
//     entry (a new holder's token is recorded even when its write then fails its
//     precondition).
//   - Values are jsonb: the server holds no value that is not JSON (so nothing corrupt is
//     ever read back), and keeps the value, not its bytes (key order and spacing are its
//     own).
//   - When the answer to a write is lost (the connection cut after the statement was sent),
//     the write returns driver.ErrUnknownOutcome: read the key to know. Only a write that
//     never got a connection is known not to have been sent.
//
// Init makes a missing table in the shape backtest-kit's adapter gives it (its columns, its
// unique index), under an advisory lock; it runs no DDL when nothing is missing.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Fencing names this writer and its token; a token of 0 or less writes unfenced.
type Fencing = driver.Fencing

// Driver is one store in a PostgreSQL database.
type Driver struct {
	pool    *pgxpool.Pool
	layout  dblayout.Layout
	fencing Fencing
	batch   *Batch // nil: each write a round trip of its own

	table, value string // quoted identifiers
	revision     string // the SQL expression of a row's revision
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Snapshotter   = (*Driver)(nil)
	_ driver.TokenRecorder = (*Driver)(nil)
)

// New returns the driver of the store l places; the pool is the caller's (Close leaves it
// open).
func New(pool *pgxpool.Pool, l dblayout.Layout, f Fencing) *Driver {
	d := &Driver{pool: pool, layout: l, fencing: f, table: ident(l.Table), value: ident(l.ValueField)}
	when := ""
	if l.When {
		when = ` || ':' || "when"::text`
	}
	// extract(epoch) is independent of the session's time zone, and exact (numeric) from
	// PostgreSQL 14 on; before, a double, which still holds a microsecond timestamp exactly.
	d.revision = `md5(floor(extract(epoch FROM "updatedDate") * 1000000)::text || ':' || coalesce(` + d.value +
		`::text, 'null')` + when + `)`
	return d
}

// nextUpdated is the updatedDate a write of this driver gives a row that is there: now, or
// a microsecond past the row's own, so that every write moves its revision.
const nextUpdated = `GREATEST(clock_timestamp(), cur."updatedDate" + interval '1 microsecond')`

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

var fencingTable = ident(dblayout.FencingTable)

// Init makes what the store needs when something is missing: the fencing table, the
// layout's table and its unique index. It looks first, in one
// query, and changes nothing that is there: DDL on a table a bot shares (backtest-kit's)
// would take a lock that stalls it, and needs privileges a writer may lack.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	var ready bool
	err := d.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL
		AND to_regclass($3) IS NOT NULL`, fencingTable, d.table, ident(d.layout.IndexName())).Scan(&ready)
	if err != nil || ready {
		return driver.InitReport{}, d.wrap("init", err)
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, d.schema()); err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	return driver.InitReport{}, d.wrap("init", tx.Commit(ctx))
}

// schema makes the fencing table and the layout's table (as backtest-kit's adapter makes it).
func (d *Driver) schema() string {
	var cols []string
	for _, f := range d.layout.Unique() {
		cols = append(cols, ident(f)+" varchar NOT NULL")
	}
	null := " NOT NULL"
	if d.layout.NullableValue {
		null = " NULL"
	}
	cols = append(cols, d.value+" jsonb"+null)
	if d.layout.When {
		cols = append(cols, `"when" bigint NOT NULL`)
	}
	unique := make([]string, 0, len(d.layout.Unique()))
	for _, f := range d.layout.Unique() {
		unique = append(unique, ident(f))
	}
	return `SELECT pg_advisory_xact_lock(hashtext('strategyops schema'));
CREATE TABLE IF NOT EXISTS ` + fencingTable + ` (store text PRIMARY KEY, writer text NOT NULL, token bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ` + d.table + ` (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), ` +
		strings.Join(cols, ", ") + `, "createDate" timestamptz NOT NULL DEFAULT now(), ` +
		`"updatedDate" timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX IF NOT EXISTS ` + ident(d.layout.IndexName()) + ` ON ` + d.table + ` (` +
		strings.Join(unique, ", ") + `);`
}

func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgresql store %s: %s: %w", d.layout.Store, op, err)
}

// scope is the WHERE clause of the store's rows, and its arguments.
func (d *Driver) scope() (string, []any) {
	var st statement
	return d.where(&st, nil), st.args
}

// row is the WHERE clause of key's row, and its arguments.
func (d *Driver) row(key string) (string, []any) {
	var st statement
	return d.where(&st, &key), st.args
}

// keyColumn selects the key of each row.
func (d *Driver) keyColumn() string {
	if d.layout.KeyField == "" {
		return "$" + strconv.Itoa(len(d.layout.Scope)+1) + "::text"
	}
	return ident(d.layout.KeyField)
}

// selectRows reads the key, value and revision of the store's rows.
func (d *Driver) selectRows(ctx context.Context) (pgx.Rows, error) {
	where, args := d.scope()
	if d.layout.KeyField == "" {
		args = append(args, d.layout.Only)
	}
	return d.pool.Query(ctx, `SELECT `+d.keyColumn()+`, coalesce(`+d.value+`::text, 'null'), `+d.revision+
		` FROM `+d.table+` WHERE `+where, args...)
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	if !d.layout.Holds(key) {
		return driver.Entry{}, driver.ErrNotFound
	}
	where, args := d.row(key)
	var value []byte
	var rev string
	err := d.pool.QueryRow(ctx, `SELECT coalesce(`+d.value+`::text, 'null'), `+d.revision+` FROM `+
		d.table+` WHERE `+where, args...).Scan(&value, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.Entry{}, driver.ErrNotFound
	}
	if err != nil {
		return driver.Entry{}, d.wrap("get", err)
	}
	return driver.Entry{Value: value, Revision: driver.Revision(rev)}, nil
}

// Keys implements driver.Driver.
func (d *Driver) Keys(ctx context.Context) ([]string, error) {
	rows, err := d.selectRows(ctx)
	if err != nil {
		return nil, d.wrap("keys", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var key, value, rev string
		if err := rows.Scan(&key, &value, &rev); err != nil {
			return nil, d.wrap("keys", err)
		}
		keys = append(keys, key)
	}
	return keys, d.wrap("keys", rows.Err())
}

// Snapshot implements driver.Snapshotter.
func (d *Driver) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	rows, err := d.selectRows(ctx)
	if err != nil {
		return nil, d.wrap("snapshot", err)
	}
	defer rows.Close()
	out := map[string]driver.Entry{}
	for rows.Next() {
		var key, rev string
		var value []byte
		if err := rows.Scan(&key, &value, &rev); err != nil {
			return nil, d.wrap("snapshot", err)
		}
		out[key] = driver.Entry{Value: value, Revision: driver.Revision(rev)}
	}
	return out, d.wrap("snapshot", rows.Err())
}

// RecordedToken returns the newest fencing token written to this store (0 when no fenced
// writer has written).
func (d *Driver) RecordedToken(ctx context.Context) (int64, error) {
	var token int64
	err := d.pool.QueryRow(ctx, `SELECT token FROM `+fencingTable+` WHERE store = $1`, d.layout.Store).Scan(&token)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); errors.Is(err, pgx.ErrNoRows) || ok && pgErr.Code == "42P01" {
		return 0, nil // no fenced writer yet (not even the table, before the first Init)
	}
	return token, d.wrap("read fencing", err)
}

// Close implements driver.Driver; the pool stays open.
func (d *Driver) Close() error { return nil }
