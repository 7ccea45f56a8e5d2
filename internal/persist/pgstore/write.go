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

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// statement builds one write: its SQL and arguments, numbered as they are added.
type statement struct {
	args []any
}

// arg adds v and returns its placeholder.
func (st *statement) arg(v any) string {
	st.args = append(st.args, v)
	return "$" + strconv.Itoa(len(st.args))
}

// where is the condition of the store's rows (key's row when key is not nil).
func (d *Driver) where(st *statement, key *string) string {
	conds := make([]string, 0, len(d.layout.Scope)+1)
	for _, f := range d.layout.Scope {
		conds = append(conds, ident(f.Name)+" = "+st.arg(f.Value))
	}
	if key != nil && d.layout.KeyField != "" {
		conds = append(conds, ident(d.layout.KeyField)+" = "+st.arg(*key))
	}
	return strings.Join(conds, " AND ")
}

// outcome is what one write statement reports.
type outcome struct {
	holder  string // the fencing row's writer after the statement ("" unfenced)
	token   int64  // and its token
	applied int64  // rows the write changed
	rev     string // the revision it gave (puts)
}

// run sends one write: main is a data-modifying statement that returns the revision it
// gave (or any value, for deletes) as r, and whose WHERE (or SELECT, for an insert) ends
// with guard, which lets it through only if this writer holds the store.
//
// Unfenced, guard is empty and no fencing row is touched. Fenced, the statement first
// takes the store's fencing row FOR SHARE (so writes of one holder run side by side, and a
// takeover's update waits for them), and reads its newest version: if it names this
// writer the write goes through. If not, and the recorded token is older (or none is), the
// write is sent again with an upsert of the fencing row that records this writer — once per
// takeover; a newer holder refuses the write.
func (d *Driver) run(ctx context.Context, op string, build func(st *statement, guard string) string) (outcome, error) {
	if d.fencing.Token <= 0 {
		return d.send(ctx, op, build, "")
	}
	out, err := d.send(ctx, op, build, fenceHeld)
	if err != nil || out.holder == d.fencing.Writer && out.token == d.fencing.Token {
		return out, err
	}
	if _, err := d.fencing.Against(out.holder, out.token); err != nil {
		return outcome{}, d.wrap(op, err)
	}
	if out, err = d.send(ctx, op, build, fenceRecord); err != nil {
		return out, err
	}
	if out.holder != d.fencing.Writer || out.token != d.fencing.Token {
		_, err := d.fencing.Against(out.holder, out.token)
		return outcome{}, d.wrap(op, err)
	}
	return out, nil
}

// The two ways a fenced write reads the fencing row.
const (
	// fenceHeld reads it FOR SHARE.
	fenceHeld = "held"
	// fenceRecord upserts it, keeping the newer token (driver.Fencing.Against's rule).
	fenceRecord = "record"
)

// send builds and sends one statement (see run): through the driver's Batch when it has
// one, else alone. An error before the statement was sent (no connection) is returned as
// it is; one after, through answered.
func (d *Driver) send(ctx context.Context, op string, build func(st *statement, guard string) string,
	fence string) (outcome, error) {
	var st statement
	var cte, guard string
	if fence != "" {
		store, writer, token := st.arg(d.layout.Store), st.arg(d.fencing.Writer), st.arg(d.fencing.Token)
		if fence == fenceHeld {
			cte = `fence AS (SELECT writer, token FROM ` + fencingTable + ` WHERE store = ` + store + ` FOR SHARE), `
		} else {
			cte = `fence AS (INSERT INTO ` + fencingTable + ` AS f (store, writer, token) VALUES (` + store + `, ` +
				writer + `, ` + token + `) ON CONFLICT (store) DO UPDATE SET
					writer = CASE WHEN f.token < EXCLUDED.token THEN EXCLUDED.writer ELSE f.writer END,
					token = GREATEST(f.token, EXCLUDED.token)
				RETURNING writer, token), `
		}
		guard = ` AND EXISTS (SELECT 1 FROM fence WHERE writer = ` + writer + ` AND token = ` + token + `)`
	}
	main := build(&st, guard)
	holder := `'', 0::bigint`
	if fence != "" {
		holder = `coalesce((SELECT writer FROM fence), ''), coalesce((SELECT token FROM fence), 0)`
	}
	sql := `WITH ` + cte + `w AS (` + main + `) SELECT ` + holder +
		`, (SELECT count(*) FROM w), coalesce((SELECT max(r) FROM w), '')`
	c := &call{ctx: ctx, sql: sql, args: st.args}
	if d.batch != nil {
		d.batch.batcher.Do(c)
	} else {
		sendOne(d.pool, c)
	}
	switch {
	case c.err != nil && !c.sent:
		return outcome{}, d.wrap(op, c.err) // nothing was sent
	case c.err != nil:
		return outcome{}, d.wrap(op, answered(c.err))
	}
	return c.out, nil
}

// answered classifies an error of a sent statement: the server's own refusals of the
// statement (a PgError that leaves the session alive) are answers — jsonb refusing a value is driver.ErrInvalidValue, a value too
// large driver.ErrTooLarge; anything else lost the answer, and the statement may have been
// applied (not even pgx's "safe to retry" errors are trusted: under connection cuts a
// commit failing with "conn closed" was found applied).
func answered(err error) error {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	switch {
	case !ok, lostSession(pgErr):
		return fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
	case pgErr.Code == "22P02", pgErr.Code == "22P05":
		return fmt.Errorf("%w: %w", driver.ErrInvalidValue, err)
	case pgErr.Code == "54000":
		return fmt.Errorf("%w: %w", driver.ErrTooLarge, err)
	}
	return err
}

