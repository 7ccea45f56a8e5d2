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

package driver

import (
	"context"
	"time"
)

type writeTimeKey struct{}

// WithWriteTime returns ctx carrying the time the writes made with it belong to:
// backtest-kit's `when`, the time of the tick that made the change (in a backtest, a
// simulated time), which need not be the wall clock's. A driver whose entries keep such a
// time (a database table's "when" field) stores it with each value; the others ignore it.
// It travels in the context so that every layer between the caller and the driver (a cache,
// metrics) passes it on unchanged. (A replica's copy, made later by replicastore, and a
// backend switch's copy are written at their own time.)
func WithWriteTime(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, writeTimeKey{}, t)
}

// WriteTime is the time ctx carries for its writes (WithWriteTime), or the wall clock's
// now when it carries none.
func WriteTime(ctx context.Context) time.Time {
	if t, ok := WriteTimeOf(ctx); ok {
		return t
	}
	return time.Now()
}

// WriteTimeOf is the time ctx carries for its writes, and whether it carries one.
func WriteTimeOf(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(writeTimeKey{}).(time.Time)
	return t, ok
}
