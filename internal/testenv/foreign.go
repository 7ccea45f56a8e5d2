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

package testenv

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/cachestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// ForeignRewritesMoveTheRevision checks that a key's rewrites by a writer that knows
// nothing of the driver's revisions (rewrite: backtest-kit's own database package, writing
// foreign, a JSON value, straight to the database) are new revisions, even with the value
// the key already held: a cache in front of the store (inner, initialised) reads the foreign
// value, and a conditional write made at the revision before a rewrite is refused rather
// than written over it.
func ForeignRewritesMoveTheRevision(t *testing.T, inner driver.Driver, key string, foreign []byte, rewrite func()) {
	t.Helper()
	ctx := t.Context()
	cached, err := cachestore.New(inner, cachestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ours := []byte(`{"id":"ours"}`)
	rev, err := cached.Put(ctx, key, ours, driver.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := cached.Get(ctx, key); err != nil || e.Revision != rev {
		t.Fatalf("read back: %+v, %v; want revision %s", e, err, rev)
	}
	for i := range 2 { // a new value, then the same value again
		time.Sleep(2 * time.Millisecond) // a MongoDB document's updatedDate counts milliseconds
		rewrite()
		e, err := cached.Get(ctx, key)
		if err != nil || e.Revision == rev || !SameJSON(e.Value, foreign) {
			t.Fatalf("after the foreign write %d: %s at %s (%v); want %s at a revision other than %s", i+1, e.Value,
				e.Revision, err, foreign, rev)
		}
		if _, err := cached.Put(ctx, key, ours, driver.Precondition{IfRevision: rev}); !errors.Is(err,
			driver.ErrConflict) {
			t.Fatalf("a write at the revision before the foreign write %d: %v, want ErrConflict", i+1, err)
		}
		rev = e.Revision
	}
	if _, err := cached.Put(ctx, key, ours, driver.Precondition{IfRevision: rev}); err != nil {
		t.Fatalf("a write at the foreign write's revision: %v", err)
	}
}

// SameJSON reports whether two JSON texts hold the same value (their canonical forms,
// jsonx.Canonical, are equal).
func SameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	cx, errX := jsonx.Canonical(x)
	cy, errY := jsonx.Canonical(y)
	return errX == nil && errY == nil && cx == cy
}
