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

package pgstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/jsonx"
	"github.com/strategyops/strategy-operator/internal/persist/domain"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// officialSchema is what backtest-kit's PostgreSQL adapter (packages/pg, TypeORM entity
// schemas, synchronize) makes for the six crash-state kinds.
const officialSchema = `
CREATE TABLE "signal-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"symbol" character varying NOT NULL, "strategyName" character varying NOT NULL,
	"exchangeName" character varying NOT NULL, "payload" jsonb,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "signal_items_uq" ON "signal-items" ("symbol", "strategyName", "exchangeName");
CREATE TABLE "schedule-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"symbol" character varying NOT NULL, "strategyName" character varying NOT NULL,
	"exchangeName" character varying NOT NULL, "payload" jsonb,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "schedule_items_uq" ON "schedule-items" ("symbol", "strategyName", "exchangeName");
CREATE TABLE "strategy-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"symbol" character varying NOT NULL, "strategyName" character varying NOT NULL,
	"exchangeName" character varying NOT NULL, "payload" jsonb,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "strategy_items_uq" ON "strategy-items" ("symbol", "strategyName", "exchangeName");
CREATE TABLE "risk-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"riskName" character varying NOT NULL, "exchangeName" character varying NOT NULL,
	"positions" jsonb NOT NULL, "when" bigint NOT NULL,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "risk_items_uq" ON "risk-items" ("riskName", "exchangeName");
CREATE TABLE "partial-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"symbol" character varying NOT NULL, "strategyName" character varying NOT NULL,
	"exchangeName" character varying NOT NULL, "signalId" character varying NOT NULL,
	"payload" jsonb NOT NULL, "when" bigint NOT NULL,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "partial_items_uq" ON "partial-items" ("symbol", "strategyName", "exchangeName", "signalId");
CREATE TABLE "breakeven-items" ("id" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
	"symbol" character varying NOT NULL, "strategyName" character varying NOT NULL,
	"exchangeName" character varying NOT NULL, "signalId" character varying NOT NULL,
	"payload" jsonb NOT NULL, "when" bigint NOT NULL,
	"createDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	"updatedDate" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now());
CREATE UNIQUE INDEX "breakeven_items_uq" ON "breakeven-items" ("symbol", "strategyName", "exchangeName", "signalId");
`

var databases int

