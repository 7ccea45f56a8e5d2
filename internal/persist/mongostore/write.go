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

package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// durable is the write concern Connect asks for when the URL names none: acknowledged by a
// majority of the replica set, after its journal is on disk.
var durable = &writeconcern.WriteConcern{W: "majority", Journal: new(true)}

// answered classifies the error of a write command. The server's own refusal is an answer:
// a duplicate key stays as it is (callers test it), a document over the size limit is
// driver.ErrTooLarge, one the server cannot store driver.ErrInvalidValue. A write that found
// no server was not sent. Anything else (a cut connection, a deadline passed while waiting
// for the answer, a write concern not confirmed) may have been applied:
// driver.ErrUnknownOutcome.
func answered(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[topology.ServerSelectionError](err); ok {
		return err
	}
	if errors.Is(err, driver.ErrInvalidValue) {
		return err
	}
	if me, ok := errors.AsType[mongo.MarshalError](err); ok {
		return fmt.Errorf("%w: %w", driver.ErrInvalidValue, me)
	}
	se, ok := errors.AsType[mongo.ServerError](err)
	if !ok || mongo.IsNetworkError(err) || writeConcernFailed(err) {
		return fmt.Errorf("%w: %w", driver.ErrUnknownOutcome, err)
	}
	switch {
	case se.HasErrorCode(10334), se.HasErrorCode(17419), se.HasErrorCode(17420):
		return fmt.Errorf("%w: %w", driver.ErrTooLarge, err)
	case se.HasErrorCode(2), se.HasErrorCode(52), se.HasErrorCode(56), se.HasErrorCode(57):
		return fmt.Errorf("%w: %w", driver.ErrInvalidValue, err)
	}
	return err
}

// writeConcernFailed: the server applied the write but could not confirm the write concern.
func writeConcernFailed(err error) bool {
	we, ok := errors.AsType[mongo.WriteException](err)
	return ok && we.WriteConcernError != nil
}

// holder is the store's newest fenced writer and its token ("", 0 when none has written).
func (d *Driver) holder(ctx context.Context) (string, int64, error) {
	var rec struct {
		Writer string `bson:"writer"`
		Token  int64  `bson:"token"`
	}
	err := d.fences.FindOne(ctx, bson.D{{Key: idField, Value: d.layout.Store}}).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", 0, nil
	}
	return rec.Writer, rec.Token, err
}

// admit decides whether this driver's writer may write, and records it as the store's
// holder when it is new: it updates the fencing record (conditioned on the record it read,
// so that of two new holders only one records at a time) and then raises every document of
// the store to its token. The raise is made again until it succeeds once (a record whose
// raise failed names this writer already). With force, it reads the record even when it
// has recorded before. Called with the store's lock held; unfenced drivers are always
// admitted.
func (d *Driver) admit(ctx context.Context, force bool) error {
	if d.fencing.Token <= 0 || d.recorded && !force {
		return nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select { // another writer recorded meanwhile: decide again, after a breath
			case <-time.After(time.Duration(min(attempt, 10)) * 5 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		writer, token, err := d.holder(ctx)
		if err != nil {
			return err
		}
		record, err := d.fencing.Against(writer, token)
		if err != nil {
			d.recorded = false
			return err
		}
		if !record {
			return d.raise(ctx)
		}
		set := bson.D{{Key: "writer", Value: d.fencing.Writer}, {Key: "token", Value: d.fencing.Token}}
		var res *mongo.UpdateResult
		if token == 0 && writer == "" {
			_, err = d.fences.InsertOne(ctx, append(bson.D{{Key: idField, Value: d.layout.Store}}, set...))
			if mongo.IsDuplicateKeyError(err) {
				continue // another writer recorded first: decide again against it
			}
		} else {
			res, err = d.fences.UpdateOne(ctx, bson.D{{Key: idField, Value: d.layout.Store},
				{Key: "writer", Value: writer}, {Key: "token", Value: token}}, bson.D{{Key: opSet, Value: set}})
			if err == nil && res.MatchedCount == 0 {
				continue
			}
		}
		if err != nil {
			return answered(err)
		}
		d.recorded = false // recorded, not raised yet
		return d.raise(ctx)
	}
}

// raise gives every document of the store that an older writer (or none) wrote this
// driver's token, once per driver: a write of an older holder then matches none of them.
func (d *Driver) raise(ctx context.Context) error {
	if d.recorded {
		return nil
	}
	set := bson.D{{Key: opSet, Value: bson.D{{Key: tokenField, Value: d.fencing.Token},
		{Key: writerField, Value: d.fencing.Writer}}}}
	if _, err := d.items.UpdateMany(ctx, append(d.scope(nil), bson.E{Key: "$or", Value: older(d.fencing.Token)}),
		set); err != nil {
		return answered(err)
	}
	d.recorded = true
	return nil
}

// older are the conditions of a document no writer with token or a newer one has written.
func older(token int64) bson.A {
	return bson.A{
		bson.D{{Key: tokenField, Value: bson.D{{Key: opExist, Value: false}}}},
		bson.D{{Key: tokenField, Value: bson.D{{Key: "$lt", Value: token}}}},
	}
}

// admitted is the filter condition of a document this driver's writer may change: one no
// newer writer has written (nil for an unfenced driver).
func (d *Driver) admitted() bson.D {
	if d.fencing.Token <= 0 {
		return nil
	}
	return bson.D{{Key: "$or", Value: append(older(d.fencing.Token),
		bson.D{{Key: tokenField, Value: d.fencing.Token}, {Key: writerField, Value: d.fencing.Writer}})}}
}

// atRevision is the filter condition of a document at revision r (see revisionOf).
func atRevision(key string, r driver.Revision) (bson.D, error) {
	refused := fmt.Errorf("%w: key %q: revision %q is not this store's", driver.ErrConflict, key, r)
	hex, ms, ok := strings.Cut(string(r), ".")
	updated, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return nil, refused
	}
	at := bson.D{{Key: updatedField, Value: bson.DateTime(updated)}}
	if updated == 0 { // none, or null: a filter on null matches both
		at = bson.D{{Key: updatedField, Value: nil}}
	}
	if hex == "0" {
		return append(at, bson.E{Key: dblayout.Revision, Value: bson.D{{Key: opExist, Value: false}}}), nil
	}
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		return nil, refused
	}
	return append(at, bson.E{Key: dblayout.Revision, Value: id}), nil
}

