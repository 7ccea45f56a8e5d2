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

package memstore_test

import (
	"errors"
	"testing"

	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestRevision: the probe tells the revision the latest Put returned, and ErrNotFound for
// a key never written or deleted.
func TestRevision(t *testing.T) {
	ctx := t.Context()
	d := memstore.New()
	if _, err := d.Revision(ctx, "k"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("absent key: %v, want ErrNotFound", err)
	}
	for _, v := range []string{`"a"`, `"b"`} {
		put, err := d.Put(ctx, "k", []byte(v), driver.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.Revision(ctx, "k"); err != nil || got != put {
			t.Fatalf("after writing %s: revision %q, %v; Put returned %q", v, got, err, put)
		}
	}
	if err := d.Delete(ctx, "k", driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revision(ctx, "k"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
}
