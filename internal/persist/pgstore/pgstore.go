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
//   - Every write is one transaction. An unconditional write is an upsert on the layout's
//     unique fields; "only if absent" an insert that does nothing on a conflict; "only if
//     at revision R" an update (or delete) whose WHERE names R. Revisions come from one
//     sequence, so a key rewritten with the same value still gets a new one, and live in
//     an extra column (dblayout.Revision) that backtest-kit's adapter neither reads nor
//     writes: a row it wrote has none, and reads as revision 0.
//   - A driver opened with a fencing token locks the store's fencing row (SELECT … FOR
//     UPDATE) inside the write's transaction, refuses the write (driver.ErrFenced) when a
//     newer token — or the same token of another writer — is recorded, and records its own:
//     the check and the write commit together. A fenced writer's transactions end its
//     session when it goes silent inside one for 10 s (idle_in_transaction_session_timeout),
//     so a killed writer's lock does not stall the one taking over.
//   - Values are jsonb: the server holds no value that is not JSON (so nothing corrupt is
//     ever read back), and keeps the value, not its bytes (key order and spacing are its
//     own).
//   - When the answer to a write is lost (the connection cut after the statement or the
//     commit was sent), the write returns driver.ErrUnknownOutcome: read the key to know.
//
// Init makes a missing table in the shape backtest-kit's adapter gives it (its columns, its
// unique index), and adds the revision column to a table that lacks it, under an advisory
// lock.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
)

// Fencing names this writer and its token; a token of 0 or less writes unfenced.
type Fencing = driver.Fencing

// Driver is one store in a PostgreSQL database.
type Driver struct {
	pool    *pgxpool.Pool
	layout  dblayout.Layout
	fencing Fencing

	table, revision, value string // quoted identifiers
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Snapshotter   = (*Driver)(nil)
	_ driver.TokenRecorder = (*Driver)(nil)
)

// New returns the driver of the store l places; the pool is the caller's (Close leaves it
// open).
func New(pool *pgxpool.Pool, l dblayout.Layout, f Fencing) *Driver {
	return &Driver{pool: pool, layout: l, fencing: f,
		table: ident(l.Table), revision: ident(dblayout.Revision), value: ident(l.ValueField)}
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

var fencingTable = ident(dblayout.FencingTable)

// made remembers the tables Init has made or checked, per pool.
var made sync.Map

// Init makes the table when missing.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	type madeKey struct {
		pool  *pgxpool.Pool
		table string
	}
	if _, ok := made.Load(madeKey{d.pool, d.layout.Table}); ok {
		return driver.InitReport{}, nil
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, d.schema()); err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	made.Store(madeKey{d.pool, d.layout.Table}, true)
	return driver.InitReport{}, nil
}

