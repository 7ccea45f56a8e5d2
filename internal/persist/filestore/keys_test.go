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

package filestore

import (
	"context"
	"fmt"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestWritesKeepNoLockPerKey: a driver that wrote and deleted a thousand keys (a ledger,
// one key per signal) holds no lock for any of them afterwards: its memory does not grow
// with the keys it has written.
func TestWritesKeepNoLockPerKey(t *testing.T) {
	ctx := context.Background()
	d := New(t.TempDir())
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	for i := range 1000 {
		key := fmt.Sprintf("signal-%04d", i)
		if _, err := d.Put(ctx, key, []byte("{}"), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := d.Delete(ctx, key, driver.Precondition{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := d.keys.Len(); n != 0 {
		t.Fatalf("the driver keeps a lock for %d keys no write holds", n)
	}
}
