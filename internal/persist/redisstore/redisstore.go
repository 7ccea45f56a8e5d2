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

// Package redisstore keeps stores in Redis: each store is one hash, with the value and the
// revision of each key in two fields ("v:<key>", "r:<key>"), beside a revision counter and
// a fencing record, all three under one hash tag so that a cluster keeps them on one node.
//
//   - Every write is one Lua script, which Redis runs without interleaving any other
//     command: it checks the fencing record, then the precondition, and only then records
//     the writer's token, takes the next revision from the counter (INCR, so a key
//     rewritten with the same value still gets a new one, and a store emptied by DeleteAll
//     never hands out an old revision again) and writes. A refused write changes nothing.
//   - Reads are one command each (HMGET, HGETALL).
//   - A write whose answer is lost (the connection broke after the script was sent)
//     returns driver.ErrUnknownOutcome. The client must not retry commands on its own
//     (MaxRetries -1; Connect makes such a client): a conditional write retried after its
//     first attempt was applied would report a conflict for a write that happened.
//   - Values are kept byte for byte. A value that is not JSON (written behind the store's
//     back) is moved to a quarantine hash by the first Init, and logged.
//
// Durability is the server's: an acknowledged write survives a crash of the Redis server
// only with the append-only file on (appendonly yes), and a crash of its machine only with
// appendfsync always. Init reads these settings once per client (CheckDurability) and logs
// a warning when acknowledged writes could be lost.
package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Fencing names this writer and its token; a token of 0 or less writes unfenced.
type Fencing = driver.Fencing

// Driver is one store in a Redis database.
type Driver struct {
	client  *redis.Client
	store   string
	fencing Fencing
	log     *slog.Logger
	batch   *Batch // nil: each write a round trip of its own

	items, revision, fence, quarantine string // Redis keys
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Snapshotter   = (*Driver)(nil)
	_ driver.TokenRecorder = (*Driver)(nil)
)

// New returns the driver of store over client; the client is the caller's (Close leaves it
// open) and must not retry commands (see Connect).
func New(client *redis.Client, store string, f Fencing) *Driver {
	prefix := "strategyops:{" + store + "}:"
	return &Driver{client: client, store: store, fencing: f, log: slog.Default(),
		items: prefix + "items", revision: prefix + "revision", fence: prefix + "fencing",
		quarantine: prefix + "quarantine"}
}

// WithLogger sets the logger for durability and quarantine reports.
func (d *Driver) WithLogger(l *slog.Logger) *Driver {
	d.log = l
	return d
}

// Connect makes a client for url (redis://[user:password@]host:port/db) that the driver
// can use: commands are never retried, and a context's deadline bounds every call.
func Connect(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	opts.MaxRetries = -1
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis store %s (%s): %s: %w", d.store, d.client.Options().Addr, op, err)
}

// checked remembers the servers (by address) whose durability Init has read and reported,
// so that the many stores of one runner report it once.
var checked sync.Map

// Init checks that the server answers and that the client does not retry, reports the
// server's durability once per client, and (initial) quarantines values that are not JSON.
func (d *Driver) Init(ctx context.Context, initial bool) (driver.InitReport, error) {
	if d.client.Options().MaxRetries > 0 {
		return driver.InitReport{}, d.wrap("init", errors.New("the client retries commands (MaxRetries > 0): "+
			"a retried conditional write whose first answer was lost would report a conflict; use Connect"))
	}
	if _, done := checked.Load(d.client.Options().Addr); !done {
		dur, err := CheckDurability(ctx, d.client)
		if err != nil {
			return driver.InitReport{}, d.wrap("init", err)
		}
		if loss := dur.Loss(); loss != "" {
			d.log.Warn("Redis may lose acknowledged writes", "addr", d.client.Options().Addr, "loss", loss,
				"appendonly", dur.AppendOnly, "appendfsync", dur.AppendFsync)
		}
		checked.Store(d.client.Options().Addr, true)
	}
	if !initial {
		return driver.InitReport{}, nil
	}
	all, err := d.client.HGetAll(ctx, d.items).Result()
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	var report driver.InitReport
	for field, value := range all {
		key, ok := strings.CutPrefix(field, "v:")
		if !ok || json.Valid([]byte(value)) {
			continue
		}
		moved, err := quarantineScript.Run(ctx, d.client, []string{d.items, d.quarantine}, key, value).Int()
		if err != nil {
			return report, d.wrap("init", err)
		}
		if moved == 1 {
			report.Quarantined++
			d.log.Warn("Quarantined a corrupt entry", "store", d.store, "key", key, "movedTo", d.quarantine,
				"reason", "not valid JSON")
		}
	}
	return report, nil
}

// Durability is what the server's persistence settings promise.
type Durability struct {
	// Known is false when the server would not tell (CONFIG refused, as some hosted
	// services do).
	Known       bool
	AppendOnly  bool
	AppendFsync string // always, everysec or no
}

