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

// Package version is the version a binary was built as. The build stamps it:
//
//	go build -ldflags "-X github.com/strategyops/strategy-operator/internal/version.Version=v0.3.0"
//
// (make images and make build do, with the commit in Commit); without a stamped commit, the
// Go toolchain's own record of the checkout gives it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release this binary was built as; "dev" when nobody stamped it.
var Version = "dev"

// Commit is the source commit, stamped like Version.
var Commit = ""

// String is the line --version prints: the version, the commit (with "-modified" when
// the working tree had changes) and the Go toolchain and platform.
func String(program string) string {
	commit := Commit
	if info, ok := debug.ReadBuildInfo(); ok && commit == "" {
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "-modified"
				}
			}
		}
		if rev != "" {
			commit = rev[:min(len(rev), 12)] + modified
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("%s %s (commit %s, %s, %s/%s)", program, Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
