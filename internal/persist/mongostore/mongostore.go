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

// Package mongostore keeps stores in MongoDB, one document per key, in the collection a
// dblayout.Layout names: backtest-kit's own collections for its crash-state kinds (the
// fields, unique index and timestamps its MongoDB package gives them, so a bot on that
// package reads what a runner wrote, and the other way round), this project's collection
// for the rest.
//
//   - Every write of an existing key is one conditional document update, which MongoDB
//     applies atomically: its filter names the key, the revision a conditional write expects,
//     and the fencing condition; its update sets the value, a new revision and, for a fenced
//     writer, its token. A revision is the ObjectID this driver's last write of the
//     document made (a key rewritten with the same value still gets a new one, and one
//     never comes back after a delete), kept in an extra field (dblayout.Revision, beside
//     strategyopsToken and strategyopsWriter) that backtest-kit's package neither reads nor
//     writes, joined with the document's updatedDate, which the package (mongoose's
//     timestamps) sets on every write: so a document the package rewrote is a new revision
//     for the cache and for conditional writes. updatedDate counts milliseconds: a write of
//     the package in the same millisecond as the write before it (the package's or this
//     driver's, by the two clocks) leaves the revision as it was.
//   - Fencing. Each store has a document in strategyops-fencing naming its newest fenced
//     writer. A new holder records itself there (an update conditioned on the record it
//     read), then raises the token of every document of the store to its own; a write by an
//     older holder then finds no document it may change and is refused. Creating a key reads
//     the record first. MongoDB has no atomic update across two documents without a
//     transaction, so one narrow case is not atomic: an old holder's creation of a key the
//     new holder has never written, sent in the instant of the takeover, may land.
//   - Within a process, writes to one store run one at a time (a lock shared by every
//     driver of the process on one client, keyed by database and store; SharedLock shares
//     it across clients). MongoDB would not need it; the
//     MongoDB-protocol server the tests use, FerretDB 1.24, does: it applies an update by
//     reading the matching documents and then writing them, so two conditional updates of
//     one document can both succeed. With FerretDB, writers in different processes are
//     therefore not atomic with each other; with MongoDB they are.
//   - Values are BSON: a JSON object is a document, numbers keep their kind (int32, int64,
//     double), and a value MongoDB cannot hold (a field name starting with "$") is
//     driver.ErrInvalidValue. FerretDB 1.x cannot hold an array directly inside an array
//     (backtest-kit's risk positions are such pairs); on it (Init asks the server), such a
//     value is kept as its JSON text, marked by the field strategyopsEncoding: "json".
//   - When the answer to a write is lost (the connection cut after the command was sent, a
//     write concern the server could not confirm), the write returns driver.ErrUnknownOutcome:
//     read the key to know. A write that found no server was not sent. Connect turns off the
//     client's own retries of writes, which would report an applied conditional write as a
//     conflict.
//
// Init makes the layout's indexes when they are missing (the unique index on its key fields,
// and the single-field indexes backtest-kit's package declares), after listing them.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Fencing names this writer and its token; a token of 0 or less writes unfenced.
type Fencing = driver.Fencing

// Field names this driver adds to a document, beside dblayout.Revision.
const (
	tokenField    = "strategyopsToken"
	writerField   = "strategyopsWriter"
	encodingField = "strategyopsEncoding"

	idField = "_id"
	// updatedField is the time of a document's last write, which mongoose's timestamps set.
	updatedField = "updatedDate"
	opSet        = "$set"
	opExist      = "$exists"
)

// Driver is one store in a MongoDB database.
type Driver struct {
	db      *mongo.Database
	items   *mongo.Collection
	fences  *mongo.Collection
	layout  dblayout.Layout
	fencing Fencing
	lock    string // names this store's write lock within the process

	// recorded: this driver has found its writer recorded as the store's holder (guarded by
	// lock).
	recorded bool
	// flatArrays: the server cannot hold an array inside an array (FerretDB 1.x); set by
	// Init.
	flatArrays bool
}

var (
	_ driver.Driver         = (*Driver)(nil)
	_ driver.Snapshotter    = (*Driver)(nil)
	_ driver.TokenRecorder  = (*Driver)(nil)
	_ driver.RevisionProber = (*Driver)(nil)
)

// Option tunes a Driver.
type Option func(*Driver)

// SharedLock makes the drivers given the same name share their stores' write locks across
// clients: writers of one process that reach one server through several clients (or
// addresses) and must not race on FerretDB. Without it, the lock is the client's.
func SharedLock(name string) Option {
	return func(d *Driver) { d.lock = "shared\x00" + name + "\x00" + d.db.Name() + "\x00" + d.layout.Store }
}

