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
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// Postgres is a PostgreSQL server a test started for itself: its own data folder in a
// temporary directory, a free port on loopback (TCP only), trust authentication. It dies
// with the test process (parent-death signal) and is stopped by Stop.
type Postgres struct {
	// URL connects to its "postgres" database as the superuser "strategyops".
	URL  string
	Port int
	dir  string
	bin  string
	data string
	attr func() *syscall.SysProcAttr
	cmd  *exec.Cmd
	done chan struct{} // closed when the server has exited
}

// ErrNoPostgres: the machine has no PostgreSQL server binaries.
var ErrNoPostgres = errors.New("PostgreSQL is not installed (Debian: apt-get install postgresql)")

// postgresBinDir is the folder of one PostgreSQL installation, holding both initdb and
// postgres: the one on PATH, else the newest of Debian's versioned folders.
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); fileExists(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", "initdb"))
	version := func(p string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p)))); return v }
	slices.SortFunc(matches, func(a, b string) int { return version(a) - version(b) })
	for _, m := range slices.Backward(matches) {
		if dir := filepath.Dir(m); fileExists(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", ErrNoPostgres
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartPostgres initializes a data folder and starts a server on it. PostgreSQL refuses to
// run as root; as root, it runs as nobody, in a folder under /tmp (which nobody can reach).
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	parent := ""
	if root {
		parent = "/tmp"
	}
	dir, err := OwnedDir(parent, "strategyops-postgres-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir}
	fail := func(err error) (*Postgres, error) {
		p.Stop()
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	attr := func() *syscall.SysProcAttr {
		a := childproc.SysProcAttr()
		if root {
			a.Credential = &syscall.Credential{Uid: 65534, Gid: 65534} // nobody
		}
		return a
	}
	if root {
		if err := os.Chown(dir, 65534, 65534); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "strategyops",
		"--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = attr()
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w: %s", err, out))
	}
	p.bin, p.data, p.attr = bin, data, attr
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		err = p.serve(ctx, port)
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "could not bind") {
			if err != nil {
				return fail(err)
			}
			return p, nil
		}
	}
}

// serve starts the server on port and waits until it answers queries.
func (p *Postgres) serve(ctx context.Context, port int) error {
	logPath := filepath.Join(p.dir, "postgres.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200")
	cmd.SysProcAttr, cmd.Stdout, cmd.Stderr = p.attr(), log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done, p.Port = cmd, make(chan struct{}), port
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(p.done)
	p.URL = fmt.Sprintf("postgres://strategyops@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(cctx, p.URL)
		if err == nil {
			err = conn.Ping(cctx)
			_ = conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("%w: %s", errExited, logged)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not answer on port %d: %w: %s", port, err, logged)
		}
	}
}

// Kill ends the server's postmaster with SIGKILL (its backends follow it): what it had not
// written to its write-ahead log is gone, and the next start recovers from the log.
func (p *Postgres) Kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Restart starts the server again on its data folder and port, after Kill or Stop. The
// killed server's backends may hold its shared memory for a moment: a start refused for
// that is tried again, for up to 10 s.
func (p *Postgres) Restart(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.serve(ctx, p.Port)
		if err == nil || !errors.Is(err, errExited) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errExited: the server exited while starting.
var errExited = errors.New("postgres exited")

// Stop stops the server (fast shutdown) and removes its folder.
func (p *Postgres) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.RemoveAll(p.dir)
}

// FreeAddr is a loopback address with a port nothing listens on (one another process may
// still take before the caller binds it).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
