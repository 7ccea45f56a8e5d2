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
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"golang.org/x/sys/unix"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	lin "github.com/strategyops/strategy-operator/internal/persist/linearizability"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const (
	// checkTimeout bounds the checker. Histories are sized to take a few seconds, but one
	// with many calls left without an answer (a MongoDB run cut 157 times left 201) took
	// the checker past 30 s on a machine with both cores busy.
	checkTimeout = 2 * time.Minute
	// never is the return time of an operation whose outcome is unknown: after every
	// other operation, so the checker may place it anywhere after its call.
	never = math.MaxInt64
	// signalID is the one signal of every value's partial record.
	signalID = "sig"
)

// clock is CLOCK_MONOTONIC in nanoseconds: it never steps, and it is one clock for every
// process on the machine, so a child's timestamps compare with its parent's.
func clock() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// encode is the value of write id: a partial record (v1.PartialData), which every store
// takes, the StrategyState's partial field included, with the id as its one level.
func encode(id int64) []byte {
	return fmt.Appendf(nil, `{%q:{"profitLevels":[%d],"lossLevels":[]}}`, signalID, id)
}

// decode is the write id a value carries, or -1, which no write has, when it carries none.
func decode(value []byte) int64 {
	var d v1.PartialData
	if err := json.Unmarshal(value, &d); err != nil || len(d[signalID].ProfitLevels) != 1 {
		return -1
	}
	return int64(d[signalID].ProfitLevels[0])
}

// do calls in on d and returns what it answered.
func do(ctx context.Context, d driver.Driver, in lin.Input) lin.Output {
	switch in.Kind {
	case lin.Get:
		e, err := d.Get(ctx, in.Key)
		if err != nil {
			return lin.Output{Result: lin.Classify(err)}
		}
		return lin.Output{Result: lin.OK, Value: decode(e.Value), Revision: e.Revision}
	case lin.Put, lin.PutIfRevision, lin.PutIfAbsent:
		rev, err := d.Put(ctx, in.Key, encode(in.Value), in.Precondition())
		if err != nil {
			return lin.Output{Result: lin.Classify(err)}
		}
		return lin.Output{Result: lin.OK, Revision: rev}
	default:
		return lin.Output{Result: lin.Classify(d.Delete(ctx, in.Key, in.Precondition()))}
	}
}

// caller is one client making random calls on a few keys. Conditional calls use the
// revision the client last saw of the key, which other clients' writes keep making stale,
// so that both outcomes of a precondition occur.
type caller struct {
	id   int
	rng  *rand.Rand
	keys []string
	seen map[string]driver.Revision
	// ids hands out the values writes write, unique across the history.
	ids func() int64
	// onCall, when set, sees each call before it is made.
	onCall func(porcupine.Operation)
}

func newCaller(id int, keys []string, ids func() int64) *caller {
	seed := uint64(time.Now().UnixNano())
	return &caller{id: id, rng: rand.New(rand.NewPCG(seed, uint64(id))), keys: keys,
		seen: map[string]driver.Revision{}, ids: ids}
}

// next picks a call. Reads and conditional writes are the most frequent; deletes keep
// keys coming and going, so that put-if-absent both fails and succeeds. A client that has
// seen no revision of the key writes if absent and deletes unconditionally.
func (c *caller) next() lin.Input {
	key := c.keys[c.rng.IntN(len(c.keys))]
	rev := c.seen[key]
	switch n := c.rng.IntN(100); {
	case n < 40:
		return lin.Input{Kind: lin.Get, Key: key}
	case n < 55:
		return lin.Input{Kind: lin.Put, Key: key, Value: c.ids()}
	case n < 75 && rev != "":
		return lin.Input{Kind: lin.PutIfRevision, Key: key, Value: c.ids(), Revision: rev}
	case n < 85:
		return lin.Input{Kind: lin.PutIfAbsent, Key: key, Value: c.ids()}
	case n < 90 || rev == "":
		return lin.Input{Kind: lin.Delete, Key: key}
	default:
		return lin.Input{Kind: lin.DeleteIfRevision, Key: key, Revision: rev}
	}
}

// observe remembers the revision an answer shows; a conflict or an unknown outcome
// shows none.
func (c *caller) observe(in lin.Input, out lin.Output) {
	switch {
	case out.Revision != "":
		c.seen[in.Key] = out.Revision
	case out.Result == lin.NotFound, out.Result == lin.OK && (in.Kind == lin.Delete || in.Kind == lin.DeleteIfRevision):
		delete(c.seen, in.Key)
	}
}

