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

package main

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseTakesEveryRunOfTheMetric(t *testing.T) {
	out := `goos: linux
BenchmarkStoreOneKey-2   	    1231	   1869714 ns/op	       534.8 writes/s
BenchmarkStoreOneKey-2   	    1200	   1869714 ns/op	       500 writes/s
BenchmarkStoreOneKey-2   	    1200	   1869714 ns/op	       600 writes/s
BenchmarkContending-2    	     448	   7457382 ns/op	         3.000 failed	       134.1 writes/s
PASS`
	got, err := parse(strings.NewReader(out), "writes/s")
	if err != nil {
		t.Fatal(err)
	}
	if m := median(got["StoreOneKey"]); m != 534.8 {
		t.Fatalf("median of StoreOneKey = %v, want 534.8", m)
	}
	failed, err := parse(strings.NewReader(out), "failed")
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed["Contending"][0] != 3 {
		t.Fatalf("failed = %v", failed)
	}
}

func TestSplitSpec(t *testing.T) {
	name, base, target, err := splitSpec("A/B>=0.9")
	if err != nil || name != "A" || base != "B" || target != 0.9 {
		t.Fatalf("got %q %q %v %v", name, base, target, err)
	}
	if _, _, _, err := splitSpec("A>=x"); err == nil {
		t.Fatal("a target that is not a number must be an error")
	}
}

// TestTableCollectsEverySection: rows of two invocations, added to one -table file, read
// back as one table, with each goal judged against its figure.
func TestTableCollectsEverySection(t *testing.T) {
	data := map[string][]float64{"A": {90, 100, 110}, "B": {50}}
	first, err := rows(data, "writes/s", "one", []string{"A/B>=3"}, []string{"A>=10"}, nil, []string{"B"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := rows(data, "writes/s", "two", []string{"A/B"}, nil, []string{"B<=40"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "table.tsv")
	if err := errors.Join(appendTable(path, first), appendTable(path, second)); err != nil {
		t.Fatal(err)
	}
	got, err := readTable(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"one", "A", "100 writes/s", "B: 50 writes/s", "2.00x", ">= 3.00x", "NOT MET"},
		{"one", "A", "100 writes/s", "", "", ">= 10", "met"},
		{"one", "B", "50 writes/s", "", "", "(a baseline)", ""},
		{"two", "A", "100 writes/s", "B: 50 writes/s", "2.00x", "", ""},
		{"two", "B", "50 writes/s", "", "", "<= 40", "NOT MET"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("table:\n%v\nwant:\n%v", got, want)
	}
	if _, err := rows(data, "writes/s", "", []string{"A/C"}, nil, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "C") {
		t.Fatalf("a missing baseline: %v, want an error naming it", err)
	}
}