// changes are the fields a write sets besides the key fields: the value, when (the write's
// time, driver.WriteTime: backtest-kit keeps it as a number of milliseconds), the update
// time, the revision and the writer's token; and text says the value is kept as its JSON
// text (see the package comment).
func (d *Driver) changes(value any, text bool, rev bson.ObjectID, now, when time.Time) bson.D {
	set := bson.D{{Key: d.layout.ValueField, Value: value}}
	if text {
		set = append(set, bson.E{Key: encodingField, Value: "json"})
	}
	if d.layout.When {
		set = append(set, bson.E{Key: "when", Value: float64(when.UnixMilli())})
	}
	set = append(set, bson.E{Key: updatedField, Value: now}, bson.E{Key: dblayout.Revision, Value: rev})
	if d.fencing.Token > 0 {
		set = append(set, bson.E{Key: tokenField, Value: d.fencing.Token},
			bson.E{Key: writerField, Value: d.fencing.Writer})
	}
	return set
}

// Put implements driver.Driver.
func (d *Driver) Put(ctx context.Context, key string, value []byte, pre driver.Precondition) (driver.Revision, error) {
	if !d.layout.Holds(key) {
		return "", d.wrap("put", fmt.Errorf("%w: %q: this store holds only %q", driver.ErrInvalidKey, key,
			d.layout.Only))
	}
	stored, err := toBSON(value)
	if err != nil {
		return "", d.wrap("put", fmt.Errorf("key %q: %w", key, err))
	}
	text := d.flatArrays && nestedArray(stored, false)
	if text {
		stored = string(value)
	}
	filter := append(d.scope(&key), d.admitted()...)
	if pre.IfRevision != "" {
		at, err := atRevision(key, pre.IfRevision)
		if err != nil {
			return "", d.wrap("put", err)
		}
		filter = append(filter, at...)
	}
	release, err := acquire(ctx, d.lock)
	if err != nil {
		return "", d.wrap("put", err)
	}
	defer release()
	if err := d.admit(ctx, false); err != nil {
		return "", d.wrap("put", err)
	}
	rev, now := bson.NewObjectID(), time.Now().UTC().Truncate(time.Millisecond)
	set := d.changes(stored, text, rev, now, driver.WriteTime(ctx))
	if !pre.IfAbsent {
		update := bson.D{{Key: opSet, Value: set}}
		if !text {
			update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: encodingField, Value: ""}}})
		}
		res, err := d.items.UpdateOne(ctx, filter, update)
		if err != nil {
			return "", d.wrap("put", fmt.Errorf("key %q: %w", key, answered(err)))
		}
		if res.MatchedCount == 1 {
			return written(rev, now), nil
		}
	}
	if pre.IfAbsent {
		// Created first, asked why only when that fails: on a server that scans to find a
		// document, a new key costs one command, not two. (The fencing record is read
		// again, as settle would.)
		if err := d.admit(ctx, true); err != nil {
			return "", d.wrap("put", err)
		}
	} else if err := d.settle(ctx, key, pre.IfRevision == ""); err != nil {
		// Nothing changed: the key is absent, at another revision, or a newer writer's.
		return "", d.wrap("put", err)
	}
	doc := append(d.scope(&key), bson.E{Key: "createDate", Value: now}, bson.E{Key: "__v", Value: int32(0)})
	if _, err := d.items.InsertOne(ctx, append(doc, set...)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return "", d.wrap("put", d.refusal(ctx, key))
		}
		return "", d.wrap("put", fmt.Errorf("key %q: %w", key, answered(err)))
	}
	return written(rev, now), nil
}

