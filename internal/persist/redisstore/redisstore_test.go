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

package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strategyops/strategy-operator/internal/persist/redisstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

var (
	server *testenv.Redis
	client *redis.Client
)

// TestMain starts a Redis server of the test's own (testenv.StartRedis).
func TestMain(m *testing.M) {
	var err error
	if server, err = testenv.StartRedis(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "starting Redis:", err)
		os.Exit(1)
	}
	if client, err = redisstore.Connect(server.URL); err != nil {
		server.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = client.Close()
	server.Stop()
	os.Exit(code)
}

var stores atomic.Int64

func TestConformance(t *testing.T) { conformance(t, "conformance", nil) }

// TestConformanceBatched: the one suite again, every store's writes through one Batch.
func TestConformanceBatched(t *testing.T) { conformance(t, "batched", redisstore.NewBatch(client)) }

// conformance runs the suite on stores named prefix-N, their writes through batch when it
// is not nil.
func conformance(t *testing.T, prefix string, batch *redisstore.Batch) {
	name := map[driver.Driver]string{}
	var mu sync.Mutex
	open := func(n string, f redisstore.Fencing) driver.Driver {
		nd := redisstore.New(client, n, f)
		if batch != nil {
			nd = nd.WithBatch(batch)
		}
		mu.Lock()
		name[nd] = n
		mu.Unlock()
		return nd
	}
	of := func(d driver.Driver) string {
		mu.Lock()
		defer mu.Unlock()
		return name[d]
	}
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(*testing.T) driver.Driver {
			return open(fmt.Sprintf("%s-%d", prefix, stores.Add(1)), redisstore.Fencing{})
		},
		Reopen: func(_ *testing.T, d driver.Driver) driver.Driver { return open(of(d), redisstore.Fencing{}) },
		Corrupt: func(t *testing.T, d driver.Driver, key string) {
			if err := client.HSet(t.Context(), "strategyops:{"+of(d)+"}:items", "v:"+key, "{not json").Err(); err != nil {
				t.Fatal(err)
			}
		},
		Fenced: func(_ *testing.T, d driver.Driver, writer string, token int64) driver.Driver {
			return open(of(d), redisstore.Fencing{Writer: writer, Token: token})
		},
	})
}

// TestBadConnection: Init against no server, a wrong password or a retrying client fails
// within its context, naming the backend, the store, the address and the cause.
func TestBadConnection(t *testing.T) {
	retrying := redis.NewClient(&redis.Options{Addr: server.Addr, Password: server.Password})
	defer func() { _ = retrying.Close() }()
	cases := []struct {
		name, url string
		client    *redis.Client
		cause     string
	}{
		{"unreachable", "redis://127.0.0.1:1/0", nil, "connection refused"},
		{"wrong password", "redis://:wrong@" + server.Addr + "/0", nil, "WRONGPASS"},
		{"missing database", "redis://:" + server.Password + "@" + server.Addr + "/99", nil, "DB index"},
		{"retrying client", "", retrying, "retries commands"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			cl := c.client
			if cl == nil {
				var err error
				if cl, err = redisstore.Connect(c.url); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = cl.Close() }()
			}
			start := time.Now()
			_, err := redisstore.New(cl, "nowhere", redisstore.Fencing{}).Init(ctx, true)
			if err == nil || !strings.Contains(err.Error(), "redis store nowhere") ||
				!strings.Contains(err.Error(), cl.Options().Addr) || !strings.Contains(err.Error(), c.cause) {
				t.Fatalf("got %v, want an error naming the backend, store, address and %q", err, c.cause)
			}
			if waited := time.Since(start); waited > 4*time.Second {
				t.Errorf("Init waited %s", waited)
			}
		})
	}
}

