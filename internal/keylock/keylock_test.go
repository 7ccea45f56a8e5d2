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

package keylock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestOneHolderPerName: callers of one name take turns, callers of others do not wait,
// and the set forgets every name once no one holds or waits for it.
func TestOneHolderPerName(t *testing.T) {
	var s Set
	ctx := context.Background()
	var wg sync.WaitGroup
	inside := make([]int, 10)
	var mu sync.Mutex
	for i := range 1000 {
		wg.Go(func() {
			name := fmt.Sprint(i % 10)
			release, err := s.Acquire(ctx, name)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside[i%10]++
			if inside[i%10] != 1 {
				t.Errorf("%d callers hold %s at once", inside[i%10], name)
			}
			mu.Unlock()
			time.Sleep(10 * time.Microsecond)
			mu.Lock()
			inside[i%10]--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if n := s.Len(); n != 0 {
		t.Fatalf("the set keeps %d names no one holds", n)
	}
}

// TestAcquireGivesUpWithItsContext: a caller waiting for a held name stops when its
// context ends, and leaves nothing behind once the holder releases.
func TestAcquireGivesUpWithItsContext(t *testing.T) {
	var s Set
	release, err := s.Acquire(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Acquire(context.Background(), "other")
	if err != nil {
		t.Fatalf("a held name keeps another waiting: %v", err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiter whose context ended: %v", err)
	}
	release()
	release() // a second release gives back nothing more
	if n := s.Len(); n != 0 {
		t.Fatalf("the set keeps %d names no one holds", n)
	}
	again, err := s.Acquire(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a context ended already takes a held name: %v", err)
	}
	again()
	if _, err := s.Acquire(ctx, "free"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a context ended already takes a free name: %v", err)
	}
}
