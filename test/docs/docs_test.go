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

// Package docs_test checks what the docs tell a user to build: every Dockerfile in them
// parses with BuildKit's own parser, and builds only from what it copies. It is a module
// of its own, so that the parser's dependencies stay out of the operator's.
package docs_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// block is a fenced code block of a Markdown file.
type block struct {
	file, lang string
	line       int // of its opening fence
	text       string
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

// blocks are the fenced code blocks of the Markdown files of the repository's README and
// docs folder.
func blocks(t *testing.T) []block {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	for _, f := range append(files, filepath.Join("..", "..", "README.md")) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *block
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.HasPrefix(line, "```"):
				cur = &block{file: filepath.Base(f), lang: strings.TrimPrefix(line, "```"), line: n}
			case cur != nil && line == "```":
				out = append(out, *cur)
				cur = nil
			case cur != nil:
				cur.text += line + "\n"
			}
		}
		if cur != nil {
			t.Fatalf("%s: the code block opened at line %d is not closed", f, cur.line)
		}
	}
	return out
}

// TestDockerfilesBuild: every Dockerfile of the docs parses, with no warning; puts no
// comment after an instruction (a Dockerfile reads it as arguments); copies from no image
// but its own stages (a user has no other); and copies package-lock.json before npm ci.
func TestDockerfilesBuild(t *testing.T) {
	n := 0
	for _, b := range blocks(t) {
		if b.lang != "dockerfile" {
			continue
		}
		n++
		res, err := parser.Parse(strings.NewReader(b.text))
		if err != nil {
			t.Errorf("%s: the Dockerfile does not parse: %v", b, err)
			continue
		}
		for _, w := range res.Warnings {
			t.Errorf("%s: the parser warns: %s", b, w.Short)
		}
		var stages, copied []string
		for _, ins := range res.AST.Children {
			var args []string
			for a := ins.Next; a != nil; a = a.Next {
				args = append(args, a.Value)
			}
			where := fmt.Sprintf("%s (Dockerfile line %d: %s)", b, ins.StartLine, ins.Original)
			for _, a := range args {
				if strings.HasPrefix(a, "#") {
					t.Errorf("%s: a comment after an instruction is read as its arguments", where)
					break
				}
			}
			switch strings.ToLower(ins.Value) {
			case "from":
				isAs := func(a string) bool { return strings.EqualFold(a, "as") }
				if i := slices.IndexFunc(args, isAs); i >= 0 && i+1 < len(args) {
					stages = append(stages, args[i+1])
				}
			case "copy":
				for _, f := range ins.Flags {
					if from, ok := strings.CutPrefix(f, "--from="); ok && !slices.Contains(stages, from) {
						t.Errorf("%s: copies from image %s, which is no stage of this Dockerfile", where, from)
					}
				}
				if len(args) > 1 {
					copied = append(copied, args[:len(args)-1]...)
				}
			case "run":
				if strings.Contains(strings.Join(args, " "), "npm ci") && !slices.Contains(copied, "package-lock.json") {
					t.Errorf("%s: npm ci needs package-lock.json, which no COPY before it brings", where)
				}
			}
		}
	}
	if n < 3 {
		t.Fatalf("found %d Dockerfiles in the docs, want at least 3 (the backtest-kit bot, your own process, "+
			"the Go SDK's strategy): is the fence still ```dockerfile?", n)
	}
}
