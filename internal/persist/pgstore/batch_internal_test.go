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
	"runtime"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestBatchRefusalReachesItsCallerOnly: conditional writes batched with a value the server
// refuses all land, each once (a batch is one implicit transaction, rolled back whole by
// the refusal, and each of its writes then sent again alone: a write applied twice would
// find its own revision gone, and report a conflict), and only the bad value's caller is
// refused.
func TestBatchRefusalReachesItsCallerOnly(t *testing.T) {
	ctx := context.Background()
	pg, err := testenv.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	pool, err := pgxpool.New(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	b := NewBatch(pool)
	commit := b.batcher.Commit
	entered, gate := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b.batcher.Commit = func(batch []*call) {
		mu.Lock()
		first := len(sizes) == 0
		sizes = append(sizes, len(batch))
		mu.Unlock()
		if first {
			close(entered)
			<-gate
		}
		commit(batch)
	}
	d := New(pool, dblayout.Own("batched"), Fencing{Writer: "runner", Token: 3}).WithBatch(b)
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	const n = 4
	revs := make([]driver.Revision, n)
	for i := range n {
		if revs[i], err = New(pool, dblayout.Own("batched"), Fencing{Writer: "runner", Token: 3}).Put(ctx,
			fmt.Sprint("k", i), []byte(`{"v":0}`), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	wg.Go(func() { _, _ = d.Put(ctx, "leader", []byte(`{}`), driver.Precondition{}) })
	<-entered // the leader's batch is held: what comes now waits as the next batch
	errs := make([]error, n+1)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = d.Put(ctx, fmt.Sprint("k", i), []byte(`{"v":1}`), driver.Precondition{IfRevision: revs[i]})
		})
	}
	for b.batcher.Pending() != n {
		runtime.Gosched()
	}
	// Last in the batch: the statements before it are applied when the server refuses it.
	wg.Go(func() { _, errs[n] = d.Put(ctx, "bad", []byte(`{not json`), driver.Precondition{}) })
	for b.batcher.Pending() != n+1 {
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()

	mu.Lock()
	if len(sizes) < 2 || sizes[1] != n+1 {
		t.Errorf("batches of %v, want the %d writes in the second", sizes, n+1)
	}
	mu.Unlock()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("k%d, written at its revision in a batch with a refused value: %v", i, errs[i])
			continue
		}
		got, err := d.Get(ctx, fmt.Sprint("k", i))
		if err != nil || string(got.Value) != `{"v": 1}` && string(got.Value) != `{"v":1}` {
			t.Errorf("k%d reads %s (%v), want its write", i, got.Value, err)
		}
	}
	if !errors.Is(errs[n], driver.ErrInvalidValue) {
		t.Errorf("the bad value's write: %v, want driver.ErrInvalidValue", errs[n])
	}
	if _, err := d.Get(ctx, "bad"); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("the refused value reads back: %v", err)
	}
}