// written is the revision of a document this driver wrote as rev at now (see revisionOf).
func written(rev bson.ObjectID, now time.Time) driver.Revision {
	return driver.Revision(rev.Hex() + "." + strconv.FormatInt(now.UnixMilli(), 10))
}

// settle tells why a write changed nothing, before it creates the key: a newer writer holds
// the store (driver.ErrFenced), or the key is there and the write's condition wanted
// otherwise (driver.ErrConflict). It returns nil when the key is absent and create allows
// creating it (an unconditional write, or "only if absent").
func (d *Driver) settle(ctx context.Context, key string, create bool) error {
	if err := d.admit(ctx, true); err != nil {
		return err
	}
	raw, err := d.items.FindOne(ctx, d.scope(&key), options.FindOne().SetProjection(bson.D{
		{Key: idField, Value: 0}, {Key: tokenField, Value: 1}, {Key: writerField, Value: 1}})).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		if create {
			return nil
		}
		return fmt.Errorf("%w: key %q is absent", driver.ErrConflict, key)
	case err != nil:
		return err
	}
	return d.judge(key, raw)
}

// judge is the refusal of a write to key's document raw: driver.ErrFenced when a newer
// writer wrote it, driver.ErrConflict otherwise.
func (d *Driver) judge(key string, raw bson.Raw) error {
	if d.fencing.Token > 0 {
		token, _ := raw.Lookup(tokenField).AsInt64OK()
		writer, _ := raw.Lookup(writerField).StringValueOK()
		if _, err := d.fencing.Against(writer, token); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	return fmt.Errorf("%w: key %q", driver.ErrConflict, key)
}

// refusal is why creating key failed on a duplicate: the document someone else made first.
func (d *Driver) refusal(ctx context.Context, key string) error {
	raw, err := d.items.FindOne(ctx, d.scope(&key)).Raw()
	if err != nil {
		return fmt.Errorf("%w: key %q was created meanwhile", driver.ErrConflict, key)
	}
	return d.judge(key, raw)
}

// Delete implements driver.Driver.
func (d *Driver) Delete(ctx context.Context, key string, pre driver.Precondition) error {
	if !d.layout.Holds(key) {
		return d.wrap("delete", driver.ErrNotFound)
	}
	filter := append(d.scope(&key), d.admitted()...)
	if pre.IfRevision != "" {
		at, err := atRevision(key, pre.IfRevision)
		if err != nil {
			return d.wrap("delete", err)
		}
		filter = append(filter, at...)
	}
	release, err := acquire(ctx, d.lock)
	if err != nil {
		return d.wrap("delete", err)
	}
	defer release()
	if err := d.admit(ctx, false); err != nil {
		return d.wrap("delete", err)
	}
	res, err := d.items.DeleteOne(ctx, filter)
	if err != nil {
		return d.wrap("delete", fmt.Errorf("key %q: %w", key, answered(err)))
	}
	if res.DeletedCount == 1 {
		return nil
	}
	err = d.settle(ctx, key, true)
	if err == nil {
		return driver.ErrNotFound
	}
	return d.wrap("delete", err)
}

// Fence implements driver.Fencer: the fencing record names this writer, and every
// document of the store its token.
func (d *Driver) Fence(ctx context.Context) error {
	if d.fencing.Token <= 0 {
		return nil
	}
	release, err := acquire(ctx, d.lock)
	if err != nil {
		return d.wrap("fence", err)
	}
	defer release()
	return d.wrap("fence", d.admit(ctx, true))
}

// DeleteAll implements driver.Driver.
func (d *Driver) DeleteAll(ctx context.Context) error {
	release, err := acquire(ctx, d.lock)
	if err != nil {
		return d.wrap("delete all", err)
	}
	defer release()
	if err := d.admit(ctx, true); err != nil {
		return d.wrap("delete all", err)
	}
	if _, err := d.items.DeleteMany(ctx, append(d.scope(nil), d.admitted()...)); err != nil {
		return d.wrap("delete all", answered(err))
	}
	if d.fencing.Token <= 0 {
		return nil
	}
	// What is left was written by a newer holder that took over meanwhile.
	left, err := d.items.CountDocuments(ctx, d.scope(nil))
	if err == nil && left > 0 {
		err = d.admit(ctx, true)
	}
	return d.wrap("delete all", err)
}
