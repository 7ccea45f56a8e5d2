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

// Package dblayout says where a store's entries live in a database: which table (or
// collection), which fields fix the store, which field holds the key and which the value.
// The database drivers (pgstore, and the document store to come) take a Layout, so that
// the six crash-state kinds land in the tables backtest-kit's own database adapters use,
// and everything else in this project's own table.
package dblayout

import "strings"

// Field is one column (or document field) with the value that fixes a store.
type Field struct {
	Name  string
	Value string
}

// Layout places one store's entries.
type Layout struct {
	// Store names the store in errors, and keys its fencing record.
	Store string
	// Table is the table or collection.
	Table string
	// Scope are the fields every entry of the store carries, in the table's unique index
	// before KeyField.
	Scope []Field
	// KeyField holds the entry's key. Empty for a store that holds one entry only, whose
	// key is Only (a signal row per symbol, a risk profile's positions).
	KeyField string
	// Only is the one key of a store without KeyField.
	Only string
	// ValueField holds the value.
	ValueField string
	// NullableValue: a JSON null value is stored as the field's own null, as backtest-kit
	// clears a signal (payload null).
	NullableValue bool
	// When: the table has a "when" field, the write's time in Unix milliseconds.
	When bool
}

// Unique lists the fields that identify one entry: the scope's, then KeyField.
func (l Layout) Unique() []string {
	out := make([]string, 0, len(l.Scope)+1)
	for _, f := range l.Scope {
		out = append(out, f.Name)
	}
	if l.KeyField != "" {
		out = append(out, l.KeyField)
	}
	return out
}

// IndexName is the name of the table's unique index, as backtest-kit's adapters name it:
// the table's name with '-' as '_', and "_uq" ("signal-items" → "signal_items_uq").
func (l Layout) IndexName() string { return strings.ReplaceAll(l.Table, "-", "_") + "_uq" }

// Holds reports whether key can be stored by this layout.
func (l Layout) Holds(key string) bool { return l.KeyField != "" || key == l.Only }

// Own is the layout of a store in this project's own table: every key of every such store
// in one table, told apart by the store's name.
func Own(store string) Layout {
	return Layout{
		Store:      store,
		Table:      OwnTable,
		Scope:      []Field{{Name: "store", Value: store}},
		KeyField:   "key",
		ValueField: "value",
	}
}

// OwnTable is the table (or collection) of Own layouts.
const OwnTable = "strategyops-items"

// Archive is the layout of an archive store: as Own, in a table of its own, so that the
// archives, which grow to spec.history's retention, never slow the reads and writes of the
// live stores on a server that scans a table to find a row (FerretDB does).
func Archive(store string) Layout {
	l := Own(store)
	l.Table = ArchiveTable
	return l
}

// ArchiveTable is the table (or collection) of Archive layouts.
const ArchiveTable = "strategyops-archive"

// IsOwn reports whether the layout is one of this project's own tables (Own or Archive),
// which no backtest-kit adapter knows.
func (l Layout) IsOwn() bool { return l.Table == OwnTable || l.Table == ArchiveTable }

// Revision is the extra field in which the MongoDB driver keeps the revision of its own
// writes. Writers that know nothing of it (backtest-kit's adapters) leave it alone. (The
// PostgreSQL driver keeps none: TypeORM's schema sync drops a column it does not know.)
const Revision = "strategyopsRevision"

// FencingTable is the table (or collection) that records each fenced store's writer and
// token.
const FencingTable = "strategyops-fencing"
