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

package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store"
)

type position struct {
	Symbol string  `json:"symbol"`
	Price  float64 `json:"price"`
}

// TestConditionalWrites: through the public package, a write at a stale revision is
// refused and the stored value kept, on both drivers; the file driver's value survives a
// new store on the same folder.
func TestConditionalWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, d := range map[string]store.Driver{"file": store.File(dir), "memory": store.Memory()} {
		t.Run(name, func(t *testing.T) {
			s := store.NewStore[position]("positions", d)
			if _, err := s.Init(ctx, true); err != nil {
				t.Fatal(err)
			}
			first, err := s.Write(ctx, "BTCUSDT", position{"BTCUSDT", 100}, store.IfAbsent())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(ctx, "BTCUSDT", position{"BTCUSDT", 101}, store.IfRevision(first)); err != nil {
				t.Fatal(err)
			}
			_, err = s.Write(ctx, "BTCUSDT", position{"BTCUSDT", 999}, store.IfRevision(first))
			if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("a write at a stale revision: %v, want ErrConflict", err)
			}
			if got, err := s.Read(ctx, "BTCUSDT"); err != nil || got.Price != 101 {
				t.Fatalf("read %+v, %v; want price 101", got, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	again := store.NewStore[position]("positions", store.File(dir))
	defer func() { _ = again.Close() }()
	if _, err := again.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got, err := again.Read(ctx, "BTCUSDT"); err != nil || got.Price != 101 {
		t.Fatalf("a new store on the folder reads %+v, %v", got, err)
	}
}
