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

package linearizability_test

import (
	"testing"

	"github.com/anishathalye/porcupine"

	lin "github.com/strategyops/strategy-operator/internal/persist/linearizability"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// op is a call on key "k" by client c from call to ret (never: unknown).
func op(c int, call, ret int64, in lin.Input, out lin.Output) porcupine.Operation {
	in.Key = "k"
	return porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret}
}

var (
	get      = lin.Input{Kind: lin.Get}
	absent   = lin.Output{Result: lin.NotFound}
	conflict = lin.Output{Result: lin.Conflict}
	unknown  = lin.Output{Result: lin.Unknown}
)

func put(v int64) lin.Input { return lin.Input{Kind: lin.Put, Value: v} }

func putIf(v int64, rev driver.Revision) lin.Input {
	return lin.Input{Kind: lin.PutIfRevision, Value: v, Revision: rev}
}

func wrote(rev driver.Revision) lin.Output { return lin.Output{Result: lin.OK, Revision: rev} }

func read(v int64, rev driver.Revision) lin.Output {
	return lin.Output{Result: lin.OK, Value: v, Revision: rev}
}

// TestModel pins the model's reading of the contract on small histories.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"a read sees the last write", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, 3, put(2), wrote("r2")), op(1, 4, 5, get, read(2, "r2")),
		}, true},
		{"a read does not see an overwritten write", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, 3, put(2), wrote("r2")), op(1, 4, 5, get, read(1, "r1")),
		}, false},
		{"a read reports the revision the write returned", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(1, 2, 3, get, read(1, "r9")),
		}, false},
		{"a write on the current revision applies", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, 3, put(2), wrote("r2")), op(1, 4, 5, putIf(3, "r2"), wrote("r3")),
			op(1, 6, 7, get, read(3, "r3")),
		}, true},
		{"a write on a stale revision conflicts", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, 3, put(2), wrote("r2")), op(1, 4, 5, putIf(3, "r1"), conflict),
		}, true},
		{"a write on a stale revision may not succeed", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, 3, put(2), wrote("r2")), op(1, 4, 5, putIf(3, "r1"), wrote("r3")),
		}, false},
		{"an unknown write may have applied", []porcupine.Operation{
			op(0, 0, never, put(1), unknown), op(1, 2, 3, get, read(1, "r1")), op(1, 4, 5, putIf(2, "r1"), wrote("r2")),
		}, true},
		{"an unknown write may have been lost", []porcupine.Operation{
			op(0, 0, never, put(1), unknown), op(1, 2, 3, get, absent),
		}, true},
		{"an unknown write applies once", []porcupine.Operation{
			op(0, 0, never, put(1), unknown), op(1, 2, 3, get, read(1, "r1")), op(1, 4, 5, get, absent),
		}, false},
		{"a write on the revision of an unseen unknown write conflicts", []porcupine.Operation{
			op(0, 0, 1, put(1), wrote("r1")), op(0, 2, never, put(2), unknown), op(1, 3, 4, get, read(2, "r2")),
			op(1, 5, 6, putIf(3, "r1"), conflict),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(lin.Model(), tc.history); got != tc.want {
				t.Fatalf("linearizable: %v, want %v", got, tc.want)
			}
		})
	}
}
