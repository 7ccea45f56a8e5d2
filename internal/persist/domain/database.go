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

package domain

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strategyops/strategy-operator/internal/persist/dblayout"
	"github.com/strategyops/strategy-operator/internal/persist/driver"
	"github.com/strategyops/strategy-operator/internal/persist/pgstore"
)

// DatabaseLayout is where context k of domain d lives in a database: the six crash-state
// kinds in the tables (or collections) of backtest-kit's own database adapters, with their
// fields — signal-items, schedule-items and strategy-items one row per symbol, strategy and
// exchange with the value in payload; risk-items one per risk profile and exchange with
// positions; partial-items and breakeven-items one per signal, keyed by signalId — and
// this project's ledger in its own table. A bot on the official adapter and a runner of
// this project read each other's state.
func DatabaseLayout(d Domain, k Key) dblayout.Layout {
	name := string(d) + " " + k.String()
	fields := []dblayout.Field{
		{Name: "symbol", Value: k.Symbol},
		{Name: "strategyName", Value: k.StrategyName},
		{Name: "exchangeName", Value: k.ExchangeName},
	}
	l := dblayout.Layout{Store: name, Table: string(d) + "-items", Scope: fields, ValueField: "payload"}
	switch d {
	case Signal, Schedule:
		l.Only, l.NullableValue = k.Symbol, true
	case Strategy:
		l.Only, l.NullableValue = strategyEntity, true
	case Risk:
		l.Scope = []dblayout.Field{{Name: "riskName", Value: k.RiskName}, {Name: "exchangeName", Value: k.ExchangeName}}
		l.Only, l.ValueField, l.When = riskEntity, "positions", true
	case Partial, Breakeven:
		l.KeyField, l.When = "signalId", true
	default:
		return dblayout.Own(name)
	}
	return l
}

// PostgresBackend keeps every context in the PostgreSQL database of pool, laid out by
// DatabaseLayout, written under fencing f (none when its token is 0).
func PostgresBackend(pool *pgxpool.Pool, f pgstore.Fencing) Backend {
	return func(_ context.Context, d Domain, k Key) (driver.Driver, error) {
		return pgstore.New(pool, DatabaseLayout(d, k), f), nil
	}
}