// New returns the driver of the store l places in db; the client is the caller's (Close
// leaves it connected).
func New(db *mongo.Database, l dblayout.Layout, f Fencing, opts ...Option) *Driver {
	d := &Driver{db: db, items: db.Collection(l.Table), fences: db.Collection(dblayout.FencingTable),
		layout: l, fencing: f, lock: lockKey(db, l.Store)}
	for _, o := range opts {
		o(d)
	}
	return d
}

// DefaultDatabase is the database Connect uses when the URL names none.
const DefaultDatabase = "strategyops"

// Connect makes a client for url and returns the database the URL names (DefaultDatabase
// when it names none). It turns off retried writes (see the package comment) and, unless the
// URL says otherwise, asks for writes acknowledged by a majority and journaled. An
// unreachable server is found by the first call (Init), not here.
func Connect(url string) (*mongo.Client, *mongo.Database, error) {
	cs, err := connstring.Parse(url)
	if err != nil {
		return nil, nil, fmt.Errorf("mongodb: %w", err)
	}
	opts := options.Client().ApplyURI(url).SetRetryWrites(false)
	if opts.WriteConcern == nil {
		opts.SetWriteConcern(durable)
	}
	name := DefaultDatabase
	if cs.Database != "" {
		name = cs.Database
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("mongodb: %w", err)
	}
	return client, client.Database(name), nil
}

// Init implements driver.Driver: it asks which server it talks to, and makes the layout's
// indexes that are missing.
func (d *Driver) Init(ctx context.Context, _ bool) (driver.InitReport, error) {
	info, err := d.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	_, ferret := info.Lookup("ferretdbVersion").StringValueOK()
	d.flatArrays = ferret
	have, err := d.indexes(ctx)
	if err != nil {
		return driver.InitReport{}, d.wrap("init", err)
	}
	var missing []mongo.IndexModel
	for _, want := range d.wantIndexes() {
		keys := want.Keys.(bson.D)
		if want.Options != nil {
			keys = append(bson.D{{Key: "unique", Value: true}}, keys...)
		}
		if !slices.ContainsFunc(have, func(k bson.D) bool { return sameKeys(k, keys) }) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		if _, err := d.items.Indexes().CreateMany(ctx, missing); err != nil {
			return driver.InitReport{}, d.wrap("init", err)
		}
	}
	return driver.InitReport{}, nil
}

// indexes are the key specifications of the collection's indexes (none when it does not
// exist yet).
func (d *Driver) indexes(ctx context.Context) ([]bson.D, error) {
	cur, err := d.items.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []struct {
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	out := make([]bson.D, 0, len(specs))
	for _, s := range specs {
		if s.Unique { // a unique index is told apart from a plain one on the same fields
			s.Key = append(bson.D{{Key: "unique", Value: true}}, s.Key...)
		}
		out = append(out, s.Key)
	}
	return out, nil
}

// wantIndexes are the unique index on the layout's key fields and, for backtest-kit's
// collections, the single-field indexes its package declares (each key field, and when).
func (d *Driver) wantIndexes() []mongo.IndexModel {
	unique := make(bson.D, 0, len(d.layout.Unique()))
	for _, f := range d.layout.Unique() {
		unique = append(unique, bson.E{Key: f, Value: int32(1)})
	}
	out := []mongo.IndexModel{{Keys: unique, Options: options.Index().SetUnique(true)}}
	if d.layout.IsOwn() {
		return out
	}
	single := d.layout.Unique()
	if d.layout.When {
		single = append(single, "when")
	}
	for _, f := range single {
		out = append(out, mongo.IndexModel{Keys: bson.D{{Key: f, Value: int32(1)}}})
	}
	return out
}

// sameKeys compares two index key specifications field by field, direction by value (a
// server may answer 1 as an int32, an int64 or a double).
func sameKeys(a, b bson.D) bool {
	return slices.EqualFunc(a, b, func(x, y bson.E) bool {
		return x.Key == y.Key && fmt.Sprint(x.Value) == fmt.Sprint(y.Value)
	})
}

func (d *Driver) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("mongodb store %s: %s: %w", d.layout.Store, op, err)
}

// scope is the filter of the store's documents; key's document when key is not nil.
func (d *Driver) scope(key *string) bson.D {
	f := make(bson.D, 0, len(d.layout.Scope)+1)
	for _, s := range d.layout.Scope {
		f = append(f, bson.E{Key: s.Name, Value: s.Value})
	}
	if key != nil && d.layout.KeyField != "" {
		f = append(f, bson.E{Key: d.layout.KeyField, Value: *key})
	}
	return f
}

// projection reads a document's key, value and revision.
func (d *Driver) projection() bson.D {
	p := bson.D{{Key: idField, Value: 0}, {Key: d.layout.ValueField, Value: 1}, {Key: dblayout.Revision, Value: 1},
		{Key: updatedField, Value: 1}, {Key: encodingField, Value: 1}}
	if d.layout.KeyField != "" {
		p = append(p, bson.E{Key: d.layout.KeyField, Value: 1})
	}
	return p
}