// schema makes the sequence, the fencing table and the layout's table (as backtest-kit's
// adapter makes it, with this project's revision column).
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
CREATE SEQUENCE IF NOT EXISTS strategyops_revision;
CREATE TABLE IF NOT EXISTS ` + fencingTable + ` (store text PRIMARY KEY, writer text NOT NULL, token bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ` + d.table + ` (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), ` +
		strings.Join(cols, ", ") + `, "createDate" timestamptz NOT NULL DEFAULT now(), ` +
		`"updatedDate" timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX IF NOT EXISTS ` + ident(d.layout.IndexName()) + ` ON ` + d.table + ` (` +
		strings.Join(unique, ", ") + `);
ALTER TABLE ` + d.table + ` ADD COLUMN IF NOT EXISTS ` + d.revision + ` bigint;`
}

func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgresql store %s: %s: %w", d.layout.Store, op, err)
}

func revision(n int64) driver.Revision { return driver.Revision(strconv.FormatInt(n, 10)) }

// scope is the WHERE clause of the store's rows, and its arguments.
func (d *Driver) scope() (string, []any) {
	conds := make([]string, 0, len(d.layout.Scope))
	args := make([]any, 0, len(d.layout.Scope)+3)
	for i, f := range d.layout.Scope {
		conds = append(conds, fmt.Sprintf("%s = $%d", ident(f.Name), i+1))
		args = append(args, f.Value)
	}
	return strings.Join(conds, " AND "), args
}

// row is the WHERE clause of key's row, and its arguments.
func (d *Driver) row(key string) (string, []any) {
	where, args := d.scope()
	if d.layout.KeyField == "" {
		return where, args
	}
	args = append(args, key)
	return fmt.Sprintf("%s AND %s = $%d", where, ident(d.layout.KeyField), len(args)), args
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
	return d.pool.Query(ctx, `SELECT `+d.keyColumn()+`, coalesce(`+d.value+`::text, 'null'), coalesce(`+
		d.revision+`, 0) FROM `+d.table+` WHERE `+where, args...)
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	if !d.layout.Holds(key) {
		return driver.Entry{}, driver.ErrNotFound
	}
	where, args := d.row(key)
	var value []byte
	var rev int64
	err := d.pool.QueryRow(ctx, `SELECT coalesce(`+d.value+`::text, 'null'), coalesce(`+d.revision+`, 0) FROM `+
		d.table+` WHERE `+where, args...).Scan(&value, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.Entry{}, driver.ErrNotFound
	}
	if err != nil {
		return driver.Entry{}, d.wrap("get", err)
	}
	return driver.Entry{Value: value, Revision: revision(rev)}, nil
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
		var key, value string
		var rev int64
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
		var key string
		var value []byte
		var rev int64
		if err := rows.Scan(&key, &value, &rev); err != nil {
			return nil, d.wrap("snapshot", err)
		}
		out[key] = driver.Entry{Value: value, Revision: revision(rev)}
	}
	return out, d.wrap("snapshot", rows.Err())
}

// parseRevision reads a revision this driver gave out.
func parseRevision(key string, r driver.Revision) (int64, error) {
	n, err := strconv.ParseInt(string(r), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: key %q: revision %q is not this store's", driver.ErrConflict, key, r)
	}
	return n, nil
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	if !d.layout.Holds(key) {
		return "", d.wrap("put", fmt.Errorf("%w: %q: this store holds only %q", driver.ErrInvalidKey, key,
			d.layout.Only))
	}
	var stored any = string(value)
	if d.layout.NullableValue && string(value) == "null" {
		stored = nil
	}
	var rev int64
	err := d.write(ctx, "put", func(q querier) error {
		var row pgx.Row
		if pre.IfRevision != "" {
			want, err := parseRevision(key, pre.IfRevision)
			if err != nil {
				return err
			}
			where, args := d.row(key)
			set := d.value + " = $" + strconv.Itoa(len(args)+1) + "::text::jsonb"
			args = append(args, stored)
			if d.layout.When {
				args = append(args, time.Now().UnixMilli())
				set += `, "when" = $` + strconv.Itoa(len(args))
			}
			args = append(args, want)
			row = q.QueryRow(ctx, `UPDATE `+d.table+` SET `+set+`, "updatedDate" = now(), `+d.revision+
				` = nextval('strategyops_revision') WHERE `+where+` AND coalesce(`+d.revision+`, 0) = $`+
				strconv.Itoa(len(args))+` RETURNING `+d.revision, args...)
		} else {
			row = q.QueryRow(ctx, d.insert(pre.IfAbsent), d.insertArgs(key, stored)...)
		}
		err := row.Scan(&rev)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: key %q", driver.ErrConflict, key)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return revision(rev), nil
}

// insert is the statement of an unconditional write (an upsert) or of an "only if absent"
// one (an insert that does nothing when the row is there).
func (d *Driver) insert(ifAbsent bool) string {
	unique := d.layout.Unique()
	cols := make([]string, 0, len(unique)+3)
	params := make([]string, 0, len(unique)+3)
	for i, f := range unique {
		cols = append(cols, ident(f))
		params = append(params, "$"+strconv.Itoa(i+1))
	}
	cols = append(cols, d.value)
	params = append(params, "$"+strconv.Itoa(len(unique)+1)+"::text::jsonb")
	update := []string{d.value + " = EXCLUDED." + d.value}
	if d.layout.When {
		cols = append(cols, `"when"`)
		params = append(params, "$"+strconv.Itoa(len(unique)+2))
		update = append(update, `"when" = EXCLUDED."when"`)
	}
	cols = append(cols, d.revision)
	params = append(params, "nextval('strategyops_revision')")
	update = append(update, `"updatedDate" = now()`, d.revision+" = EXCLUDED."+d.revision)
	conflict := " DO NOTHING"
	if !ifAbsent {
		conflict = " DO UPDATE SET " + strings.Join(update, ", ")
	}
	quoted := make([]string, 0, len(unique))
	for _, f := range unique {
		quoted = append(quoted, ident(f))
	}
	return `INSERT INTO ` + d.table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(params, ", ") +
		`) ON CONFLICT (` + strings.Join(quoted, ", ") + `)` + conflict + ` RETURNING ` + d.revision
}

// insertArgs are the arguments of insert.
func (d *Driver) insertArgs(key string, value any) []any {
	_, args := d.scope()
	if d.layout.KeyField != "" {
		args = append(args, key)
	}
	args = append(args, value)
	if d.layout.When {
		args = append(args, time.Now().UnixMilli())
	}
	return args
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	if !d.layout.Holds(key) {
		return d.wrap("delete", driver.ErrNotFound)
	}
	return d.write(ctx, "delete", func(q querier) error {
		where, args := d.row(key)
		found := `SELECT EXISTS (SELECT 1 FROM ` + d.table + ` WHERE ` + where + `)`
		existsArgs := slices.Clip(args)
		sql := `DELETE FROM ` + d.table + ` WHERE ` + where
		if pre.IfRevision != "" {
			want, err := parseRevision(key, pre.IfRevision)
			if err != nil {
				return err
			}
			args = append(existsArgs, want)
			sql += ` AND coalesce(` + d.revision + `, 0) = $` + strconv.Itoa(len(args))
		}
		tag, err := q.Exec(ctx, sql, args...)
		if err != nil || tag.RowsAffected() > 0 {
			return err
		}
		if pre.IfRevision == "" {
			return driver.ErrNotFound
		}
		// Nothing at that revision: absent, or at another one. A new statement sees the
		// key as it is now.
		var there bool
		if err := q.QueryRow(ctx, found, existsArgs...).Scan(&there); err != nil {
			return err
		}
		if !there {
			return driver.ErrNotFound
		}
		return fmt.Errorf("%w: key %q", driver.ErrConflict, key)
	})
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	return d.write(ctx, "delete all", func(q querier) error {
		where, args := d.scope()
		_, err := q.Exec(ctx, `DELETE FROM `+d.table+` WHERE `+where, args...)
		return err
	})
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

// querier is a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// abandonedAfter ends the session of a writer that went silent inside a write's
// transaction (killed, cut off), so that the fencing row it locked is free for the writer
// that takes over.
const abandonedAfter = "10s"

// write runs op in one transaction, after the fencing check when the driver is fenced.
func (d *Driver) write(ctx context.Context, name string, op func(querier) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return d.wrap(name, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if d.fencing.Token > 0 {
		if _, err := tx.Exec(ctx, "SET LOCAL idle_in_transaction_session_timeout = '"+abandonedAfter+"'"); err != nil {
			return d.wrap(name, err)
		}
		if err := d.fence(ctx, tx); err != nil {
			return d.wrap(name, err)
		}
	}
	if err := op(tx); err != nil {
		return d.wrap(name, refused(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return d.wrap(name, lostAnswer(err))
	}
	return nil
}

// refused is the contract's sentinel for a value PostgreSQL will not hold: not valid for
// jsonb (a NUL in a string, 22P02, 22P05) or too large (54000).
func refused(err error) error {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	switch {
	case !ok:
		return err
	case pgErr.Code == "22P02", pgErr.Code == "22P05":
		return fmt.Errorf("%w: %w", driver.ErrInvalidValue, err)
	case pgErr.Code == "54000":
		return fmt.Errorf("%w: %w", driver.ErrTooLarge, err)
	}
	return err
}

// fence refuses a write when another writer holds the store (a newer token, or the same
// token recorded by another writer) and records this writer's token.
func (d *Driver) fence(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `INSERT INTO `+fencingTable+` (store, writer, token) VALUES ($1, $2, $3)
		ON CONFLICT (store) DO NOTHING`, d.layout.Store, d.fencing.Writer, d.fencing.Token); err != nil {
		return err
	}
	var writer string
	var token int64
	if err := tx.QueryRow(ctx, `SELECT writer, token FROM `+fencingTable+` WHERE store = $1 FOR UPDATE`,
		d.layout.Store).Scan(&writer, &token); err != nil {
		return err
	}
	record, err := d.fencing.Against(writer, token)
	if !record || err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE `+fencingTable+` SET writer = $2, token = $3 WHERE store = $1`,
		d.layout.Store, d.fencing.Writer, d.fencing.Token)
	return err
}

// lostAnswer marks a commit whose answer never came: the server may have committed it.
// Only an error the server sent (a PgError) and a commit it rolled back are answers. Not
// even pgx's "safe to retry" errors are: under connection cuts, a commit that failed with
// "conn closed" was found applied (the linearizability suite's PostgreSQL histories).
func lostAnswer(err error) error {
	if _, ok := errors.AsType[*pgconn.PgError](err); ok || errors.Is(err, pgx.ErrTxCommitRollback) {
		return err
	}
	return fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
}
