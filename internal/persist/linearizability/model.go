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

// Package linearizability is a porcupine model of the driver contract (package driver):
// one key's value and revision, read, written and deleted with or without preconditions.
// Its tests record histories of concurrent clients against the real stores, under
// connection cuts, API server kills and SIGKILLs of the writer, and check them.
//
// Values are opaque to the model: each put writes a number no other put writes, so a read
// names the write it sees. Revisions are opaque too; the model only compares them. A
// write's state carries the revision the write returned, and a conditional operation on
// revision R applies iff the key's latest write produced R.
//
// An operation whose outcome is unknown (its context ended, its connection was cut, its
// process was killed) is recorded with Result Unknown and a return time after every other
// operation: the checker may then place it anywhere after its call, or nowhere, so it
// counts as applied or not, whichever the rest of the history needs.
package linearizability

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/anishathalye/porcupine"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Kind is an operation of the contract.
type Kind uint8

// The operations: Get, and Put and Delete with each precondition they take.
const (
	Get Kind = iota
	Put
	PutIfRevision
	PutIfAbsent
	Delete
	DeleteIfRevision
)

var kindNames = [...]string{"get", "put", "put-if-rev", "put-if-absent", "delete", "delete-if-rev"}

func (k Kind) String() string { return kindNames[k] }

// Input is one call.
type Input struct {
	Kind Kind
	Key  string
	// Value is what a put writes, unique in the history and never 0.
	Value int64 `json:",omitempty"`
	// Revision is the precondition of PutIfRevision and DeleteIfRevision.
	Revision driver.Revision `json:",omitempty"`
}

// Precondition is the driver precondition of the call.
func (in Input) Precondition() driver.Precondition {
	return driver.Precondition{IfRevision: in.Revision, IfAbsent: in.Kind == PutIfAbsent}
}

// Result is how a call ended.
type Result uint8

// The results. Unknown is any error that does not say what happened.
const (
	OK Result = iota
	NotFound
	Conflict
	Unknown
)

var resultNames = [...]string{"ok", "not-found", "conflict", "unknown"}

func (r Result) String() string { return resultNames[r] }

// Classify maps a driver's error onto a Result: only ErrNotFound and ErrConflict are
// definite answers; anything else may have happened or not.
func Classify(err error) Result {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, driver.ErrNotFound):
		return NotFound
	case errors.Is(err, driver.ErrConflict):
		return Conflict
	default:
		return Unknown
	}
}

// Output is what a call returned: a Get's value and revision, a Put's new revision.
type Output struct {
	Result   Result
	Value    int64           `json:",omitempty"`
	Revision driver.Revision `json:",omitempty"`
}

// State is one key. Revision is empty while the latest write's answer was lost and no
// read has seen it yet.
type State struct {
	Present  bool
	Value    int64
	Revision driver.Revision
}

// Step is the contract: in applied to s, legal if out is the answer it gives.
func Step(s State, in Input, out Output) (bool, State) {
	want, next := apply(s, in, out.Revision)
	if out.Result == Unknown {
		return true, next
	}
	return out == want, next
}

// apply runs in on s and returns the answer the contract requires and the state after.
// rev is the revision the store reported (a put's new one, a read's), empty if unknown.
func apply(s State, in Input, rev driver.Revision) (Output, State) {
	switch in.Kind {
	case Get:
		if !s.Present {
			return Output{Result: NotFound}, s
		}
		if s.Revision == "" {
			// The first read of a write whose answer was lost learns its revision; every
			// later read and conditional write must agree with it.
			s.Revision = rev
		}
		return Output{Result: OK, Value: s.Value, Revision: s.Revision}, s
	case Put, PutIfRevision, PutIfAbsent:
		if !holds(s, in) {
			return Output{Result: Conflict}, s
		}
		return Output{Result: OK, Revision: rev}, State{Present: true, Value: in.Value, Revision: rev}
	default:
		switch {
		case !s.Present:
			return Output{Result: NotFound}, s
		case !holds(s, in):
			return Output{Result: Conflict}, s
		}
		return Output{Result: OK}, State{}
	}
}

// holds reports whether in's precondition holds on s. A key whose revision is unknown
// matches no revision: the caller's revision came from an earlier read or write, and a
// write since then, the one whose answer was lost, replaced it.
func holds(s State, in Input) bool {
	switch {
	case in.Kind == PutIfAbsent:
		return !s.Present
	case in.Revision != "":
		return s.Present && s.Revision != "" && s.Revision == in.Revision
	}
	return true
}

// Model is the porcupine model, partitioned by key: keys are independent in the contract.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: byKey,
		Init:      func() any { return State{} },
		Step: func(s, in, out any) (bool, any) {
			return Step(s.(State), in.(Input), out.(Output))
		},
		DescribeOperation: func(in, out any) string { return describe(in.(Input), out.(Output)) },
		DescribeState:     func(s any) string { return describeState(s.(State)) },
	}
}

func byKey(history []porcupine.Operation) [][]porcupine.Operation {
	keys := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(Input).Key
		keys[k] = append(keys[k], op)
	}
	return slices.Collect(maps.Values(keys))
}

func describe(in Input, out Output) string {
	call := fmt.Sprintf("%s(%s", in.Kind, in.Key)
	if in.Value != 0 {
		call += fmt.Sprintf(", %d", in.Value)
	}
	if in.Revision != "" {
		call += ", @" + string(in.Revision)
	}
	ret := out.Result.String()
	if out.Value != 0 {
		ret = fmt.Sprintf("%d", out.Value)
	}
	if out.Revision != "" {
		ret += " @" + string(out.Revision)
	}
	return call + ") -> " + ret
}

func describeState(s State) string {
	switch {
	case !s.Present:
		return "absent"
	case s.Revision == "":
		return fmt.Sprintf("%d @?", s.Value)
	}
	return fmt.Sprintf("%d @%s", s.Value, s.Revision)
}