// call makes one call on d with timeout and returns it as an operation.
func (c *caller) call(ctx context.Context, d driver.Driver, timeout time.Duration) porcupine.Operation {
	op := porcupine.Operation{ClientId: c.id, Input: c.next(), Call: clock()}
	if c.onCall != nil {
		c.onCall(op)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := do(cctx, d, op.Input.(lin.Input))
	op.Output, op.Return = out, clock()
	c.observe(op.Input.(lin.Input), out)
	if out.Result == lin.Unknown {
		op.Return = never
	}
	return op
}

// recorded says whether op goes into the history: a read that failed is left out, as it
// changed nothing and constrains nothing, and an unknown operation only widens the
// checker's search.
func recorded(op porcupine.Operation) bool {
	return op.Input.(lin.Input).Kind != lin.Get || op.Output.(lin.Output).Result != lin.Unknown
}

// history collects operations from concurrent clients.
type history struct {
	mu   sync.Mutex
	ops  []porcupine.Operation
	done atomic.Int64 // calls made, recorded or not
}

func (h *history) add(op porcupine.Operation) {
	h.done.Add(1)
	if !recorded(op) {
		return
	}
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// run is one history: its clients and their drivers, and the faults injected meanwhile.
type run struct {
	name    string
	keys    []string
	ops     int           // per client
	timeout time.Duration // per operation
	drivers []driver.Driver
	// shared is how many drivers go through each connection the faults cut (1 when unset):
	// a cut can leave each of them without an answer.
	shared int
	// faults, when set, injects faults while the clients run, watching progress (the
	// fraction of calls made), and returns how many it injected and of what kind.
	faults func(progress func() float64) faults
}

// record runs every client to the end and returns the history and the faults injected.
func (r run) record(ctx context.Context) ([]porcupine.Operation, faults) {
	var h history
	var next atomic.Int64
	ids := func() int64 { return next.Add(1) }
	total := float64(r.ops * len(r.drivers))
	progress := func() float64 { return float64(h.done.Load()) / total }
	injected := make(chan faults, 1)
	go func() {
		var f faults
		if r.faults != nil {
			f = r.faults(progress)
		}
		injected <- f
	}()
	var wg sync.WaitGroup
	for i, d := range r.drivers {
		c := newCaller(i, r.keys, ids)
		wg.Go(func() {
			for range r.ops {
				h.add(c.call(ctx, d, r.timeout))
			}
		})
	}
	wg.Wait()
	return h.ops, <-injected
}

// faults is how many faults of which kind a run injected, and what they did to the
// clients: how many clients the connection cuts cut off (a client once per cut), and how
// long each server kill kept the server away.
type faults struct {
	n       int
	kind    string
	cut     int
	outages []time.Duration
}

// unanswered bounds the calls that f could leave without an answer in r, from what the
// test did, not from how fast the machine runs: per client cut off, the call it had under
// way and one begun on a connection already cut but not yet seen closed, for each driver
// sharing that client's connections (their writes in one pipeline); per server kill,
// for every client, those two, one more per call timeout the server stayed away, and one
// begun just before the restarted server answered again: its first answers are slow (its
// caches fill), so that call can reach its timeout too.
func (r run) unanswered(f faults) int {
	n := 2 * f.cut * max(1, r.shared)
	for _, down := range f.outages {
		n += len(r.drivers) * (3 + int(down/r.timeout))
	}
	return n
}

func (f faults) String() string {
	if f.n == 0 {
		return "none"
	}
	if f.cut > 0 {
		return fmt.Sprintf("%d %s (%d clients cut off)", f.n, f.kind, f.cut)
	}
	return fmt.Sprintf("%d %s", f.n, f.kind)
}

// unknowns counts the operations whose outcome is unknown.
func unknowns(ops []porcupine.Operation) int {
	n := 0
	for _, op := range ops {
		if op.Output.(lin.Output).Result == lin.Unknown {
			n++
		}
	}
	return n
}

// check runs the checker on ops, logs the run's figures and returns the verdict, with
// the checker's account for a visualization.
func check(t *testing.T, name string, clients int, ops []porcupine.Operation, f faults,
	took time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	t.Helper()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(lin.Model(), ops, checkTimeout)
	t.Logf("%s: %d clients, %d operations (%d unknown) in %s; faults: %s; verdict %s in %s", name, clients,
		len(ops), unknowns(ops), took.Round(time.Millisecond), f, res, time.Since(start).Round(time.Millisecond))
	return res, info
}

// requireLinearizable records r's history, which must have seen r's faults, and verifies it.
func requireLinearizable(t *testing.T, r run) {
	t.Helper()
	start := time.Now()
	ops, f := r.record(t.Context())
	if r.faults != nil && f.n == 0 {
		t.Fatalf("%s: no fault was injected", r.name)
	}
	verify(t, r.name, len(r.drivers), ops, f, time.Since(start))
	// A store that left calls without an answer that no fault explains would pass the check
	// vacuously.
	if n, most := unknowns(ops), r.unanswered(f); n > most {
		t.Fatalf("%s: %d of %d operations ended without an answer, more than the %d its faults (%s) could leave so",
			r.name, n, len(ops), most, f)
	}
}

// verify fails the test unless ops is linearizable, naming the visualization of a
// history that is not.
func verify(t *testing.T, name string, clients int, ops []porcupine.Operation, f faults, took time.Duration) {
	t.Helper()
	res, info := check(t, name, clients, ops, f, took)
	switch res {
	case porcupine.Unknown:
		t.Fatalf("%s: the checker gave up after %s: the history is too large to decide", name, checkTimeout)
	case porcupine.Illegal:
		t.Fatalf("%s: the history is NOT linearizable; visualization: %s", name, visualize(t, info))
	}
}

// visualize writes porcupine's visualization of info into a file that outlives the test.
func visualize(t *testing.T, info porcupine.LinearizationInfo) string {
	t.Helper()
	f, err := os.CreateTemp("", "linearizability-*.html")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := porcupine.Visualize(lin.Model(), info, f); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