// Loss says which acknowledged writes a crash can lose; empty when none.
func (d Durability) Loss() string {
	switch {
	case !d.Known:
		return "unknown: the server does not show its persistence settings (CONFIG GET)"
	case !d.AppendOnly:
		return "every write since the last snapshot, on a crash of the Redis server (appendonly is off)"
	case d.AppendFsync == "everysec":
		return "up to a second of writes, on a crash of the Redis server's machine (appendfsync everysec)"
	case d.AppendFsync != "always":
		return "writes the operating system has not flushed, on a crash of the Redis server's machine " +
			"(appendfsync " + d.AppendFsync + ")"
	}
	return ""
}

// CheckDurability reads the server's persistence settings. An error means the server did
// not answer; a server that refuses CONFIG gives an unknown Durability.
func CheckDurability(ctx context.Context, c *redis.Client) (Durability, error) {
	if err := c.Ping(ctx).Err(); err != nil {
		return Durability{}, err
	}
	settings, err := c.ConfigGet(ctx, "append*").Result()
	if err != nil {
		if _, refused := errors.AsType[redis.Error](err); refused {
			return Durability{}, nil
		}
		return Durability{}, err
	}
	return Durability{Known: true, AppendOnly: settings["appendonly"] == "yes",
		AppendFsync: settings["appendfsync"]}, nil
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	got, err := d.client.HMGet(ctx, d.items, "v:"+key, "r:"+key).Result()
	if err != nil {
		return driver.Entry{}, d.wrap("get", err)
	}
	value, ok := got[0].(string)
	rev, _ := got[1].(string)
	if !ok {
		return driver.Entry{}, driver.ErrNotFound
	}
	return driver.Entry{Value: []byte(value), Revision: driver.Revision(rev)}, nil
}

// Keys implements driver.Driver.
func (d *Driver) Keys(ctx context.Context) ([]string, error) {
	fields, err := d.client.HKeys(ctx, d.items).Result()
	if err != nil {
		return nil, d.wrap("keys", err)
	}
	var keys []string
	for _, f := range fields {
		if key, ok := strings.CutPrefix(f, "v:"); ok {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// Snapshot implements driver.Snapshotter.
func (d *Driver) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	all, err := d.client.HGetAll(ctx, d.items).Result()
	if err != nil {
		return nil, d.wrap("snapshot", err)
	}
	out := make(map[string]driver.Entry, len(all)/2)
	for f, v := range all {
		if key, ok := strings.CutPrefix(f, "v:"); ok {
			out[key] = driver.Entry{Value: []byte(v), Revision: driver.Revision(all["r:"+key])}
		}
	}
	return out, nil
}

//go:embed write.lua
var writeLua string

var (
	writeScript      = redis.NewScript(writeLua)
	quarantineScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v:' .. ARGV[1])
if v ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('HDEL', KEYS[1], 'v:' .. ARGV[1], 'r:' .. ARGV[1])
return 1`)
)

// write runs the write script: op is put, delete or clear.
func (d *Driver) write(ctx context.Context, op, key string, value []byte, pre driver.Precondition) (string, error) {
	mode := ""
	switch {
	case pre.IfAbsent:
		mode = "absent"
	case pre.IfRevision != "":
		mode = "revision"
	}
	keys := []string{d.items, d.revision, d.fence}
	args := []any{op, key, value, mode, string(pre.IfRevision), d.fencing.Writer, strconv.FormatInt(d.fencing.Token, 10)}
	var res []string
	var err error
	if d.batch != nil {
		res, err = d.batch.run(ctx, keys, args)
	} else {
		res, err = writeScript.Run(ctx, d.client, keys, args...).StringSlice()
	}
	if err != nil {
		return "", lostAnswer(err)
	}
	switch res[0] {
	case "ok":
		return res[1], nil
	case "conflict":
		return "", fmt.Errorf("%w: key %q", driver.ErrConflict, key)
	case "absent":
		return "", driver.ErrNotFound
	case "fenced":
		token, _ := strconv.ParseInt(res[2], 10, 64)
		_, err := d.fencing.Against(res[1], token)
		return "", err
	}
	return "", fmt.Errorf("the write script answered %q", res)
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	rev, err := d.write(ctx, "put", key, value, pre)
	return driver.Revision(rev), d.wrap("put", err)
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	_, err := d.write(ctx, "delete", key, nil, pre)
	return d.wrap("delete", err)
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	_, err := d.write(ctx, "clear", "", nil, driver.Precondition{})
	return d.wrap("delete all", err)
}

// Fence implements driver.Fencer.
func (d *Driver) Fence(ctx context.Context) error {
	if d.fencing.Token <= 0 {
		return nil
	}
	_, err := d.write(ctx, "fence", "", nil, driver.Precondition{})
	return d.wrap("fence", err)
}

// RecordedToken implements driver.TokenRecorder.
func (d *Driver) RecordedToken(ctx context.Context) (int64, error) {
	token, err := d.client.HGet(ctx, d.fence, "token").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return token, d.wrap("read fencing", err)
}

// Close implements driver.Driver; the client stays open.
func (d *Driver) Close() error { return nil }

// lostAnswer marks a write whose answer never came: the server may have run it. An error
// the server sent is an answer; a connection never made, or a pool with none free, sent
// nothing.
func lostAnswer(err error) error {
	if _, ok := errors.AsType[redis.Error](err); ok || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, redis.ErrClosed) {
		return err
	}
	if _, ok := errors.AsType[notSent](err); ok {
		return err
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return err
	}
	return fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
}
