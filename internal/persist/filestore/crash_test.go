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

package filestore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// The crash test runs this test binary again as a writer child (crashChildEnv names its
// folder) and kills it with SIGKILL at random moments.
const (
	crashChildEnv = "FILESTORE_CRASH_CHILD_DIR"
	crashKeys     = 16
	crashWrites   = 10000
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// record is what the child writes: its payload's length varies so that a torn write
// would show, and Sum covers it.
type record struct {
	Key     string `json:"key"`
	Seq     int    `json:"seq"`
	Payload string `json:"payload"`
	Sum     uint32 `json:"sum"`
}

func newRecord(key string, seq int) record {
	payload := strings.Repeat(fmt.Sprintf("%s/%d;", key, seq), 20+seq%300)
	return record{Key: key, Seq: seq, Payload: payload, Sum: crc32.ChecksumIEEE([]byte(payload))}
}

func crashKey(i int) string { return fmt.Sprintf("BTC/USDT-%d", i) }

// crashChild writes forever, one key after another, and prints "ack KEY SEQ" after each
// write returns. It resumes each key's sequence from what is stored.
func crashChild(dir string) int {
	ctx := context.Background()
	s := persist.NewStore[record]("crash", filestore.New(dir))
	report, err := s.Init(ctx, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
		return 2
	}
	if report.Quarantined > 0 {
		fmt.Fprintln(os.Stderr, "quarantined", report.Quarantined)
		return 3
	}
	next := make([]int, crashKeys)
	for i := range next {
		r, err := s.Read(ctx, crashKey(i))
		switch {
		case err == nil:
			next[i] = r.Seq + 1
		case !errors.Is(err, persist.ErrNotFound):
			fmt.Fprintln(os.Stderr, "read:", err)
			return 2
		}
	}
	out := bufio.NewWriterSize(os.Stdout, 64)
	for i := 0; ; i = (i + 1) % crashKeys {
		key := crashKey(i)
		if _, err := s.Write(ctx, key, newRecord(key, next[i])); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			return 2
		}
		if _, err := fmt.Fprintf(out, "ack %d %d\n", i, next[i]); err != nil {
			return 2
		}
		if err := out.Flush(); err != nil {
			return 2
		}
		next[i]++
	}
}

// TestCrashSafetyUnderSIGKILL kills a writing process at random moments until 10,000
// writes were acknowledged, and checks after every kill that each key holds one whole
// value that was written for it, no older than its last acknowledged write, and that
// nothing had to be quarantined.
func TestCrashSafetyUnderSIGKILL(t *testing.T) {
	dir := t.TempDir()
	lastAck := make([]int, crashKeys)
	for i := range lastAck {
		lastAck[i] = -1
	}
	rng := rand.New(rand.NewPCG(testenv.Seed(t), 7)) // the kill timings
	acked, kills := 0, 0
	start := time.Now()
	for acked < crashWrites {
		n := runAndKill(t, dir, lastAck, time.Duration(5+rng.IntN(60))*time.Millisecond)
		acked += n
		kills++
		verifyAfterCrash(t, dir, lastAck)
	}
	t.Logf("%d writes acknowledged across %d SIGKILLs in %s; every check held",
		acked, kills, time.Since(start).Round(time.Millisecond))
	if kills < 20 {
		t.Fatalf("only %d kills: the test did not interrupt the writer often enough", kills)
	}
}

// runAndKill starts the writer, kills it after about d of writing, and records its
// acknowledgements. It returns how many it read.
func runAndKill(t *testing.T, dir string, lastAck []int, d time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = childproc.SysProcAttr() // dies with the test binary
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	first := make(chan struct{})
	count := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for lines.Scan() {
			var i, seq int
			if _, err := fmt.Sscanf(lines.Text(), "ack %d %d", &i, &seq); err != nil {
				continue
			}
			if count == 0 {
				close(first)
			}
			lastAck[i] = seq
			count++
		}
	}()
	select {
	case <-first:
	case <-done:
	case <-time.After(30 * time.Second):
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the writer ended on its own (%v) instead of being killed: %s", err, stderr.String())
	}
	return count
}

func verifyAfterCrash(t *testing.T, dir string, lastAck []int) {
	t.Helper()
	ctx := context.Background()
	s := persist.NewStore[record]("crash", filestore.New(dir))
	defer func() { _ = s.Close() }()
	report, err := s.Init(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if report.Quarantined != 0 {
		t.Fatalf("%d entries were corrupt after a kill", report.Quarantined)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine")); err == nil {
		t.Fatal("a quarantine folder exists")
	}
	for i, ack := range lastAck {
		key := crashKey(i)
		r, err := s.Read(ctx, key)
		if ack < 0 && errors.Is(err, persist.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("key %s (last acknowledged seq %d): %v", key, ack, err)
		}
		if r.Key != key || crc32.ChecksumIEEE([]byte(r.Payload)) != r.Sum || r != newRecord(key, r.Seq) {
			t.Fatalf("key %s holds a value that was never written for it: key %q seq %d", key, r.Key, r.Seq)
		}
		// The writer has one write in flight at a time: a key is at its last acknowledged
		// sequence, or one past it if the kill came after the rename but before the ack.
		if r.Seq < ack || r.Seq > ack+1 {
			t.Fatalf("key %s holds seq %d, last acknowledged %d: an acknowledged write was lost", key, r.Seq, ack)
		}
		lastAck[i] = r.Seq // the next writer resumes from what is stored
	}
}
