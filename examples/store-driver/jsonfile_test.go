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

package jsonfile

import (
	"path/filepath"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

// TestConformance certifies the driver with strategy-operator's conformance suite, every
// case of it: this driver can reopen its store, quarantine corrupt values and fence
// writers.
func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver {
			return New(filepath.Join(t.TempDir(), "store.json"), driver.Fencing{})
		},
		Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
			return New(d.(*Driver).Path(), driver.Fencing{})
		},
		Corrupt: func(t *testing.T, d driver.Driver, key string) {
			jd := d.(*Driver)
			jd.mu.Lock()
			defer jd.mu.Unlock()
			doc, err := jd.load()
			if err != nil {
				t.Fatal(err)
			}
			e := doc.Entries[key]
			e.Value = []byte(`{"name": "cut off`)
			doc.Entries[key] = e
			if err := jd.save(doc); err != nil {
				t.Fatal(err)
			}
		},
		Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
			return New(d.(*Driver).Path(), driver.Fencing{Writer: writer, Token: token})
		},
	})
}
