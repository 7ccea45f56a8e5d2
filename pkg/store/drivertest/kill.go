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

package drivertest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// WritesAfterKill is a database store's crash case: it writes n values at once through d,
// an initialised fenced driver with fencing token token, has kill SIGKILL the server and
// start it again, and returns how many of the n acknowledged values are there. Every value
// that is there must be the one written; when all are, the recorded token must be token.
func WritesAfterKill(t *testing.T, d driver.Driver, token int64, n int, kill func()) int {
	t.Helper()
	ctx := t.Context()
	s := store.NewStore[int]("killed", d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Write(ctx, fmt.Sprintf("key-%03d", i), i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	kill()
	keys, err := s.SortedKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		var i int
		if _, err := fmt.Sscanf(k, "key-%03d", &i); err != nil {
			t.Fatalf("an unexpected key %q", k)
		}
		if v, err := s.Read(ctx, k); err != nil || v != i {
			t.Fatalf("%s reads %d, %v; want %d", k, v, err, i)
		}
	}
	if r, ok := d.(driver.TokenRecorder); ok && len(keys) == n {
		if got, err := r.RecordedToken(ctx); err != nil || got != token {
			t.Fatalf("recorded token %d, %v; want %d", got, err, token)
		}
	}
	return len(keys)
}
