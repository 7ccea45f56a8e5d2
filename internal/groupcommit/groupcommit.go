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

// Package groupcommit coalesces concurrent operations into batches: while one caller
// commits a batch, the callers that arrive form the next one, and each caller returns once
// the batch holding its operation has been committed. The file store shares its flushes
// this way, the ConfigMap store its updates, and the Redis and PostgreSQL stores their
// round trips (pipelines, batches).
package groupcommit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Batcher runs Commit over batches of the items passed to Do. The zero value is not
// usable: set Commit.
type Batcher[T any] struct {
	// Commit commits one batch, in the order the items arrived. It reports each item's
	// outcome through the item itself (items are usually pointers).
	Commit func(batch []T)

	mu      sync.Mutex
	pending []*waiter[T]
	leading bool
}

type waiter[T any] struct {
	item T
	done chan struct{} // closed once its batch is committed
	lead chan struct{} // closed when it is to commit the pending batch
}

// Do adds item to the next batch and returns once that batch was committed. The caller
// that finds no batch in progress commits the pending batch (its own item in it); then,
// if more wait, it hands the next batch to the first of them and returns: no caller
// commits others' batches for longer than its own takes.
func (b *Batcher[T]) Do(item T) {
	w := &waiter[T]{item: item, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	if b.leading {
		b.mu.Unlock()
		select {
		case <-w.done:
			return
		case <-w.lead: // handed the next batch, which holds w
		}
		b.mu.Lock()
	}
	b.leading = true
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	items := make([]T, len(batch))
	for i, x := range batch {
		items[i] = x.item
	}
	b.commit(items, batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].lead)
	} else {
		b.leading = false
	}
	b.mu.Unlock()
}

// Pending is how many items wait for the next batch.
func (b *Batcher[T]) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

func (b *Batcher[T]) commit(items []T, batch []*waiter[T]) {
	defer func() {
		for _, x := range batch {
			close(x.done)
		}
	}()
	b.Commit(items)
}

// Detached is the context a batch of the callers' contexts ctxs runs on: the first one's
// values, not cancelled while any caller still waits (one caller giving up must not cut
// the others' operations, which would leave their outcome unknown), cancelled once every
// caller's context has ended, and bounded by the latest of their deadlines when every one
// has a deadline. ctxs must not be empty; call cancel when the batch is done.
func Detached(ctxs ...context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctxs[0]))
	var latest time.Time
	bounded := true
	left := atomic.Int64{}
	left.Store(int64(len(ctxs)))
	stops := make([]func() bool, 0, len(ctxs))
	for _, c := range ctxs {
		stops = append(stops, context.AfterFunc(c, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
		if d, ok := c.Deadline(); !ok {
			bounded = false
		} else if d.After(latest) {
			latest = d
		}
	}
	release := func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
	if !bounded {
		return ctx, release
	}
	ctx, cancelDeadline := context.WithDeadline(ctx, latest)
	return ctx, func() { cancelDeadline(); release() }
}

// Live splits a batch of callers' items: those whose context (ctxOf) has not ended, with
// the context they run on together (Detached; cancel it when done), and the others, each
// handed to ended with its context's error: such a caller gave up before anything of its
// was sent.
func Live[T any](batch []T, ctxOf func(T) context.Context, ended func(T, error)) (
	[]T, context.Context, context.CancelFunc) {
	live := make([]T, 0, len(batch))
	ctxs := make([]context.Context, 0, len(batch))
	for _, x := range batch {
		if err := ctxOf(x).Err(); err != nil {
			ended(x, err)
			continue
		}
		live, ctxs = append(live, x), append(ctxs, ctxOf(x))
	}
	if len(live) == 0 {
		return nil, context.Background(), func() {}
	}
	ctx, cancel := Detached(ctxs...)
	return live, ctx, cancel
}
