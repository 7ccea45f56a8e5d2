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

package soak

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strategyops/strategy-operator/internal/runner"
	"github.com/strategyops/strategy-operator/internal/runnermetrics"
)

// sample is one scrape of the runner's metrics endpoint.
type sample struct {
	closed, heap, goroutines float64
}

// scraper reads the runner's metrics; a runner that stopped answering does not stop the
// test's own deadline.
var scraper = http.Client{Timeout: 5 * time.Second}

// scrape reads a sample from the runner's metrics at addr.
func scrape(addr string) (sample, error) {
	var s sample
	resp, err := scraper.Get("http://" + addr + runnermetrics.PathMetrics)
	if err != nil {
		return s, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, _, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case name == "go_gc_heap_live_bytes":
			s.heap = v
		case name == "go_goroutines":
			s.goroutines = v
		case strings.HasPrefix(line, runnermetrics.MetricSignalEvents+"{") &&
			strings.Contains(line, `event="`+runner.KindClose+`"`):
			s.closed += v
		}
	}
	return s, sc.Err()
}

// window is the least heap and the least goroutine count of the samples taken while the
// runner had closed from lo up to hi signals.
func window(samples []sample, lo, hi float64) (sample, error) {
	var w sample
	n := 0
	for _, s := range samples {
		if s.closed < lo || s.closed >= hi {
			continue
		}
		if n == 0 || s.heap < w.heap {
			w.heap = s.heap
		}
		if n == 0 || s.goroutines < w.goroutines {
			w.goroutines = s.goroutines
		}
		n++
	}
	if n < 3 {
		return w, fmt.Errorf("only %d samples of the runner's metrics between signals %.0f and %.0f: too few to "+
			"judge its heap", n, lo, hi)
	}
	w.closed = lo
	return w, nil
}
