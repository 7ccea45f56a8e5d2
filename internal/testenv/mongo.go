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

// Mongo is a MongoDB-protocol server a test started for itself: FerretDB (built from source
// into bin/ by make ferretdb) on a free port on loopback, keeping its data in a PostgreSQL
// server of its own (StartPostgres; fsync and synchronous commit on, so an acknowledged write
// survives a SIGKILL of both). PostgreSQL rather than SQLite because SQLite's one writer at a
// time, with its sleeping lock waits, caps concurrent writes far below what the benchmarks
// measure. Both die with the test process (parent-death signal) and are stopped by Stop.
type Mongo struct {
	Addr string
	pg   *Postgres
	dir  string
	bin  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
}

// MongoMaxPool is the most connections URL lets a client open. FerretDB may hold two
// PostgreSQL connections for one command (a query's, and an insert's for an upsert); with
// more commands at once than its pool (150 here) holds halves, every command waits for a
// connection another holds, forever.
const MongoMaxPool = 40

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
	pg, err := StartPostgres(ctx)
	if err != nil {
		return nil, fmt.Errorf("the MongoDB-protocol server's PostgreSQL: %w", err)
	}
	dir, err := OwnedDir("", "strategyops-mongo-")
	if err != nil {
		pg.Stop()
		return nil, err
	}
	m := &Mongo{dir: dir, bin: bin, pg: pg}
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			m.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			err = m.serve(ctx)
		}
		if err == nil {
			return m, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			m.Stop()
			return nil, err
		}
	}
}

// URL connects to database db of the server, through at most MongoMaxPool connections.
func (m *Mongo) URL(db string) string {
	return "mongodb://" + m.Addr + "/" + db + "?maxPoolSize=" + strconv.Itoa(MongoMaxPool)
}

// serve starts the server on m.Addr and waits until it accepts connections (FerretDB connects
// to PostgreSQL before it listens).
func (m *Mongo) serve(ctx context.Context) error {
	logPath := filepath.Join(m.dir, "ferretdb.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.Command(m.bin, "--postgresql-url", m.pg.URL+"&pool_max_conns=150", "--listen", m.Addr)
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

// Kill ends the server with SIGKILL: FerretDB, then its PostgreSQL.
func (m *Mongo) Kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.pg.Kill()
}

// Restart starts the server again on its data and address, after Kill.
func (m *Mongo) Restart(ctx context.Context) error {
	if err := m.pg.Restart(ctx); err != nil {
		return err
	}
	return m.serve(ctx)
}

// Stop stops the server and removes its folder.
func (m *Mongo) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	}
	m.pg.Stop()
	_ = os.RemoveAll(m.dir)
}
