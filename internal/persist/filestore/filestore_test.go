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

package filestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	persist "github.com/strategyops/strategy-operator/pkg/store"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
	"github.com/strategyops/strategy-operator/pkg/store/drivertest"
)

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, drivertest.Harness{
		New: func(t *testing.T) driver.Driver { return filestore.New(t.TempDir()) },
		Reopen: func(_ *testing.T, d driver.Driver) driver.Driver {
			return filestore.New(d.(*filestore.Driver).Dir())
		},
		Corrupt: func(t *testing.T, d driver.Driver, key string) {
			path := filepath.Join(d.(*filestore.Driver).Dir(), key+".json")
			if err := os.WriteFile(path, []byte(`{"name": "torn`), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}

func TestSecondWriterIsRefused(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	first := filestore.New(dir)
	if _, err := first.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	_, err := filestore.New(dir).Init(ctx, true)
	if !errors.Is(err, persist.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open of %s: %v, want ErrLocked naming the folder", dir, err)
	}
	host, _ := os.Hostname()
	if holder := fmt.Sprintf("held by process %d on host %s", os.Getpid(), host); !strings.Contains(err.Error(), holder) {
		t.Fatalf("second open of %s: %v, want the holder named (%s)", dir, err, holder)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadFile(filepath.Join(dir, ".lock")); len(left) != 0 {
		t.Fatalf("the lock file still names a holder after the first writer closed: %q", left)
	}
	second := filestore.New(dir)
	if _, err := second.Init(ctx, true); err != nil {
		t.Fatalf("after the first writer closed: %v", err)
	}
	_ = second.Close()
}

func TestQuarantineKeepsTheData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	torn := []byte(`{"id": "1af3`)
	if err := os.WriteFile(filepath.Join(dir, "BTCUSDT.json"), torn, 0o600); err != nil {
		t.Fatal(err)
	}
	d := filestore.New(dir)
	defer func() { _ = d.Close() }()
	report, err := d.Init(ctx, true)
	if err != nil || report.Quarantined != 1 {
		t.Fatalf("init: %+v, %v", report, err)
	}
	moved, _ := filepath.Glob(filepath.Join(dir, "quarantine", "BTCUSDT.json.*"))
	if len(moved) != 1 {
		t.Fatalf("quarantine holds %v", moved)
	}
	if data, _ := os.ReadFile(moved[0]); string(data) != string(torn) {
		t.Fatalf("quarantined copy is %q, want the original bytes", data)
	}
}

func TestBacktestKitLayout(t *testing.T) {
	// backtest-kit keeps baseDir/entityName/<id>.json with the bare JSON value.
	dir := t.TempDir()
	s := persist.NewStore[map[string]any]("signal", filestore.New(dir))
	defer func() { _ = s.Close() }()
	if _, err := s.Write(context.Background(), "BTCUSDT", map[string]any{"id": "x"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "BTCUSDT.json"))
	if err != nil || string(data) != `{"id":"x"}` {
		t.Fatalf("file holds %q, %v", data, err)
	}
}

func TestInitSweepsOnlyStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".tmp-0123-BTCUSDT.json")
	young := filepath.Join(dir, ".tmp-4567-ETHUSDT.json")
	for _, p := range []string{stale, young} {
		if err := os.WriteFile(p, []byte(`{"half":`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-3 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	d := filestore.New(dir)
	defer func() { _ = d.Close() }()
	report, err := d.Init(context.Background(), true)
	if err != nil || report.Quarantined != 0 {
		t.Fatalf("init: %+v, %v (temp files are not entries)", report, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp file still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("a young temp file may belong to a live writer and must stay: %v", err)
	}
	keys, err := d.Keys(context.Background())
	if err != nil || len(keys) != 0 {
		t.Fatalf("temp files listed as keys: %v, %v", keys, err)
	}
}
