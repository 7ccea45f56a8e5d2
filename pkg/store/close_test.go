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
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/memstore"
	"github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// slowGet is a memory driver whose Get waits to be let go, and which counts its Closes.
type slowGet struct {
	*memstore.Driver
	entered, letGo chan struct{}
	closes         int
}

func (d *slowGet) Get(ctx context.Context, key string) (driver.Entry, error) {
	d.entered <- struct{}{}
	<-d.letGo
	return d.Driver.Get(ctx, key)
}

func (d *slowGet) Close() error { d.closes++; return nil }

// TestCloseWaitsAndThenRefuses: Close waits for a call in progress, closes the driver
// once, and every later call is ErrClosed.
func TestCloseWaitsAndThenRefuses(t *testing.T) {
	ctx := context.Background()
	d := &slowGet{Driver: memstore.New(), entered: make(chan struct{}), letGo: make(chan struct{})}
	s := store.NewStore[int]("test", d)
	if _, err := s.Write(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	read := make(chan error)
	go func() { _, err := s.Read(ctx, "k"); read <- err }()
	<-d.entered
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a Read was in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(d.letGo)
	if err := <-read; err != nil {
		t.Fatalf("the Read in progress: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || d.closes != 1 {
		t.Fatalf("a second Close: %v; the driver was closed %d times, want 1", err, d.closes)
	}
	if _, err := s.Write(ctx, "k", 2); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("a Write after Close: got %v, want ErrClosed", err)
	}
}
