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
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a server (the API server, a database) that a test can
// cut: Down drops every open connection and refuses new ones until Up; LoseReplies lets
// requests through and drops the answers, as a connection that breaks after a request was
// sent does.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	mute  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a loopback port and forwards to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.forward(c) })
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.drop(c)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer p.drop(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go func() {
		_, _ = io.Copy(c, replies{p, up})
		done <- struct{}{}
	}()
	<-done
}

// replies reads a server's answers, dropping them while the proxy is muted.
type replies struct {
	p  *Proxy
	up net.Conn
}

func (r replies) Read(b []byte) (int, error) {
	for {
		n, err := r.up.Read(b)
		r.p.mu.Lock()
		mute := r.p.mute
		r.p.mu.Unlock()
		if !mute || err != nil {
			return n, err
		}
	}
}

// LoseReplies forwards requests but drops every answer until Up: a write sent now may be
// applied, and its writer never hears.
func (p *Proxy) LoseReplies() {
	p.mu.Lock()
	p.mute = true
	p.mu.Unlock()
}

func (p *Proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// Down drops every connection and refuses new ones.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Up accepts connections again, and passes answers again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down, p.mute = false, false
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Down()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// APIServerProxy is a Proxy in front of the environment's API server, closed when t ends;
// a client reaches the API server through it at "https://" + Addr() (its certificate
// names 127.0.0.1, whatever the port).
func (e *Environment) APIServerProxy(t testing.TB) *Proxy {
	t.Helper()
	api, err := url.Parse(e.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProxy(api.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