// entry reads a document fetched with projection.
func (d *Driver) entry(raw bson.Raw) (string, driver.Entry, error) {
	key := d.layout.Only
	if d.layout.KeyField != "" {
		k, ok := raw.Lookup(d.layout.KeyField).StringValueOK()
		if !ok {
			return "", driver.Entry{}, fmt.Errorf("a document's %q is not a string", d.layout.KeyField)
		}
		key = k
	}
	stored := raw.Lookup(d.layout.ValueField)
	var value []byte
	var err error
	if enc, _ := raw.Lookup(encodingField).StringValueOK(); enc == "json" {
		text, ok := stored.StringValueOK()
		if !ok {
			return "", driver.Entry{}, fmt.Errorf("key %q: a value marked JSON text is not a string", key)
		}
		value = []byte(text)
	} else {
		value, err = toJSON(stored)
	}
	if err != nil {
		return "", driver.Entry{}, fmt.Errorf("key %q: %w", key, err)
	}
	return key, driver.Entry{Value: value, Revision: revisionOf(raw)}, nil
}

// revisionOf is a document's revision: the ObjectID of this driver's last write of it ("0"
// when it never wrote it), a dot, and its updatedDate in Unix milliseconds (0 when it has
// none).
func revisionOf(raw bson.Raw) driver.Revision {
	id := "0"
	if oid, ok := raw.Lookup(dblayout.Revision).ObjectIDOK(); ok {
		id = oid.Hex()
	}
	updated, _ := raw.Lookup(updatedField).DateTimeOK()
	return driver.Revision(id + "." + strconv.FormatInt(updated, 10))
}

// Get implements driver.Driver.
func (d *Driver) Get(ctx context.Context, key string) (driver.Entry, error) {
	if !d.layout.Holds(key) {
		return driver.Entry{}, driver.ErrNotFound
	}
	raw, err := d.items.FindOne(ctx, d.scope(&key), options.FindOne().SetProjection(d.projection())).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return driver.Entry{}, driver.ErrNotFound
	}
	if err != nil {
		return driver.Entry{}, d.wrap("get", err)
	}
	_, e, err := d.entry(raw)
	return e, d.wrap("get", err)
}

// Revision implements driver.RevisionProber: the key's document without its value.
func (d *Driver) Revision(ctx context.Context, key string) (driver.Revision, error) {
	if !d.layout.Holds(key) {
		return "", driver.ErrNotFound
	}
	raw, err := d.items.FindOne(ctx, d.scope(&key),
		options.FindOne().SetProjection(bson.D{{Key: idField, Value: 0}, {Key: dblayout.Revision, Value: 1},
			{Key: updatedField, Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", driver.ErrNotFound
	}
	if err != nil {
		return "", d.wrap("revision", err)
	}
	return revisionOf(raw), nil
}

// Snapshot implements driver.Snapshotter.
func (d *Driver) Snapshot(ctx context.Context) (map[string]driver.Entry, error) {
	cur, err := d.items.Find(ctx, d.scope(nil), options.Find().SetProjection(d.projection()))
	if err != nil {
		return nil, d.wrap("snapshot", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	out := map[string]driver.Entry{}
	for cur.Next(ctx) {
		key, e, err := d.entry(cur.Current)
		if err != nil {
			return nil, d.wrap("snapshot", err)
		}
		if d.layout.Holds(key) {
			out[key] = e
		}
	}
	return out, d.wrap("snapshot", cur.Err())
}

// Keys implements driver.Driver.
func (d *Driver) Keys(ctx context.Context) ([]string, error) {
	all, err := d.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	return keys, nil
}

// RecordedToken implements driver.TokenRecorder.
func (d *Driver) RecordedToken(ctx context.Context) (int64, error) {
	_, token, err := d.holder(ctx)
	return token, d.wrap("read fencing", err)
}

// Close implements driver.Driver; the client stays connected.
func (d *Driver) Close() error { return nil }

// Durability says which acknowledged writes a crash could lose under the write concern
// Connect uses for url; empty when none (Connect's default: majority, journaled).
func Durability(url string) string {
	wc := options.Client().ApplyURI(url).WriteConcern
	switch {
	case wc == nil:
		return ""
	case !wc.Acknowledged():
		return "any write: the write concern (w=0) does not wait for the server"
	case wc.Journal == nil || !*wc.Journal:
		return "the last moments of writes, on a crash of the MongoDB server: the write concern does not " +
			"ask for j=true (the journal is committed every 100 ms by default)"
	case wc.W != "majority":
		return "writes not yet on a majority of the replica set, on a failover: the write concern does not " +
			"ask for w=majority"
	}
	return ""
}
