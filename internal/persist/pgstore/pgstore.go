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

// Package pgstore keeps stores in PostgreSQL: one row per key in one table shared by every
// store, with the store's name in the key.
//
//   - Every write is one transaction. An unconditional write is an upsert; "only if
//     absent" an insert that does nothing on a conflict; "only if at revision R" an update
//     (or delete) whose WHERE names R. Revisions come from one sequence, so a
//     key rewritten with the same value still gets a new one.
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
// The tables are made at Init, if missing, under an advisory lock.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/driver"
)

// Fencing names this writer and its token; a token of 0 or less writes unfenced.
type Fencing struct {
	Writer string
	Token  int64
}

// Driver is one store in a PostgreSQL database.
type Driver struct {
	pool    *pgxpool.Pool
	store   string
	fencing Fencing
}

var (
	_ driver.Driver      = (*Driver)(nil)
	_ driver.Snapshotter = (*Driver)(nil)
)

// New returns the driver of store over pool; the pool is the caller's (Close leaves it
// open).
func New(pool *pgxpool.Pool, store string, f Fencing) *Driver {
	return &Driver{pool: pool, store: store, fencing: f}
}

const schema = `
SELECT pg_advisory_xact_lock(hashtext('strategyops schema'));
CREATE SEQUENCE IF NOT EXISTS strategyops_revision;
CREATE TABLE IF NOT EXISTS strategyops_entries (
	store    text   NOT NULL,
	key      text   NOT NULL,
	value    jsonb  NOT NULL,
	revision bigint NOT NULL,
	PRIMARY KEY (store, key)
);
CREATE TABLE IF NOT EXISTS strategyops_fencing (
	store  text   PRIMARY KEY,
	writer text   NOT NULL,
	token  bigint NOT NULL
);`

// Init makes the tables when missing.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, schema); err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	return driver.InitReport{}, d.wrap("init", tx.Commit(ctx))
}

func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgresql store %s: %s: %w", d.store, op, err)
}

func revision(n int64) driver.Revision { return driver.Revision(strconv.FormatInt(n, 10)) }

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	var value []byte
	var rev int64
	err := d.pool.QueryRow(ctx, `SELECT value::text, revision FROM strategyops_entries WHERE store = $1 AND key = $2`,
		d.store, key).Scan(&value, &rev)
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
	rows, err := d.pool.Query(ctx, `SELECT key FROM strategyops_entries WHERE store = $1`, d.store)
	if err != nil {
		return nil, d.wrap("keys", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return keys, d.wrap("keys", err)
}

// Snapshot implements driver.Snapshotter.
func (d *Driver) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	rows, err := d.pool.Query(ctx, `SELECT key, value::text, revision FROM strategyops_entries WHERE store = $1`,
		d.store)
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

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	var rev int64
	err := d.write(ctx, "put", func(q querier) error {
		var row pgx.Row
		switch {
		case pre.IfAbsent:
			row = q.QueryRow(ctx, `INSERT INTO strategyops_entries (store, key, value, revision)
				VALUES ($1, $2, $3::text::jsonb, nextval('strategyops_revision'))
				ON CONFLICT (store, key) DO NOTHING RETURNING revision`, d.store, key, string(value))
		case pre.IfRevision != "":
			want, err := strconv.ParseInt(string(pre.IfRevision), 10, 64)
			if err != nil {
				return fmt.Errorf("%w: revision %q is not this store's", driver.ErrConflict, pre.IfRevision)
			}
			row = q.QueryRow(ctx, `UPDATE strategyops_entries SET value = $3::text::jsonb,
				revision = nextval('strategyops_revision') WHERE store = $1 AND key = $2 AND revision = $4
				RETURNING revision`, d.store, key, string(value), want)
		default:
			row = q.QueryRow(ctx, `INSERT INTO strategyops_entries (store, key, value, revision)
				VALUES ($1, $2, $3::text::jsonb, nextval('strategyops_revision'))
				ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value, revision = EXCLUDED.revision
				RETURNING revision`, d.store, key, string(value))
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

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	return d.write(ctx, "delete", func(q querier) error {
		sql, args := `DELETE FROM strategyops_entries WHERE store = $1 AND key = $2`, []any{d.store, key}
		if pre.IfRevision != "" {
			want, err := strconv.ParseInt(string(pre.IfRevision), 10, 64)
			if err != nil {
				return fmt.Errorf("%w: revision %q is not this store's", driver.ErrConflict, pre.IfRevision)
			}
			sql, args = sql+` AND revision = $3`, append(args, want)
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
		var found bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM strategyops_entries WHERE store = $1 AND key = $2)`,
			d.store, key).Scan(&found); err != nil {
			return err
		}
		if !found {
			return driver.ErrNotFound
		}
		return fmt.Errorf("%w: key %q", driver.ErrConflict, key)
	})
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	return d.write(ctx, "delete all", func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM strategyops_entries WHERE store = $1`, d.store)
		return err
	})
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
	if _, err := tx.Exec(ctx, `INSERT INTO strategyops_fencing (store, writer, token) VALUES ($1, $2, $3)
		ON CONFLICT (store) DO NOTHING`, d.store, d.fencing.Writer, d.fencing.Token); err != nil {
		return err
	}
	var writer string
	var token int64
	if err := tx.QueryRow(ctx, `SELECT writer, token FROM strategyops_fencing WHERE store = $1 FOR UPDATE`,
		d.store).Scan(&writer, &token); err != nil {
		return err
	}
	switch {
	case token > d.fencing.Token, token == d.fencing.Token && writer != d.fencing.Writer:
		return fmt.Errorf("%w: %s holds token %d (this writer %s has %d)", driver.ErrFenced, writer, token,
			d.fencing.Writer, d.fencing.Token)
	case token < d.fencing.Token:
		_, err := tx.Exec(ctx, `UPDATE strategyops_fencing SET writer = $2, token = $3 WHERE store = $1`,
			d.store, d.fencing.Writer, d.fencing.Token)
		return err
	}
	return nil
}

// lostAnswer marks a commit whose answer never came: the server may have committed it.
// An error the server sent (a PgError), a commit never sent (SafeToRetry: the context had
// ended, the connection was gone) and a commit that rolled back are answers.
func lostAnswer(err error) error {
	if _, ok := errors.AsType[*pgconn.PgError](err); ok || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgx.ErrTxCommitRollback) {
		return err
	}
	return fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
}
