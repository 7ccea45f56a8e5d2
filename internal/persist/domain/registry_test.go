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

package domain

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// moduleRoot is the repository's root, three folders up from this package.
const moduleRoot = "../../.."

// apiBackends are the names the API declares: the constants of type PersistenceBackend in
// api/v1alpha1, read from the source so that a new one cannot be missed here.
func apiBackends(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(moduleRoot, "api/v1alpha1/strategy_types.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{} // constant → value
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "PersistenceBackend" {
				continue
			}
			for i, n := range vs.Names {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
					names[n.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no PersistenceBackend constants in the API")
	}
	return names
}

func TestEveryAPIBackendIsRegistered(t *testing.T) {
	names := apiBackends(t)
	want := make([]v1.PersistenceBackend, 0, len(names))
	for _, v := range names {
		want = append(want, v1.PersistenceBackend(v))
	}
	slices.Sort(want)
	if got := Backends(); !slices.Equal(got, want) {
		t.Fatalf("registered backends %v, the API declares %v", got, want)
	}
	for _, b := range want {
		if HomeOf(b) == 0 {
			t.Errorf("%s has no home", b)
		}
	}
	if _, err := Lookup("Floppy"); !errors.Is(err, ErrUnknownBackend) || !strings.Contains(err.Error(), "Floppy") {
		t.Errorf("Lookup of an unknown name: %v, want ErrUnknownBackend naming it", err)
	}
	if _, err := OpenDatabase(t.Context(), v1.BackendFile, "file:///x"); err == nil {
		t.Error("OpenDatabase opened the File backend")
	}
}

func TestRegisterRefusesDuplicatesAndMissingOpeners(t *testing.T) {
	for name, k := range map[string]Kind{
		"twice":        {Name: v1.BackendFile, Home: OnVolume, OpenFiles: FileBackend},
		"no home":      {Name: "Tape", OpenFiles: FileBackend},
		"wrong opener": {Name: "Tape", Home: InDatabase, OpenFiles: FileBackend},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", k.Name)
				}
			}()
			Register(k)
		})
	}
}

// nameBranches lists where the Go source src branches on a backend's name: a mention of
// one of the API's backend constants, or a comparison (or case) with one of their values.
func nameBranches(fset *token.FileSet, f *ast.File, constants map[string]string) []string {
	values := map[string]bool{}
	for _, v := range constants {
		values[strconv.Quote(v)] = true
	}
	var out []string
	report := func(n ast.Node, what string) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), what))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if _, ok := constants[n.Sel.Name]; ok {
				report(n, n.Sel.Name)
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				break
			}
			for _, side := range []ast.Expr{n.X, n.Y} {
				if lit, ok := side.(*ast.BasicLit); ok && values[lit.Value] {
					report(n, "compares with "+lit.Value)
				}
			}
		case *ast.CaseClause:
			for _, e := range n.List {
				if lit, ok := e.(*ast.BasicLit); ok && values[lit.Value] {
					report(e, "case "+lit.Value)
				}
			}
		}
		return true
	})
	return out
}

func TestNameBranchesFindsBranches(t *testing.T) {
	src := `package x
func f(b v1.PersistenceBackend, s string) bool {
	switch s {
	case "Redis":
	}
	return b == v1.BackendFile || s != "MongoDB"
}`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := nameBranches(fset, f, apiBackends(t)); len(got) != 3 {
		t.Fatalf("found %d branches in a source with 3: %v", len(got), got)
	}
}

// TestNoBackendNameBranches: the code outside the registry (this package's backend_*.go
// files) never branches on a backend's name; it asks the backend's Home instead. The API
// package, which declares the names, and the tests and their servers are not counted.
func TestNoBackendNameBranches(t *testing.T) {
	constants := apiBackends(t)
	fset := token.NewFileSet()
	var found []string
	files := 0
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		if d.IsDir() {
			switch rel {
			case "api", "bin", "dist", "sdk", "examples", ".git", filepath.Join("internal", "testenv"):
				// the names' declaration; tools; other modules; the tests' servers, one per
				// database
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if filepath.Dir(rel) == filepath.Join("internal", "persist", "domain") &&
			strings.HasPrefix(filepath.Base(rel), "backend_") {
			return nil // the registry
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, rel, src, 0)
		if err != nil {
			return err
		}
		files++
		found = append(found, nameBranches(fset, f, constants)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d Go files under %s", files, moduleRoot)
	}
	if len(found) > 0 {
		t.Fatalf("%d branches on a backend's name outside the registry (ask domain.HomeOf or the Kind):\n%s",
			len(found), strings.Join(found, "\n"))
	}
}
