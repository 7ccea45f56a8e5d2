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
// status is 1 when a target is missed and -strict is set. With -table, the rows are also
// added to a file that -print prints as one table, every section's rows together:
//
//	benchratio -print bin/bench-table.tsv
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
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

// row is one line of the table: a figure, its baseline (none for a floor, a ceiling or a
// baseline shown alone), their ratio, the goal and whether it is met.
type row struct {
	Section, Figure, Value, Baseline, Ratio, Goal, Met string
}

func (r row) fields() []string {
	return []string{r.Section, r.Figure, r.Value, r.Baseline, r.Ratio, r.Goal, r.Met}
}

var header = row{"SECTION", "FIGURE", "VALUE", "BASELINE", "RATIO", "GOAL", "MET"}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// rows turns the specs into rows against data (the medians of metric); an error names a
// bad spec or a figure missing from the input.
func rows(data map[string][]float64, metric, section string, ratios, floors, ceilings, shows []string) ([]row, error) {
	figure := func(name string) (float64, error) {
		vs, ok := data[name]
		if !ok {
			return 0, fmt.Errorf("no %s figure for %s in the input", metric, name)
		}
		return median(vs), nil
	}
	value := func(v float64) string { return fmt.Sprintf("%.0f %s", v, metric) }
	var out []row
	for _, spec := range ratios {
		name, base, target, err := splitSpec(spec)
		if err != nil || base == "" {
			return nil, fmt.Errorf("bad -ratio %q", spec)
		}
		v, err1 := figure(name)
		bv, err2 := figure(base)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		r := row{Section: section, Figure: name, Value: value(v), Baseline: base + ": " + value(bv),
			Ratio: fmt.Sprintf("%.2fx", v/bv)}
		if target > 0 {
			r.Goal, r.Met = fmt.Sprintf(">= %.2fx", target), met(v/bv >= target)
		}
		out = append(out, r)
	}
	for _, spec := range floors {
		name, _, target, err := splitSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("bad -floor %q", spec)
		}
		v, err := figure(name)
		if err != nil {
			return nil, err
		}
		out = append(out, row{Section: section, Figure: name, Value: value(v),
			Goal: fmt.Sprintf(">= %.0f", target), Met: met(v >= target)})
	}
	for _, spec := range ceilings {
		name, rhs, found := strings.Cut(spec, "<=")
		limit, err := strconv.ParseFloat(rhs, 64)
		if !found || err != nil {
			return nil, fmt.Errorf("bad -ceiling %q", spec)
		}
		v, err := figure(name)
		if err != nil {
			return nil, err
		}
		out = append(out, row{Section: section, Figure: name, Value: value(v),
			Goal: fmt.Sprintf("<= %.0f", limit), Met: met(v <= limit)})
	}
	for _, name := range shows {
		v, err := figure(name)
		if err != nil {
			return nil, err
		}
		out = append(out, row{Section: section, Figure: name, Value: value(v), Goal: "(a baseline)"})
	}
	return out, nil
}

// printTable prints rows aligned, under the header, with "-" in empty cells.
func printTable(w io.Writer, rs []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range append([]row{header}, rs...) {
		cells := r.fields()
		for i, c := range cells {
			if c == "" {
				cells[i] = "-"
			}
		}
		if _, err := fmt.Fprintln(tw, strings.Join(cells, "\t")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// readTable reads the rows a -table file collected (tab-separated, one a line).
func readTable(path string) ([]row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []row
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != len(header.fields()) {
			return nil, fmt.Errorf("%s: a line of %d fields, want %d: %q", path, len(f), len(header.fields()), line)
		}
		out = append(out, row{f[0], f[1], f[2], f[3], f[4], f[5], f[6]})
	}
	return out, nil
}

// appendTable adds rows to the -table file.
func appendTable(path string, rs []row) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if _, err := fmt.Fprintln(f, strings.Join(r.fields(), "\t")); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(2)
}

func main() {
	in := flag.String("in", "-", "benchmark output to read, - for stdin")
	metric := flag.String("metric", "writes/s", "metric to compare")
	strict := flag.Bool("strict", false, "exit 1 when a target is missed")
	section := flag.String("section", "", "the rows' section in the table (for example the store measured)")
	table := flag.String("table", "", "a file to add the rows to, for -print")
	printPath := flag.String("print", "", "print the rows collected in this -table file as one table, and stop")
	var ratios, floors, ceilings, shows list
	flag.Var(&ratios, "ratio", "NAME/BASE[>=MIN]: print NAME's figure beside BASE's and their ratio")
	flag.Var(&floors, "floor", "NAME>=MIN: print NAME's figure against an absolute target")
	flag.Var(&shows, "show", "NAME: print NAME's figure, with no target (a baseline)")
	flag.Var(&ceilings, "ceiling", "NAME<=MAX: print NAME's figure against an upper bound (for example failed writes)")
	flag.Parse()

	if *printPath != "" {
		rs, err := readTable(*printPath)
		if err != nil {
			fail(err)
		}
		if err := printTable(os.Stdout, rs); err != nil {
			fail(err)
		}
		goals, missed := 0, 0
		for _, r := range rs {
			if r.Met != "" {
				goals++
			}
			if r.Met == met(false) {
				missed++
			}
		}
		fmt.Printf("%d goals, %d met, %d not met\n", goals, goals-missed, missed)
		return
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fail(err)
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	data, err := parse(r, *metric)
	if err != nil {
		fail(err)
	}
	rs, err := rows(data, *metric, *section, ratios, floors, ceilings, shows)
	if err != nil {
		fail(err)
	}
	if err := printTable(os.Stdout, rs); err != nil {
		fail(err)
	}
	if *table != "" {
		if err := appendTable(*table, rs); err != nil {
			fail(err)
		}
	}
	if *strict && slices.ContainsFunc(rs, func(r row) bool { return r.Met == met(false) }) {
		os.Exit(1)
	}
}
