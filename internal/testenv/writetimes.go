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
	"context"
	"sync"
	"time"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// WriteTimes records, store by store, the write time (driver.WriteTime) each Put of the
// drivers it wraps was given.
type WriteTimes struct {
	mu      sync.Mutex
	byStore map[string][]time.Time
}

// Wrap returns d, recording its Puts' write times under store.
func (w *WriteTimes) Wrap(store string, d driver.Driver) driver.Driver {
	return timedDriver{Driver: d, store: store, times: w}
}

// Of lists the write times recorded under store, in order.
func (w *WriteTimes) Of(store string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.byStore[store]...)
}

type timedDriver struct {
	driver.Driver
	store string
	times *WriteTimes
}

func (d timedDriver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision,
	error) {
	d.times.mu.Lock()
	if d.times.byStore == nil {
		d.times.byStore = map[string][]time.Time{}
	}
	d.times.byStore[d.store] = append(d.times.byStore[d.store], driver.WriteTime(ctx))
	d.times.mu.Unlock()
	return d.Driver.Put(ctx, key, value, pre)
}
