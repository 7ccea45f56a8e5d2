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

package groupcommit_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/groupcommit"
)

type item struct {
	n         int
	committed bool
}

func TestEveryItemIsCommittedBeforeDoReturns(t *testing.T) {
	var batches, maxBatch atomic.Int64
	b := &groupcommit.Batcher[*item]{Commit: func(batch []*item) {
		batches.Add(1)
		if int64(len(batch)) > maxBatch.Load() {
			maxBatch.Store(int64(len(batch)))
		}
		time.Sleep(2 * time.Millisecond) // a slow commit lets the next batch gather
		for _, it := range batch {
			it.committed = true
		}
	}}
	const callers = 64
	var wg sync.WaitGroup
	var notCommitted atomic.Int64
	for i := range callers {
		wg.Go(func() {
			it := &item{n: i}
			b.Do(it)
			if !it.committed {
				notCommitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := notCommitted.Load(); n != 0 {
		t.Fatalf("%d callers returned before their item was committed", n)
	}
	if batches.Load() >= callers || maxBatch.Load() < 2 {
		t.Fatalf("%d batches for %d callers (largest %d): nothing was coalesced",
			batches.Load(), callers, maxBatch.Load())
	}
}

func TestSingleCallerCommitsAlone(t *testing.T) {
	var sizes []int
	b := &groupcommit.Batcher[int]{Commit: func(batch []int) { sizes = append(sizes, len(batch)) }}
	b.Do(1)
	b.Do(2)
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 1 {
		t.Fatalf("batch sizes %v, want [1 1]", sizes)
	}
}

// TestPendingCountsTheNextBatch: while a batch commits, the items that arrive wait as the
// next one, and Pending counts them.
func TestPendingCountsTheNextBatch(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	var sizes []int
	var b groupcommit.Batcher[int]
	b.Commit = func(batch []int) {
		if len(sizes) == 0 {
			close(entered)
			<-gate
		}
		sizes = append(sizes, len(batch))
	}
	var wg sync.WaitGroup
	wg.Go(func() { b.Do(0) })
	<-entered
	for i := range 3 {
		wg.Go(func() { b.Do(i + 1) })
	}
	for b.Pending() != 3 {
		runtime.Gosched()
	}
	close(gate)
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 3 {
		t.Fatalf("batch sizes %v, want [1 3]", sizes)
	}
}

// TestDetachedOutlivesItsCallers: a batch's context is not cancelled with a caller's, ends
// at the latest of the callers' deadlines, and has none when a caller has none.
func TestDetachedOutlivesItsCallers(t *testing.T) {
	soon, cancelSoon := context.WithTimeout(context.Background(), time.Minute)
	later, cancelLater := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLater()
	ctx, cancel := groupcommit.Detached(soon, later)
	defer cancel()
	cancelSoon()
	if ctx.Err() != nil {
		t.Fatalf("a caller's cancellation ended the batch: %v", ctx.Err())
	}
	if d, ok := ctx.Deadline(); !ok || d.Before(time.Now().Add(59*time.Minute)) {
		t.Fatalf("the batch's deadline is %v (%v), want the latest caller's, in an hour", d, ok)
	}
	unbounded, cancel2 := groupcommit.Detached(later, context.Background())
	defer cancel2()
	if _, ok := unbounded.Deadline(); ok {
		t.Fatal("a batch with a caller without a deadline has one")
	}
}

// TestLeaderReturnsAfterItsOwnBatch: under steady load, the caller that committed a batch
// returns once its own batch is committed, handing the next to one that waits.
func TestLeaderReturnsAfterItsOwnBatch(t *testing.T) {
	release := make(chan struct{})
	var commits atomic.Int64
	var b groupcommit.Batcher[int]
	entered := make(chan struct{})
	var wg sync.WaitGroup
	b.Commit = func([]int) {
		if commits.Add(1) == 1 { // the first batch ends once another caller waits
			close(entered)
			for b.Pending() == 0 {
				runtime.Gosched()
			}
			return
		}
		<-release // every later batch waits until the test lets it go
	}
	leader := make(chan struct{})
	go func() { b.Do(0); close(leader) }()
	<-entered
	wg.Go(func() { b.Do(1) })
	select {
	case <-leader:
	case <-time.After(10 * time.Second):
		t.Fatal("the first caller is still committing the batch of the caller after it")
	}
	close(release)
	wg.Wait()
	if n := commits.Load(); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
}

// TestDetachedEndsWhenEveryCallerHas: the batch's context ends once every caller's has.
func TestDetachedEndsWhenEveryCallerHas(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	b, cancelB := context.WithCancel(context.Background())
	ctx, cancel := groupcommit.Detached(a, b)
	defer cancel()
	cancelA()
	if ctx.Err() != nil {
		t.Fatal("one caller's cancellation ended the batch")
	}
	cancelB()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the batch's context outlived every caller")
	}
}
