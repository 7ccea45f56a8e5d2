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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// Redis is a Redis server a test started for itself: its own folder, a free port on
// loopback, a password, and the settings under which an acknowledged write survives a
// crash of the server (append-only file, fsync on every write). It dies with the test
// process (parent-death signal) and is stopped by Stop.
type Redis struct {
	// URL connects with the server's password, to database 0.
	URL      string
	Addr     string
	Password string
	dir      string
	args     []string
	cmd      *exec.Cmd
	done     chan struct{} // closed when the server has exited
}

// ErrNoRedis: the machine has no redis-server.
var ErrNoRedis = errors.New("redis-server is not installed (Debian: apt-get install redis-server)")

// RedisSettings are the durable settings StartRedis uses; a test may add others (later
// ones win), such as "--appendonly", "no".
var RedisSettings = []string{"--appendonly", "yes", "--appendfsync", "always", "--save", ""}

// StartRedis starts a server with RedisSettings and extra after them.
func StartRedis(ctx context.Context, extra ...string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	dir, err := OwnedDir("", "strategyops-redis-")
	if err != nil {
		return nil, err
	}
	r := &Redis{dir: dir, Password: "strategyops-test"}
	r.args = append([]string{bin}, RedisSettings...)
	r.args = append(r.args, extra...)
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err == nil {
			r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			err = r.serve(ctx)
		}
		if err == nil {
			r.URL = fmt.Sprintf("redis://:%s@%s/0", r.Password, r.Addr)
			return r, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "Address already in use") {
			r.Stop()
			return nil, err
		}
	}
}

// serve starts the server on r.Addr and waits until it answers.
func (r *Redis) serve(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(r.Addr)
	logPath := filepath.Join(r.dir, "redis.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	args := append(r.args[1:len(r.args):len(r.args)], "--port", port, "--bind", "127.0.0.1",
		"--dir", r.dir, "--requirepass", r.Password, "--daemonize", "no", "--logfile", "")
	cmd := exec.Command(r.args[0], args...)
	cmd.SysProcAttr, cmd.Stdout, cmd.Stderr = childproc.SysProcAttr(), log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := r.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-r.done:
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server exited: %s", logged)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			logged, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server did not answer on %s: %w: %s", r.Addr, err, logged)
		}
	}
}

// ping sends AUTH and PING in the protocol's inline form and wants +OK and +PONG.
func (r *Redis) ping(ctx context.Context) error {
	var d net.Dialer
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := d.DialContext(cctx, "tcp", r.Addr)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("AUTH " + r.Password + "\r\nPING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n := 0
	for n < len("+OK\r\n+PONG\r\n") {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
	}
	if got := string(buf[:n]); got != "+OK\r\n+PONG\r\n" {
		return fmt.Errorf("redis-server answered %q", got)
	}
	return nil
}

// Kill ends the server with SIGKILL: what it had not written to its files is gone.
func (r *Redis) Kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Restart starts the server again on its folder and address, after Kill or Stop.
func (r *Redis) Restart(ctx context.Context) error { return r.serve(ctx) }

// Stop stops the server and removes its folder.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			r.Kill()
		}
	}
	_ = os.RemoveAll(r.dir)
}