// TestLostAnswer: the connection breaks after a write was sent. The write says
// ErrUnknownOutcome, and reading the key tells: the server applied it.
func TestLostAnswer(t *testing.T) {
	proxy, err := testenv.NewProxy(server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proxy.Close() }()
	cl, err := redisstore.Connect("redis://:" + server.Password + "@" + proxy.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	s := persist.NewStore[string]("lost", redisstore.New(cl, "lost-answer", redisstore.Fencing{}))
	defer func() { _ = s.Close() }()
	if _, err := s.Write(t.Context(), "k", "before"); err != nil {
		t.Fatal(err)
	}
	proxy.LoseReplies()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	_, err = s.Write(ctx, "k", "after")
	cancel()
	if !errors.Is(err, persist.ErrUnknownOutcome) {
		t.Fatalf("a write whose answer was lost: %v, want ErrUnknownOutcome", err)
	}
	proxy.Down()
	proxy.Up()
	if v, err := s.Read(t.Context(), "k"); err != nil || v != "after" {
		t.Fatalf("after the lost answer the key reads %q, %v; the server had applied the write", v, err)
	}
}

// TestServerKilled: every write a SIGKILLed server acknowledged is there after it
// restarts, under the settings the driver finds durable (append-only file, fsync always);
// without the append-only file the same kill loses them, and the driver warned.
func TestServerKilled(t *testing.T) {
	for _, c := range []struct {
		name    string
		extra   []string
		durable bool
	}{
		{"durable", nil, true},
		{"appendonly off", []string{"--appendonly", "no"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			srv, err := testenv.StartRedis(ctx, c.extra...)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			cl, err := redisstore.Connect(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cl.Close() }()
			var logged bytes.Buffer
			d := redisstore.New(cl, "killed", redisstore.Fencing{Writer: "runner-0", Token: 1}).
				WithLogger(slog.New(slog.NewTextHandler(&logged, nil)))
			if _, err := d.Init(ctx, true); err != nil {
				t.Fatal(err)
			}
			if warned := strings.Contains(logged.String(), "may lose acknowledged writes"); warned == c.durable {
				t.Fatalf("durable=%v but the driver's log says: %s", c.durable, logged.String())
			}
			const n = 200
			left := drivertest.WritesAfterKill(t, d, 1, n, func() {
				srv.Kill()
				if err := srv.Restart(ctx); err != nil {
					t.Fatal(err)
				}
			})
			if c.durable && left != n {
				t.Fatalf("after the kill %d of %d acknowledged writes are left", left, n)
			}
			if !c.durable && left != 0 {
				t.Fatalf("without the append-only file %d writes survived a kill; the test proves nothing", left)
			}
		})
	}
}

// roundTrips counts what a client sends: single commands and pipelines.
type roundTrips struct{ single, pipelines, piped atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.single.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		h.piped.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestBatchSharesRoundTrips: 16 stores writing at once through one Batch send their writes
// in fewer round trips than writes, and each write keeps its own outcome: in the same
// pipelines as writes that succeed, a write at a stale revision is refused with
// driver.ErrConflict, and a deposed writer's with driver.ErrFenced, to their callers only.
func TestBatchSharesRoundTrips(t *testing.T) {
	ctx := context.Background()
	c, err := redisstore.Connect(server.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	sent := &roundTrips{}
	c.AddHook(sent)
	batch := redisstore.NewBatch(c)
	const writers, rounds = 16, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("shared-%d-%d", stores.Add(1), w)
			d := redisstore.New(c, name, redisstore.Fencing{Writer: "new", Token: 2}).WithBatch(batch)
			deposed := redisstore.New(c, name, redisstore.Fencing{Writer: "old", Token: 1}).WithBatch(batch)
			if _, err := d.Init(ctx, false); err != nil {
				errs <- err
				return
			}
			var last driver.Revision
			for i := range rounds {
				stale := last
				rev, err := d.Put(ctx, "k", fmt.Appendf(nil, `{"n":%d}`, i), driver.Precondition{IfRevision: last})
				if err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
				last = rev
				if i > 0 {
					if _, err := d.Put(ctx, "k", []byte(`{"n":-1}`), driver.Precondition{IfRevision: stale}); !errors.Is(err, driver.ErrConflict) {
						errs <- fmt.Errorf("writer %d: a write at a stale revision: %v, want ErrConflict", w, err)
						return
					}
					if _, err := deposed.Put(ctx, "k", []byte(`{"n":-2}`), driver.Precondition{}); !errors.Is(err, driver.ErrFenced) {
						errs <- fmt.Errorf("writer %d: the deposed writer's write: %v, want ErrFenced", w, err)
						return
					}
				}
			}
			got, err := d.Get(ctx, "k")
			if err != nil || string(got.Value) != fmt.Sprintf(`{"n":%d}`, rounds-1) || got.Revision != last {
				errs <- fmt.Errorf("writer %d: read %s at %s (%v), want its last write at %s", w, got.Value, got.Revision, err, last)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	writes := int64(writers * (3*rounds - 2))
	trips := sent.single.Load() + sent.pipelines.Load()
	t.Logf("%d writes (and %d reads and checks) in %d round trips: %d pipelines of %d commands", writes,
		int64(writers)*2, trips, sent.pipelines.Load(), sent.piped.Load())
	if sent.pipelines.Load() == 0 || trips >= writes {
		t.Errorf("%d writes took %d round trips (%d pipelines): the batch shared none", writes, trips,
			sent.pipelines.Load())
	}
}
