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

package mongostore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/mongostore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const (
	symbol, strategyName, exchangeName = "BTCUSDT", "trace-immediate", "trace-exchange"
	signalID                           = "1af31ee8-c897-4000-a4dc-55369e459000"
	// when is the time the package's documents say they were written (a JS number: a double).
	when = float64(1700000000000)
	// tick is the time of the tick that made this project's partial write (backtest-kit's
	// when), neither when nor now.
	tick = float64(1700000600000)
)

var databases int

// freshDatabase is a new, empty database on the test server.
func freshDatabase(t *testing.T) *mongo.Database {
	t.Helper()
	databases++
	return client.Database(fmt.Sprintf("compat_%d", databases))
}

// fixture is a fixture's value as the package's driver stores it (a document or an array).
func fixture(t *testing.T, name string) any {
	t.Helper()
	var wrapped bson.D
	doc := `{"v":` + string(testenv.FixtureAsWritten(t, name)) + `}`
	if err := bson.UnmarshalExtJSON([]byte(doc), false, &wrapped); err != nil {
		t.Fatal(err)
	}
	return wrapped[0].Value
}

func canonical(t *testing.T, v any) string {
	t.Helper()
	c, err := jsonx.Canonical(v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// officialDocument is a document as backtest-kit's MongoDB package (mongoose, timestamps
// renamed createDate/updatedDate, versionKey __v) stores it on its first upsert.
func officialDocument(fields bson.D) bson.D {
	at := time.UnixMilli(1700000000000).UTC()
	doc := bson.D{{Key: "_id", Value: bson.NewObjectID()}}
	doc = append(doc, fields...)
	return append(doc, bson.E{Key: "__v", Value: int32(0)}, bson.E{Key: "createDate", Value: at},
		bson.E{Key: "updatedDate", Value: at})
}

// TestReadsBacktestKitDocuments: documents backtest-kit's MongoDB package wrote, in its
// collections, read through this project's store as the values it stored; what this project
// then writes keeps the package's shape (one document per context, the value in its field,
// when a number, the timestamps dates), so the package's own query reads it back.
func TestReadsBacktestKitDocuments(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	ctxFields := bson.D{{Key: "symbol", Value: symbol}, {Key: "strategyName", Value: strategyName},
		{Key: "exchangeName", Value: exchangeName}}
	with := func(extra ...bson.E) bson.D { return append(slices.Clone(ctxFields), extra...) }
	for coll, doc := range map[string]bson.D{
		"signal-items":   with(bson.E{Key: "payload", Value: fixture(t, "signal-opened.json")}),
		"schedule-items": with(bson.E{Key: "payload", Value: nil}),
		"strategy-items": with(bson.E{Key: "payload", Value: fixture(t, "strategy-snapshot.json")}),
		"partial-items": with(bson.E{Key: "signalId", Value: signalID},
			bson.E{Key: "payload", Value: fixture(t, "partial.json")}, bson.E{Key: "when", Value: when}),
		"breakeven-items": with(bson.E{Key: "signalId", Value: signalID},
			bson.E{Key: "payload", Value: fixture(t, "breakeven.json")}, bson.E{Key: "when", Value: when}),
	} {
		if _, err := db.Collection(coll).InsertOne(ctx, officialDocument(doc)); err != nil {
			t.Fatal(err)
		}
	}

	// The risk document: the test server (FerretDB 1.x) cannot hold it, as the package writes
	// it (positions are pairs, arrays inside an array), so the package cannot run on it; the
	// store keeps positions there as JSON text (see the package comment), which a MongoDB
	// server does not need. Written as the package writes it, it is refused.
	risk := bson.D{{Key: "riskName", Value: strategyName}, {Key: "exchangeName", Value: exchangeName},
		{Key: "positions", Value: fixture(t, "risk-positions.json")}, {Key: "when", Value: when}}
	if _, err := db.Collection("risk-items").InsertOne(ctx, officialDocument(risk)); err == nil ||
		!strings.Contains(err.Error(), "nested arrays") {
		t.Fatalf("the test server took nested arrays (%v): test the package's risk document here", err)
	}

	p := domain.New(domain.MongoBackend(db, mongostore.Fencing{}))
	defer func() { _ = p.Close() }()
	k := domain.StrategyKey(symbol, strategyName, exchangeName)
	rk := domain.RiskKey(strategyName, exchangeName)
	gotSignal, err := p.ReadSignal(ctx, k)
	if err != nil || gotSignal == nil {
		t.Fatalf("signal: %v, %v", gotSignal, err)
	}
	if got, want := canonical(t, gotSignal), canonical(t, testenv.FixtureValue[any](t, "signal-opened.json")); got != want {
		t.Errorf("signal read as\n%s\nwant\n%s", got, want)
	}
	if s, err := p.ReadSchedule(ctx, k); err != nil || s != nil {
		t.Errorf("a cleared schedule (payload null): %v, %v; want none", s, err)
	}
	for _, c := range []struct {
		name    string
		read    func() (any, error)
		fixture string
	}{
		{"strategy", func() (any, error) { return p.ReadSnapshot(ctx, k) }, "strategy-snapshot.json"},
		{"partial", func() (any, error) { return p.ReadPartial(ctx, k, signalID) }, "partial.json"},
		{"breakeven", func() (any, error) { return p.ReadBreakeven(ctx, k, signalID) }, "breakeven.json"},
	} {
		v, err := c.read()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := canonical(t, v), canonical(t, testenv.FixtureValue[any](t, c.fixture)); got != want {
			t.Errorf("%s read as\n%s\nwant\n%s", c.name, got, want)
		}
	}

	// This project writes: the documents keep the package's shape.
	start := time.Now()
	activated := testenv.FixtureValue[*v1.Signal](t, "signal-activated-from-schedule.json")
	if err := p.WriteSignal(ctx, k, activated); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteSchedule(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	levels := v1.PartialData{"second-signal": {ProfitLevels: []float64{10, 20}, LossLevels: []float64{}}}
	// backtest-kit's when: the time of the tick that wrote it, not the wall clock's.
	if err := p.WritePartial(driver.WithWriteTime(ctx, time.UnixMilli(int64(tick))), k, "second-signal", levels); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteRisk(ctx, rk, v1.RiskPositions{}); err != nil {
		t.Fatal(err)
	}
	// Positions with pairs in them round-trip through the JSON text.
	positions := testenv.FixtureValue[v1.RiskPositions](t, "risk-positions.json")
	if err := p.WriteRisk(ctx, domain.RiskKey("other-risk", exchangeName), positions); err != nil {
		t.Fatal(err)
	}
	if got, err := p.ReadRisk(ctx, domain.RiskKey("other-risk", exchangeName)); err != nil ||
		canonical(t, got) != canonical(t, positions) {
		t.Errorf("risk positions read back as %v, %v; want %v", got, err, positions)
	}
	checkPackageShape(t, db, activated, start)

	// The package writes last (its upsert, $set of the payload): this project reads its value.
	if err := packageUpsert(ctx, db, ctxFields, nil); err != nil {
		t.Fatal(err)
	}
	if s, err := p.ReadSignal(ctx, k); err != nil || s != nil {
		t.Errorf("after the package cleared the signal: %v, %v; want none", s, err)
	}
}

// checkPackageShape reads what TestReadsBacktestKitDocuments wrote as the package reads it.
func checkPackageShape(t *testing.T, db *mongo.Database, activated *v1.Signal, start time.Time) {
	t.Helper()
	ctx := t.Context()
	ctxFilter := bson.D{{Key: "symbol", Value: symbol}, {Key: "strategyName", Value: strategyName},
		{Key: "exchangeName", Value: exchangeName}}
	var signals []bson.M
	cur, err := db.Collection("signal-items").Find(ctx, ctxFilter)
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &signals); err != nil {
		t.Fatal(err)
	}
	if len(signals) != 1 {
		t.Fatalf("signal-items holds %d documents for the context, want 1", len(signals))
	}
	sig := signals[0]
	payload, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: sig["payload"]}}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(payload[len(`{"v":`):len(payload)-1], &decoded); err != nil {
		t.Fatal(err)
	}
	if canonical(t, decoded) != canonical(t, activated) {
		t.Errorf("signal-items payload %s; want the activated signal", payload)
	}
	if _, ok := sig["createDate"].(bson.DateTime); !ok {
		t.Errorf("createDate is %T, want a date", sig["createDate"])
	}
	if u, ok := sig["updatedDate"].(bson.DateTime); !ok || u.Time().Before(start.Truncate(time.Millisecond)) {
		t.Errorf("updatedDate is %v (%T), want a date after the write began", sig["updatedDate"], sig["updatedDate"])
	}
	var schedule bson.M
	if err := db.Collection("schedule-items").FindOne(ctx, ctxFilter).Decode(&schedule); err != nil {
		t.Fatal(err)
	}
	if v, there := schedule["payload"]; !there || v != nil {
		t.Errorf("a cleared schedule is stored as payload null, as the package clears it: %v", schedule)
	}
	var partials []bson.M
	cur, err = db.Collection("partial-items").Find(ctx, ctxFilter, options.Find().SetSort(bson.D{{Key: "signalId", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(ctx, &partials); err != nil {
		t.Fatal(err)
	}
	if len(partials) != 2 || partials[0]["signalId"] != signalID || partials[1]["signalId"] != "second-signal" ||
		partials[0]["when"] != when {
		t.Fatalf("partial-items: %v; want the package's document untouched and ours beside it", partials)
	}
	if w, ok := partials[1]["when"].(float64); !ok || w != tick {
		t.Errorf("our partial's when is %v (%T), want the write's time %v, a number of milliseconds",
			partials[1]["when"], partials[1]["when"], tick)
	}
	var risk bson.M
	if err := db.Collection("risk-items").FindOne(ctx, bson.D{{Key: "riskName", Value: strategyName},
		{Key: "exchangeName", Value: exchangeName}}).Decode(&risk); err != nil {
		t.Fatal(err)
	}
	if positions, ok := risk["positions"].(bson.A); !ok || len(positions) != 0 {
		t.Errorf("risk-items positions %v (%T), want []", risk["positions"], risk["positions"])
	}
}

// TestMakesBacktestKitIndexes: on an empty database the store makes the indexes the
// package's schemas declare: each key field and when, and the unique index of the context.
func TestMakesBacktestKitIndexes(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	for _, c := range domain.StrategyContexts(strategyName, exchangeName, []string{symbol}) {
		if c.Domain == domain.History {
			continue
		}
		d, err := domain.MongoBackend(db, mongostore.Fencing{})(ctx, c.Domain, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Init(ctx, true); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Init(ctx, false); err != nil {
			t.Fatalf("a second Init: %v", err)
		}
	}
	context3 := "exchangeName strategyName symbol unique:symbol,strategyName,exchangeName"
	signalID4 := "exchangeName signalId strategyName symbol unique:symbol,strategyName,exchangeName,signalId when"
	want := map[string]string{
		"signal-items": context3, "schedule-items": context3, "strategy-items": context3,
		"risk-items":    "exchangeName riskName unique:riskName,exchangeName when",
		"partial-items": signalID4, "breakeven-items": signalID4,
	}
	for coll, spec := range want {
		cur, err := db.Collection(coll).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var specs []struct {
			Key    bson.D `bson:"key"`
			Unique bool   `bson:"unique"`
		}
		if err := cur.All(ctx, &specs); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range specs {
			var fields []string
			for _, e := range s.Key {
				fields = append(fields, e.Key)
			}
			switch {
			case s.Unique:
				got = append(got, "unique:"+strings.Join(fields, ","))
			case len(fields) == 1 && fields[0] != "_id":
				got = append(got, fields[0])
			}
		}
		slices.Sort(got)
		if strings.Join(got, " ") != spec {
			t.Errorf("%s indexes: %v; want %s", coll, got, spec)
		}
	}
}

// packageUpsert is how backtest-kit's MongoDB package writes a signal: findOneAndUpdate of
// the context's document, $set of the payload, upserting, with mongoose's timestamps
// (updatedDate now, createDate and __v on insert).
func packageUpsert(ctx context.Context, db *mongo.Database, filter bson.D, payload any) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return db.Collection("signal-items").FindOneAndUpdate(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: "payload", Value: payload}, {Key: "updatedDate", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}, {Key: "__v", Value: int32(0)}}},
	}, options.FindOneAndUpdate().SetUpsert(true)).Err()
}

// TestPackageWritesMoveTheRevision: a document the package rewrites is a new revision, even
// with the value it held (testenv.ForeignRewritesMoveTheRevision).
func TestPackageWritesMoveTheRevision(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	inner, err := domain.MongoBackend(db, mongostore.Fencing{})(ctx, domain.Signal,
		domain.StrategyKey(symbol, strategyName, exchangeName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	filter := bson.D{{Key: "symbol", Value: symbol}, {Key: "strategyName", Value: strategyName},
		{Key: "exchangeName", Value: exchangeName}}
	testenv.ForeignRewritesMoveTheRevision(t, inner, symbol, []byte(`{"id":"the package's"}`), func() {
		if err := packageUpsert(ctx, db, filter, bson.D{{Key: "id", Value: "the package's"}}); err != nil {
			t.Fatal(err)
		}
	})
}
