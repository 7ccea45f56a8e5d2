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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	lin "github.com/strategyops/strategy-operator/internal/persist/linearizability"
)

// The file store test runs this test binary again as a child holding the store
// (fileChildEnv says "generation:store folder:journal") and SIGKILLs it at random moments.
const (
	fileChildEnv = "LINEARIZABILITY_FILESTORE_CHILD"
	fileClients  = 8
	fileKills    = 8
)

var fileKeys = []string{"a", "b", "c", "d"}

// journalEntry is one line of the child's journal: a call (In set) or the return (Out
// set) of the call its client made last.
type journalEntry struct {
	Client int         `json:"c"`
	Time   int64       `json:"t"`
	In     *lin.Input  `json:"in,omitempty"`
	Out    *lin.Output `json:"out,omitempty"`
}

// journal appends entries to a file opened O_APPEND, one write(2) each, so concurrent
// clients never interleave. A call is journaled before it is made. No fsync: a SIGKILL
// ends the process, not the kernel, and what write(2) accepted survives it.
type journal struct{ f *os.File }

func (j journal) add(e journalEntry) {
	line, err := json.Marshal(e)
	if err == nil {
		_, err = j.f.Write(append(line, '\n'))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "journal:", err)
		os.Exit(2)
	}
}

// fileChild runs fileClients clients on the file store until it is killed; it returns
// only if it cannot start.
func fileChild(spec string) error {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		return fmt.Errorf("bad %s %q", fileChildEnv, spec)
	}
	gen, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return err
	}
	d := filestore.New(parts[1])
	if report, err := d.Init(context.Background(), true); err != nil || report.Quarantined > 0 {
		return fmt.Errorf("init: %v, %d quarantined", err, report.Quarantined)
	}
	f, err := os.OpenFile(parts[2], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// A line the previous generation's kill tore ends here, not in our first entry.
	if _, err := f.WriteString("\n"); err != nil {
		return err
	}
	j := journal{f}
	var next atomic.Int64
	ids := func() int64 { return gen<<32 | next.Add(1) } // unique across generations
	for i := range fileClients {
		c := newCaller(int(gen)*fileClients+i, fileKeys, ids)
		c.onCall = func(op porcupine.Operation) {
			in := op.Input.(lin.Input)
			j.add(journalEntry{Client: c.id, Time: op.Call, In: &in})
		}
		go func() {
			for {
				op := c.call(context.Background(), d, time.Minute)
				out := op.Output.(lin.Output)
				j.add(journalEntry{Client: c.id, Time: op.Return, Out: &out})
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

// TestFileStoreSIGKILL: the child's clients work on one file store while the parent
// SIGKILLs it at random moments and starts it again; after the last kill the parent reads
// every key. The journals of all generations and the last reads make one history.
func TestFileStoreSIGKILL(t *testing.T) {
	dir, path := filepath.Join(t.TempDir(), "store"), filepath.Join(t.TempDir(), "journal")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	start := time.Now()
	for gen := range fileKills {
		runAndKill(t, fmt.Sprintf("%d:%s:%s", gen, dir, path), time.Duration(50+rng.IntN(250))*time.Millisecond)
	}
	ops := append(readJournal(t, path), finalReads(t, dir, fileKills*fileClients)...)
	verify(t, "filestore, SIGKILL of the writer", fileClients, ops, faults{n: fileKills, kind: "SIGKILLs of the writer"},
		time.Since(start))
}

// runAndKill starts a child, lets its clients work for d and SIGKILLs it.
func runAndKill(t *testing.T, spec string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fileChildEnv+"="+spec)
	cmd.SysProcAttr = childproc.SysProcAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !bufio.NewScanner(stdout).Scan() {
		_ = cmd.Wait()
		t.Fatalf("the child did not start: %s", stderr.String())
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended on its own (%v) instead of being killed: %s", err, stderr.String())
	}
}

// readJournal turns the journal into operations: a call without a return was cut short
// by a kill, and its outcome is unknown. A line a kill tore is a call never made or a
// return never recorded, and is left out.
func readJournal(t *testing.T, path string) []porcupine.Operation {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []porcupine.Operation
	pending := map[int]porcupine.Operation{}
	for line := range bytes.Lines(data) {
		var e journalEntry
		if json.Unmarshal(line, &e) != nil {
			continue
		}
		if e.In != nil {
			pending[e.Client] = porcupine.Operation{ClientId: e.Client, Input: *e.In, Call: e.Time}
			continue
		}
		op, ok := pending[e.Client]
		if !ok {
			t.Fatalf("the journal holds a return of client %d without its call", e.Client)
		}
		delete(pending, e.Client)
		op.Output, op.Return = *e.Out, e.Time
		ops = append(ops, op)
	}
	for _, op := range pending {
		op.Output, op.Return = lin.Output{Result: lin.Unknown}, never
		ops = append(ops, op)
	}
	return slices.DeleteFunc(ops, func(op porcupine.Operation) bool { return !recorded(op) })
}

// finalReads reads every key in this process, after the last kill.
func finalReads(t *testing.T, dir string, clientID int) []porcupine.Operation {
	t.Helper()
	d := filestore.New(dir)
	if _, err := d.Init(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Close() }()
	ops := make([]porcupine.Operation, 0, len(fileKeys))
	for _, key := range fileKeys {
		in := lin.Input{Kind: lin.Get, Key: key}
		op := porcupine.Operation{ClientId: clientID, Input: in, Call: clock()}
		op.Output, op.Return = do(t.Context(), d, in), clock()
		ops = append(ops, op)
	}
	return ops
}
