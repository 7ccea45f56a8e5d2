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

// Command benchratio reads `go test -bench` output and prints each measured figure beside
// the baseline measured in the same run, as a ratio, with the target it is held to.
//
//	benchratio -in bench.txt -ratio 'FileStoreSequential/RawLoopSequential>=0.9' -floor 'FileStoreConcurrent64>=6000'
//
// Figures are the median over -count runs of a metric (writes/s by default). The exit
// status is 1 when a target is missed and -strict is set.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// parse collects, per benchmark name, every value of metric.
func parse(r io.Reader, metric string) (map[string][]float64, error) {
	out := map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		for i := 1; i < len(fields); i++ {
			if fields[i] != metric {
				continue
			}
			v, err := strconv.ParseFloat(fields[i-1], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.Text(), err)
			}
			out[m[1]] = append(out[m[1]], v)
		}
	}
	return out, sc.Err()
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spec is "NAME>=X" or "NAME/BASE>=X"; an absent ">=X" means no target.
func splitSpec(spec string) (name, base string, target float64, err error) {
	lhs, rhs, hasTarget := strings.Cut(spec, ">=")
	name, base, _ = strings.Cut(lhs, "/")
	if hasTarget {
		target, err = strconv.ParseFloat(rhs, 64)
	}
	return name, base, target, err
}

func verdict(ok bool, target float64) string {
	switch {
	case target == 0:
		return ""
	case ok:
		return "target met"
	default:
		return "target MISSED"
	}
}

func main() {
	in := flag.String("in", "-", "benchmark output to read, - for stdin")
	metric := flag.String("metric", "writes/s", "metric to compare")
	strict := flag.Bool("strict", false, "exit 1 when a target is missed")
	var ratios, floors, ceilings, shows list
	flag.Var(&ratios, "ratio", "NAME/BASE[>=MIN]: print NAME's figure beside BASE's and their ratio")
	flag.Var(&floors, "floor", "NAME>=MIN: print NAME's figure against an absolute target")
	flag.Var(&shows, "show", "NAME: print NAME's figure, with no target (a baseline)")
	flag.Var(&ceilings, "ceiling", "NAME<=MAX: print NAME's figure against an upper bound (for example failed writes)")
	flag.Parse()

	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(2)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := parse(r, *metric)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	figure := func(name string) (float64, bool) {
		vs, ok := data[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "error: no %s figure for %s in the input\n", *metric, name)
			return 0, false
		}
		return median(vs), true
	}

	missed := false
	for _, spec := range ratios {
		name, base, target, err := splitSpec(spec)
		if err != nil || base == "" {
			fmt.Fprintf(os.Stderr, "error: bad -ratio %q\n", spec)
			os.Exit(2)
		}
		v, ok1 := figure(name)
		bv, ok2 := figure(base)
		if !ok1 || !ok2 {
			os.Exit(2)
		}
		ratio := v / bv
		ok := ratio >= target
		missed = missed || !ok
		goal := ""
		if target > 0 {
			goal = fmt.Sprintf(" (target >= %.2fx) %s", target, verdict(ok, target))
		}
		fmt.Printf("%-24s %8.0f %s  vs %-22s %8.0f  ratio %.2fx%s\n", name, v, *metric, base, bv, ratio, goal)
	}
	for _, spec := range floors {
		name, _, target, err := splitSpec(spec)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: bad -floor %q\n", spec)
			os.Exit(2)
		}
		v, ok := figure(name)
		if !ok {
			os.Exit(2)
		}
		met := v >= target
		missed = missed || !met
		fmt.Printf("%-24s %8.0f %s  (target >= %.0f) %s\n", name, v, *metric, target, verdict(met, target))
	}
	for _, spec := range ceilings {
		name, rhs, found := strings.Cut(spec, "<=")
		limit, err := strconv.ParseFloat(rhs, 64)
		if !found || err != nil {
			fmt.Fprintf(os.Stderr, "error: bad -ceiling %q\n", spec)
			os.Exit(2)
		}
		v, ok := figure(name)
		if !ok {
			os.Exit(2)
		}
		met := v <= limit
		missed = missed || !met
		word := "target MISSED"
		if met {
			word = "target met"
		}
		fmt.Printf("%-24s %8.0f %s  (target <= %.0f) %s\n", name, v, *metric, limit, word)
	}
	for _, name := range shows {
		v, ok := figure(name)
		if !ok {
			os.Exit(2)
		}
		fmt.Printf("%-24s %8.0f %s  (baseline)\n", name, v, *metric)
	}
	if missed && *strict {
		os.Exit(1)
	}
}
