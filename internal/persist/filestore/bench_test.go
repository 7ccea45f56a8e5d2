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
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/strategyops/strategy-operator/internal/persist/filestore"
	"github.com/strategyops/strategy-operator/internal/testenv"
	persist "github.com/strategyops/strategy-operator/pkg/store"
)

// The benchmarks report writes/s; hack/benchratio prints each store figure beside the raw
// loop measured in the same run (make bench).

// payload is about the size of an open signal row.
type payload struct {
	ID    string  `json:"id"`
	Price float64 `json:"priceOpen"`
	Pad   string  `json:"note"`
}

var row = payload{ID: "1af31ee8-c897-4000-a4dc-55369e459000", Price: 100, Pad: string(make([]byte, 1200))}

// rawWrite is the baseline: temp file, write, fsync, close, rename, fsync of the folder,
// with nothing else around it.
func rawWrite(b *testing.B, dir, name string, data []byte) {
	tmp := filepath.Join(dir, ".raw-"+name)
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		b.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	_ = d.Close()
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

func BenchmarkRawLoopSequential(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 1300)
	for b.Loop() {
		rawWrite(b, dir, "BTCUSDT.json", data)
	}
	reportRate(b)
}

func BenchmarkRawLoopConcurrent64(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 1300)
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtimeProcs()))
	b.RunParallel(func(pb *testing.PB) {
		name := fmt.Sprintf("key-%d.json", next.Add(1))
		for pb.Next() {
			rawWrite(b, dir, name, data)
		}
	})
	reportRate(b)
}

func openBench(b *testing.B) *persist.Store[payload] {
	s := persist.NewStore[payload]("bench", filestore.New(b.TempDir()))
	if _, err := s.Init(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkFileStoreSequential(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Write(ctx, "BTCUSDT", row); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkFileStoreConcurrent64(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(64 / max(1, runtimeProcs()))
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("key-%d", next.Add(1))
		for pb.Next() {
			if _, err := s.Write(ctx, key, row); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// backtestKitRate runs b.N writes of backtest-kit's own file persistence (version 19.5.0,
// under Node, from the shared folder beside the clone) over keys symbols written side by
// side, in a folder on the same disk as the file store's, and reports the rate it kept:
// the file store's baseline in the same run. (backtest-kit flushes each file but not its
// folder, so a rename it returned from can still be lost; the file store flushes both.)
func backtestKitRate(b *testing.B, keys int) {
	dir := b.TempDir()
	if err := os.Symlink(testenv.BacktestKit(b), filepath.Join(dir, "node_modules")); err != nil {
		b.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join("testdata", "bkbench.mjs"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "bkbench.mjs"), script, 0o644)
	}
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("node", "bkbench.mjs", strconv.Itoa(max(b.N, keys)), strconv.Itoa(keys))
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("backtest-kit's writes under Node: %v\n%s", err, out)
	}
	var got struct{ Rate float64 }
	if err := json.Unmarshal(out, &got); err != nil || got.Rate <= 0 {
		b.Fatalf("backtest-kit's writes under Node printed %q (%v), want its rate", out, err)
	}
	b.ReportMetric(got.Rate, "writes/s")
}

func BenchmarkBacktestKitOneKey(b *testing.B) { backtestKitRate(b, 1) }

func BenchmarkBacktestKitConcurrent64(b *testing.B) { backtestKitRate(b, 64) }
