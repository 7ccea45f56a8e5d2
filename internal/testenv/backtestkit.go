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

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FolderTB is what the helpers that make folders need of a test: testing.TB, or Ginkgo's
// GinkgoT().
type FolderTB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
}

// BacktestKit is the node_modules folder holding backtest-kit 19.5.0 and its dependencies,
// in the shared folder beside the clone (see its README).
func BacktestKit(t FolderTB) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(RepoRoot()), "shared", "vendor", "backtest-kit", "node_modules")
	if _, err := os.Stat(filepath.Join(dir, "backtest-kit", "package.json")); err != nil {
		t.Fatalf("backtest-kit 19.5.0 is not in %s, beside the clone: the tests run the real library (%v)", dir, err)
	}
	return dir
}

// AdapterPackage is the backtest-kit adapter package, built (make sdk-ts).
func AdapterPackage(t FolderTB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "sdk", "backtest-kit")
	if _, err := os.Stat(filepath.Join(dir, "dist", "test", "adapters.test.js")); err != nil {
		t.Fatalf("the adapter package is not built: run make sdk-ts (%v)", err)
	}
	return dir
}

// BotFolder is a folder to run the bot of docs/backtest-kit-bot.md in (examples/
// backtest-kit-bot), as its steps leave it: backtest-kit and its dependencies where npm
// would install them (linked from the shared folder: the registry here cannot install
// them as published), and the adapter package installed from the tarball npm packs of
// sdk/backtest-kit.
func BotFolder(t FolderTB) string {
	t.Helper()
	modules := BacktestKit(t)
	dir := t.TempDir()
	for _, f := range []string{"bot.js", "package.json"} {
		data, err := os.ReadFile(filepath.Join(RepoRoot(), "examples", "backtest-kit-bot", f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		if err != nil {
			t.Fatalf("copying the bot: %v", err)
		}
	}
	entries, err := os.ReadDir(modules)
	if err != nil {
		t.Fatalf("%v", err)
	}
	linked := filepath.Join(dir, "node_modules")
	adapter := filepath.Join(linked, "@strategyops", "backtest-kit")
	if err := os.MkdirAll(adapter, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(modules, e.Name()), filepath.Join(linked, e.Name())); err != nil {
			t.Fatalf("%v", err)
		}
	}
	unpack := exec.Command("tar", "-xzf", PackAdapter(t), "-C", adapter, "--strip-components=1")
	if out, err := unpack.CombinedOutput(); err != nil {
		t.Fatalf("unpacking the adapter package: %v\n%s", err, out)
	}
	return dir
}

// PackAdapter packs the adapter package with npm pack, as a user does to install it from a
// checkout (its prepare script builds it), and returns the tarball.
func PackAdapter(t FolderTB) string {
	t.Helper()
	dir := t.TempDir()
	pack := exec.Command("npm", "pack", "--silent", "--pack-destination", dir)
	pack.Dir = AdapterPackage(t)
	out, err := pack.CombinedOutput()
	if err != nil {
		t.Fatalf("npm pack of %s: %v\n%s", pack.Dir, err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("npm pack named no tarball: %s", out)
	}
	return filepath.Join(dir, lines[len(lines)-1])
}
