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

package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
)

// Batch shares round trips between the concurrent writes of the stores that use it (one
// client's, a runner's connection): the writes that arrive while a pipeline is on the wire
// go together in the next one. Each stays its own script call, checked and answered on its
// own: its precondition, its fencing, its outcome; a refused write is refused to its
// caller only. (Redis already shares one append-only-file flush among the commands of one
// event-loop turn; a pipeline sends them in one packet and answers them in one, instead of
// a round trip each on a connection of its own.)
type Batch struct {
	client  *redis.Client
	batcher groupcommit.Batcher[*call]
}

// NewBatch returns a Batch of writes over client (the stores' own client).
func NewBatch(client *redis.Client) *Batch {
	b := &Batch{client: client}
	b.batcher.Commit = b.commit
	return b
}

// WithBatch makes the driver's writes share round trips through b, which must be over the
// driver's client.
func (d *Driver) WithBatch(b *Batch) *Driver {
	d.batch = b
	return d
}

// call is one write script call in a batch, with its answer.
type call struct {
	ctx  context.Context
	keys []string
	args []any
	res  []string
	err  error
}

// run runs the write script through the batch and returns its answer.
func (b *Batch) run(ctx context.Context, keys []string, args []any) ([]string, error) {
	c := &call{ctx: ctx, keys: keys, args: args}
	b.batcher.Do(c)
	return c.res, c.err
}

// commit sends a batch as one pipeline. A caller whose context ended while it waited sends
// nothing. The pipeline runs on a context of its own (groupcommit.Detached): one caller
// giving up must not cut the others' writes, which would leave their outcome unknown. A
// server that does not hold the script yet (a restart flushed it) answers NOSCRIPT to each
// call; those are sent again one by one, which loads it.
func (b *Batch) commit(batch []*call) {
	live, ctx, cancel := groupcommit.Live(batch, func(c *call) context.Context { return c.ctx },
		func(c *call, err error) { c.err = notSent{err} })
	defer cancel()
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		c.res, c.err = writeScript.Run(c.ctx, b.client, c.keys, c.args...).StringSlice()
		return
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(live))
	for i, c := range live {
		cmds[i] = writeScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own answer or error
	for i, c := range live {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			c.res, c.err = writeScript.Run(c.ctx, b.client, c.keys, c.args...).StringSlice()
			continue
		}
		c.res, c.err = cmds[i].StringSlice()
	}
}

// notSent is the error of a write that was never sent: its outcome is known.
type notSent struct{ error }

func (e notSent) Unwrap() error { return e.error }