// freshDatabase is a new, empty database on the test server.
func freshDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	databases++
	name := fmt.Sprintf("compat_%d", databases)
	if _, err := pool.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	db, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func canonical(t *testing.T, v any) string {
	t.Helper()
	c, err := jsonx.Canonical(v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	symbol, strategyName, exchangeName = "BTCUSDT", "trace-immediate", "trace-exchange"
	signalID                           = "1af31ee8-c897-4000-a4dc-55369e459000"
	// when is the time the adapter's rows say they were written.
	when = 1700000000000
	// tick is the time of the tick that made this project's partial write (backtest-kit's
	// when), neither when nor now.
	tick = 1700000600000
)

// TestReadsBacktestKitRows: rows backtest-kit's PostgreSQL adapter wrote, in its tables,
// read through this project's store as the values it stored; what this project then writes
// keeps the adapter's shape (one row per context, the value in its field, "when" set), so
// the adapter's own query reads it back.
func TestReadsBacktestKitRows(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	if _, err := db.Exec(ctx, officialSchema); err != nil {
		t.Fatal(err)
	}
	signal := string(testenv.FixtureAsWritten(t, "signal-opened.json"))
	snapshot := string(testenv.FixtureAsWritten(t, "strategy-snapshot.json"))
	risk := string(testenv.FixtureAsWritten(t, "risk-positions.json"))
	partial := string(testenv.FixtureAsWritten(t, "partial.json"))
	breakeven := string(testenv.FixtureAsWritten(t, "breakeven.json"))
	for _, insert := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO "signal-items" ("symbol", "strategyName", "exchangeName", "payload")
			VALUES ($1, $2, $3, $4::jsonb)`, []any{symbol, strategyName, exchangeName, signal}},
		{`INSERT INTO "schedule-items" ("symbol", "strategyName", "exchangeName", "payload")
			VALUES ($1, $2, $3, NULL)`, []any{symbol, strategyName, exchangeName}},
		{`INSERT INTO "strategy-items" ("symbol", "strategyName", "exchangeName", "payload")
			VALUES ($1, $2, $3, $4::jsonb)`, []any{symbol, strategyName, exchangeName, snapshot}},
		{`INSERT INTO "risk-items" ("riskName", "exchangeName", "positions", "when")
			VALUES ($1, $2, $3::jsonb, $4)`, []any{strategyName, exchangeName, risk, when}},
		{`INSERT INTO "partial-items" ("symbol", "strategyName", "exchangeName", "signalId", "payload", "when")
			VALUES ($1, $2, $3, $4, $5::jsonb, $6)`, []any{symbol, strategyName, exchangeName, signalID, partial, when}},
		{`INSERT INTO "breakeven-items" ("symbol", "strategyName", "exchangeName", "signalId", "payload", "when")
			VALUES ($1, $2, $3, $4, $5::jsonb, $6)`,
			[]any{symbol, strategyName, exchangeName, signalID, breakeven, when}},
	} {
		if _, err := db.Exec(ctx, insert.sql, insert.args...); err != nil {
			t.Fatal(err)
		}
	}

	p := domain.New(domain.PostgresBackend(db, pgstore.Fencing{}))
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
		t.Errorf("a cleared schedule (payload NULL): %v, %v; want none", s, err)
	}
	checks := []struct {
		name    string
		read    func() (any, error)
		fixture string
	}{
		{"strategy", func() (any, error) { return p.ReadSnapshot(ctx, k) }, "strategy-snapshot.json"},
		{"risk", func() (any, error) { return p.ReadRisk(ctx, rk) }, "risk-positions.json"},
		{"partial", func() (any, error) { return p.ReadPartial(ctx, k, signalID) }, "partial.json"},
		{"breakeven", func() (any, error) { return p.ReadBreakeven(ctx, k, signalID) }, "breakeven.json"},
	}
	for _, c := range checks {
		v, err := c.read()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, want := canonical(t, v), canonical(t, testenv.FixtureValue[any](t, c.fixture)); got != want {
			t.Errorf("%s read as\n%s\nwant\n%s", c.name, got, want)
		}
	}

	// This project writes: the rows keep the adapter's shape.
	start := time.Now().UnixMilli()
	activated := testenv.FixtureValue[*v1.Signal](t, "signal-activated-from-schedule.json")
	if err := p.WriteSignal(ctx, k, activated); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteSchedule(ctx, k, nil); err != nil {
		t.Fatal(err)
	}
	levels := v1.PartialData{"second-signal": {ProfitLevels: []float64{10, 20}, LossLevels: []float64{}}}
	// backtest-kit's when: the time of the tick that wrote it, not the wall clock's.
	if err := p.WritePartial(driver.WithWriteTime(ctx, time.UnixMilli(tick)), k, "second-signal", levels); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteRisk(ctx, rk, v1.RiskPositions{}); err != nil {
		t.Fatal(err)
	}

	checkAdapterShape(t, db, activated, start)

	// The adapter writes last (its upsert): this project reads its value.
	if _, err := db.Exec(ctx, `INSERT INTO "signal-items" ("symbol", "strategyName", "exchangeName", "payload")
		VALUES ($1, $2, $3, NULL) ON CONFLICT ("symbol", "strategyName", "exchangeName") DO UPDATE
		SET "payload" = EXCLUDED."payload"`, symbol, strategyName, exchangeName); err != nil {
		t.Fatal(err)
	}
	if s, err := p.ReadSignal(ctx, k); err != nil || s != nil {
		t.Errorf("after the adapter cleared the signal: %v, %v; want none", s, err)
	}
}

// TestMakesBacktestKitTables: on an empty database the store makes the adapter's tables,
// column for column (and no column of its own), and the adapter's unique indexes.
func TestMakesBacktestKitTables(t *testing.T) {
	ctx := t.Context()
	official, ours := freshDatabase(t), freshDatabase(t)
	if _, err := official.Exec(ctx, officialSchema); err != nil {
		t.Fatal(err)
	}
	p := domain.New(domain.PostgresBackend(ours, pgstore.Fencing{}))
	defer func() { _ = p.Close() }()
	for _, c := range domain.StrategyContexts(strategyName, exchangeName, []string{symbol}) {
		if c.Domain == domain.History {
			continue
		}
		drv, err := domain.PostgresBackend(ours, pgstore.Fencing{})(ctx, c.Domain, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.Init(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	shape := func(db *pgxpool.Pool, revision bool) []string {
		rows, err := db.Query(ctx, `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
			FROM information_schema.columns WHERE table_schema = 'public' AND table_name LIKE '%-items'
			AND table_name <> 'strategyops-items' AND (column_name = 'strategyopsRevision') = $1
			UNION ALL SELECT indexname || ' ' || regexp_replace(indexdef, '^.* USING ', '')
			FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE '%_uq' AND NOT $1 ORDER BY 1`, revision)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	want := shape(official, false)
	if got := shape(ours, false); !slices.Equal(got, want) {
		t.Errorf("tables made by the store:\n%v\nwant the adapter's:\n%v", got, want)
	}
	if len(want) != 46+6 {
		t.Errorf("the adapter's schema has %d columns and indexes; the test expects 46 columns and 6 indexes", len(want))
	}
	if got := shape(ours, true); len(got) != 0 {
		t.Errorf("revision columns: %v; want none: the adapter's schema sync drops a column it does not know", got)
	}
}

// checkAdapterShape reads what TestReadsBacktestKitRows wrote as backtest-kit's adapter
// reads it: one row per context, the value in its field, "when" set.
func checkAdapterShape(t *testing.T, db *pgxpool.Pool, activated *v1.Signal, start int64) {
	t.Helper()
	ctx := t.Context()
	// The adapter's own reads (findByContext: one row by the context's fields).
	var payload map[string]any
	var rows int
	if err := db.QueryRow(ctx, `SELECT "payload", count(*) OVER () FROM "signal-items"
		WHERE "symbol" = $1 AND "strategyName" = $2 AND "exchangeName" = $3`, symbol, strategyName, exchangeName).
		Scan(&payload, &rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || canonical(t, payload) != canonical(t, activated) {
		t.Errorf("signal-items holds %d rows for the context, payload %v; want the activated signal alone", rows, payload)
	}
	var null bool
	if err := db.QueryRow(ctx, `SELECT "payload" IS NULL FROM "schedule-items" WHERE "symbol" = $1`, symbol).
		Scan(&null); err != nil || !null {
		t.Errorf("a cleared schedule is stored as payload NULL, as the adapter clears it: %v, %v", null, err)
	}
	var ids []string
	var whens []int64
	prows, err := db.Query(ctx, `SELECT "signalId", "when" FROM "partial-items"
		WHERE "symbol" = $1 AND "strategyName" = $2 AND "exchangeName" = $3 ORDER BY "signalId"`,
		symbol, strategyName, exchangeName)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var id string
		var w int64
		if err := prows.Scan(&id, &w); err != nil {
			t.Fatal(err)
		}
		ids, whens = append(ids, id), append(whens, w)
	}
	if !slices.Equal(ids, []string{signalID, "second-signal"}) || whens[0] != when || whens[1] != tick {
		t.Errorf("partial-items: ids %v, when %v; want the adapter's row untouched and ours beside it, when %d",
			ids, whens, tick)
	}
	var riskWhen int64
	if err := db.QueryRow(ctx, `SELECT "when" FROM "risk-items" WHERE "riskName" = $1 AND "exchangeName" = $2`,
		strategyName, exchangeName).Scan(&riskWhen); err != nil || riskWhen < start {
		t.Errorf("risk-items when %d, %v; written without a write time, want the wall clock's (≥ %d)", riskWhen, err,
			start)
	}
	var positions string
	if err := db.QueryRow(ctx, `SELECT "positions"::text FROM "risk-items" WHERE "riskName" = $1 AND "exchangeName" = $2`,
		strategyName, exchangeName).Scan(&positions); err != nil || positions != "[]" {
		t.Errorf("risk-items positions %q, %v; want []", positions, err)
	}
}

// TestOneRowStores: a signal store holds its symbol's row only; another key is refused
// (ErrInvalidKey) and reads as absent, and nothing is written.
func TestOneRowStores(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	d := pgstore.New(db, domain.DatabaseLayout(domain.Signal, domain.StrategyKey(symbol, strategyName, exchangeName)),
		pgstore.Fencing{})
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, "ETHUSDT", []byte("{}"), driver.Precondition{}); !errors.Is(err, driver.ErrInvalidKey) ||
		!strings.Contains(err.Error(), `"ETHUSDT"`) {
		t.Fatalf("another symbol's key: %v, want ErrInvalidKey naming it", err)
	}
	if _, err := d.Get(ctx, "ETHUSDT"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("reading another symbol's key: %v, want ErrNotFound", err)
	}
	if keys, err := d.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("keys after the refused write: %v, %v", keys, err)
	}
	if _, err := d.Put(ctx, symbol, []byte("null"), driver.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if keys, err := d.Keys(ctx); err != nil || !slices.Equal(keys, []string{symbol}) {
		t.Fatalf("keys: %v, %v; want [%s]", keys, err, symbol)
	}
}

// adapterUpsert is the statement backtest-kit's PostgreSQL adapter sends to write a signal
// (TypeORM's upsert: orUpdate(["payload"]) on the unique columns, updatedDate to its default).
const adapterUpsert = `INSERT INTO "signal-items" ("id", "symbol", "strategyName", "exchangeName", "payload",
	"createDate", "updatedDate") VALUES (DEFAULT, $1, $2, $3, $4, DEFAULT, DEFAULT)
	ON CONFLICT ("symbol", "strategyName", "exchangeName")
	DO UPDATE SET "payload" = EXCLUDED."payload", "updatedDate" = DEFAULT`

// TestAdapterWritesMoveTheRevision: on the adapter's own tables (made by its schema, with
// no column of this project's, as its schema sync leaves them), a row the adapter rewrites
// is a new revision, even with the value it held (testenv.ForeignRewritesMoveTheRevision).
func TestAdapterWritesMoveTheRevision(t *testing.T) {
	ctx := t.Context()
	db := freshDatabase(t)
	if _, err := db.Exec(ctx, officialSchema); err != nil {
		t.Fatal(err)
	}
	layout := domain.DatabaseLayout(domain.Signal, domain.StrategyKey(symbol, strategyName, exchangeName))
	inner := pgstore.New(db, layout, pgstore.Fencing{})
	if _, err := inner.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	payload := `{"id":"the adapter's"}`
	testenv.ForeignRewritesMoveTheRevision(t, inner, symbol, []byte(payload), func() {
		if _, err := db.Exec(ctx, adapterUpsert, symbol, strategyName, exchangeName, payload); err != nil {
			t.Fatal(err)
		}
	})
}
