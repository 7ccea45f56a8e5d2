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
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// Mongo is a MongoDB-protocol server a test started for itself: FerretDB over SQLite (built
// from source into bin/ by make ferretdb), in its own folder, on a free port on loopback.
// SQLite commits each write to its write-ahead log with a sync before FerretDB answers, so
// an acknowledged write survives a SIGKILL of the server. It dies with the test process
// (parent-death signal) and is stopped by Stop.
type Mongo struct {
	// URL connects to the server; the database is the test's to name.
	URL  string
	Addr string
	dir  string
	bin  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
}

// ErrNoMongo: FerretDB has not been built.
var ErrNoMongo = errors.New("the MongoDB-protocol test server is not built: run make ferretdb " +
	"(or set FERRETDB to its binary)")

// ferretDBBinary is $FERRETDB, or the newest bin/ferretdb-* of the checkout the test runs in.
func ferretDBBinary() (string, error) {
	if p := os.Getenv("FERRETDB"); p != "" {
		if fileExists(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: FERRETDB=%s does not exist", ErrNoMongo, p)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for ; ; dir = filepath.Dir(dir) {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "PROJECT")) {
			matches, _ := filepath.Glob(filepath.Join(dir, "bin", "ferretdb-v*"))
			if len(matches) == 0 {
				return "", ErrNoMongo
			}
			slices.Sort(matches)
			return matches[len(matches)-1], nil
		}
		if dir == filepath.Dir(dir) {
			return "", ErrNoMongo
		}
	}
}

// StartMongo starts a server on a free port.
func StartMongo(ctx context.Context) (*Mongo, error) {
	bin, err := ferretDBBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "strategyops-mongo-")
	if err != nil {
		return nil, err
	}
	m := &Mongo{dir: dir, bin: bin}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			err = m.serve(ctx)
		}
		if err == nil {
			m.URL = "mongodb://" + m.Addr + "/"
			return m, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			m.Stop()
			return nil, err
		}
	}
}

// serve starts the server on m.Addr and waits until it accepts connections (FerretDB opens
// its SQLite folder before it listens).
func (m *Mongo) serve(ctx context.Context) error {
	logPath := filepath.Join(m.dir, "ferretdb.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	data := filepath.Join(m.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "--dir", data, "--listen", m.Addr)
	cmd.SysProcAttr, cmd.Stdout, cmd.Stderr = childproc.SysProcAttr(), log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var d net.Dialer
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(cctx, "tcp", m.Addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-m.done:
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("ferretdb exited: %s", logged)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("ferretdb did not listen on %s: %w: %s", m.Addr, err, logged)
		}
	}
}

// Kill ends the server with SIGKILL.
func (m *Mongo) Kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// Restart starts the server again on its folder and address, after Kill or Stop.
func (m *Mongo) Restart(ctx context.Context) error { return m.serve(ctx) }

// Stop stops the server and removes its folder.
func (m *Mongo) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			m.Kill()
		}
	}
	_ = os.RemoveAll(m.dir)
}