// lostSession reports a server error that ends the session or reports a failure of the
// server itself (FATAL, PANIC; connection exceptions, operator intervention such as a
// shutdown, system and internal errors): it may come after the statement committed.
func lostSession(e *pgconn.PgError) bool {
	if e.Severity == "FATAL" || e.Severity == "PANIC" {
		return true
	}
	switch e.Code[:min(2, len(e.Code))] {
	case "08", "57", "58", "XX":
		return true
	}
	return false
}

// checkRevision refuses a revision this driver cannot have given out (an md5 in hex).
func checkRevision(key string, r driver.Revision) error {
	if len(r) != 32 || strings.Trim(string(r), "0123456789abcdef") != "" {
		return fmt.Errorf("%w: key %q: revision %q is not this store's", driver.ErrConflict, key, r)
	}
	return nil
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
	if pre.IfRevision != "" {
		if err := checkRevision(key, pre.IfRevision); err != nil {
			return "", d.wrap("put", err)
		}
	}
	when := driver.WriteTime(ctx).UnixMilli()
	out, err := d.run(ctx, "put", func(st *statement, guard string) string {
		if pre.IfRevision != "" {
			set := d.value + " = " + st.arg(stored) + "::text::jsonb"
			if d.layout.When {
				set += `, "when" = ` + st.arg(when)
			}
			return `UPDATE ` + d.table + ` AS cur SET ` + set + `, "updatedDate" = ` + nextUpdated + ` WHERE ` +
				d.where(st, &key) + ` AND ` + d.revision + ` = ` + st.arg(string(pre.IfRevision)) + guard +
				` RETURNING ` + d.revision + ` AS r`
		}
		return d.insert(st, key, stored, when, pre.IfAbsent, guard)
	})
	switch {
	case err != nil:
		return "", err
	case out.applied == 0:
		return "", d.wrap("put", fmt.Errorf("%w: key %q", driver.ErrConflict, key))
	}
	return driver.Revision(out.rev), nil
}

// insert is an unconditional write (an upsert) or an "only if absent" one (an insert that
// does nothing when the row is there).
func (d *Driver) insert(st *statement, key string, value any, when int64, ifAbsent bool, guard string) string {
	var cols, vals []string
	for _, f := range d.layout.Scope {
		cols, vals = append(cols, ident(f.Name)), append(vals, st.arg(f.Value))
	}
	if d.layout.KeyField != "" {
		cols, vals = append(cols, ident(d.layout.KeyField)), append(vals, st.arg(key))
	}
	unique := strings.Join(cols, ", ")
	cols, vals = append(cols, d.value), append(vals, st.arg(value)+"::text::jsonb")
	update := []string{d.value + " = EXCLUDED." + d.value}
	if d.layout.When {
		cols, vals = append(cols, `"when"`), append(vals, st.arg(when))
		update = append(update, `"when" = EXCLUDED."when"`)
	}
	update = append(update, `"updatedDate" = `+nextUpdated)
	// A new row's time is the statement's, not its transaction's: the writes of one batch
	// share a transaction, and a key deleted and made again in it must not get its old
	// revision back.
	cols, vals = append(cols, `"updatedDate"`), append(vals, `clock_timestamp()`)
	conflict := "DO NOTHING"
	if !ifAbsent {
		conflict = "DO UPDATE SET " + strings.Join(update, ", ")
	}
	return `INSERT INTO ` + d.table + ` AS cur (` + strings.Join(cols, ", ") + `) SELECT ` +
		strings.Join(vals, ", ") + ` WHERE TRUE` + guard + ` ON CONFLICT (` + unique + `) ` + conflict +
		` RETURNING ` + d.revision + ` AS r`
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	if !d.layout.Holds(key) {
		return d.wrap("delete", driver.ErrNotFound)
	}
	if pre.IfRevision != "" {
		if err := checkRevision(key, pre.IfRevision); err != nil {
			return d.wrap("delete", err)
		}
	}
	out, err := d.run(ctx, "delete", func(st *statement, guard string) string {
		cond := d.where(st, &key)
		if pre.IfRevision != "" {
			cond += ` AND ` + d.revision + ` = ` + st.arg(string(pre.IfRevision))
		}
		return `DELETE FROM ` + d.table + ` WHERE ` + cond + guard + ` RETURNING '' AS r`
	})
	switch {
	case err != nil:
		return err
	case out.applied > 0:
		return nil
	case pre.IfRevision == "":
		return driver.ErrNotFound
	}
	// Nothing at that revision: absent, or at another one. A new statement sees the key as
	// it is now.
	var st statement
	var there bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+d.table+` WHERE `+d.where(&st, &key)+`)`,
		st.args...).Scan(&there); err != nil {
		return d.wrap("delete", err)
	}
	if !there {
		return driver.ErrNotFound
	}
	return d.wrap("delete", fmt.Errorf("%w: key %q", driver.ErrConflict, key))
}

// Fence implements driver.Fencer: a fenced statement that changes no row (after making the
// fencing table, when the store was never opened).
func (d *Driver) Fence(ctx context.Context) error {
	if d.fencing.Token <= 0 {
		return nil
	}
	if _, err := d.Init(ctx, false); err != nil {
		return err
	}
	_, err := d.run(ctx, "fence", func(_ *statement, guard string) string {
		return `SELECT '' AS r WHERE true` + guard
	})
	return err
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	_, err := d.run(ctx, "delete all", func(st *statement, guard string) string {
		return `DELETE FROM ` + d.table + ` WHERE ` + d.where(st, nil) + guard + ` RETURNING '' AS r`
	})
	return err
}
