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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
)

// Batch shares round trips and commits between the concurrent writes of the stores that
// use it (one pool's, a runner's connection): the writes that arrive while a batch is on
// the wire go together in the next one, on one connection, in one implicit transaction
// (one commit, one WAL flush). Each stays its own statement, with its own precondition,
// fencing and outcome. A statement the server refuses (a value jsonb will not take, a
// deadlock with another process) rolls the whole batch back, so each of its writes is then
// sent again on its own: a refusal reaches its caller only.
type Batch struct {
	pool    *pgxpool.Pool
	batcher groupcommit.Batcher[*call]
}

// NewBatch returns a Batch of writes over pool (the stores' own pool).
func NewBatch(pool *pgxpool.Pool) *Batch {
	b := &Batch{pool: pool}
	b.batcher.Commit = b.commit
	return b
}

// WithBatch makes the driver's writes share round trips through b, which must be over the
// driver's pool.
func (d *Driver) WithBatch(b *Batch) *Driver {
	d.batch = b
	return d
}

// call is one write statement in a batch, with its outcome: err is an error of a
// statement sent when sent is true (answered classifies it), else nothing was sent.
type call struct {
	ctx  context.Context
	sql  string
	args []any
	out  outcome
	err  error
	sent bool
}

// commit sends a batch (see Batch). A caller whose context ended while it waited sends
// nothing. The batch runs on a context of its own (groupcommit.Detached): one caller giving
// up must not cut the others' writes.
func (b *Batch) commit(batch []*call) {
	live, ctx, cancel := groupcommit.Live(batch, func(c *call) context.Context { return c.ctx },
		func(c *call, err error) { c.err = err })
	defer cancel()
	switch len(live) {
	case 0:
		return
	case 1:
		sendOne(b.pool, live[0])
		return
	}
	if refused := b.send(ctx, live); refused {
		// Rolled back whole (the implicit transaction): each write again, on its own.
		for _, c := range live {
			c.out, c.err, c.sent = outcome{}, nil, false
			sendOne(b.pool, c)
		}
	}
}

// send sends the calls as one batch on one connection, which it releases before it
// returns, and reports whether the server refused a statement (then none was applied).
func (b *Batch) send(ctx context.Context, live []*call) (refused bool) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		for _, c := range live {
			c.err = err // nothing was sent
		}
		return false
	}
	defer conn.Release()
	var q pgx.Batch
	for _, c := range live {
		q.Queue(c.sql, c.args...)
	}
	results := conn.SendBatch(ctx, &q)
	for _, c := range live {
		c.sent = true
		c.err = results.QueryRow().Scan(&c.out.holder, &c.out.token, &c.out.applied, &c.out.rev)
		if pgErr, ok := errors.AsType[*pgconn.PgError](c.err); ok && !lostSession(pgErr) {
			refused = true
		}
	}
	// The commit: until it answers, nothing is known to be applied.
	if err := results.Close(); err != nil && !refused {
		for _, c := range live {
			if c.err == nil {
				c.out, c.err = outcome{}, err
			}
		}
	}
	return refused
}

// sendOne sends the statement of c alone, on a connection of pool.
func sendOne(pool *pgxpool.Pool, c *call) {
	conn, err := pool.Acquire(c.ctx)
	if err != nil {
		c.err = err // nothing was sent
		return
	}
	defer conn.Release()
	c.sent = true
	c.err = conn.QueryRow(c.ctx, c.sql, c.args...).Scan(&c.out.holder, &c.out.token, &c.out.applied, &c.out.rev)
}
