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

package names

import (
	"regexp"
	"strings"
	"testing"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// TestObjectNamesNeverCollide: parts that joined with '-' read alike ("x-y","z" and
// "x","y-z" both once made "risk-x-y-z") get distinct names, and so do parts that clean up
// alike or differ only in case.
func TestObjectNamesNeverCollide(t *testing.T) {
	lists := [][]string{
		{"risk", "x-y", "z"}, {"risk", "x", "y-z"}, {"risk", "x", "y", "z"}, {"risk", "x-y-z"},
		{"risk", "Breakout", "e"}, {"risk", "breakout", "e"}, {"risk", "BREAKOUT", "e"},
		{"risk", "a/b", "e"}, {"risk", "a.b", "e"}, {"risk", "a", "", "b"}, {"risk", "a", "b"},
		{"signal", "s", "e", "btcusdt--0123456789abcdef"}, {"signal", "s", "e", "btcusdt"},
		{"signal", strings.Repeat("long", 20), "e", "btcusdt"}, {"signal", strings.Repeat("long", 20), "e", "ethusdt"},
	}
	seen := map[string][]string{}
	for _, parts := range lists {
		name := ObjectName(parts...)
		if !dnsLabel.MatchString(name) || len(name) > 63 {
			t.Errorf("ObjectName(%q) = %q: not a DNS label", parts, name)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("ObjectName(%q) = ObjectName(%q) = %q", parts, other, name)
		}
		seen[name] = parts
	}
	if got := ObjectName("signal", "breakout", "simulated", SymbolPart("BTCUSDT")); got != "signal-breakout-simulated-btcusdt" {
		t.Errorf("plain parts and an upper-case symbol keep a readable name, got %q", got)
	}
	if got := ObjectName("risk", "x-y", "z"); !regexp.MustCompile(`^risk-x-y-z--[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("a part with '-' is hashed, got %q", got)
	}
}

func TestDerivedName(t *testing.T) {
	for name, want := range map[string]string{
		"momentum-configmap":    "momentum-configmap-runner",
		"a.b":                   "",
		strings.Repeat("x", 60): "",
	} {
		got := DerivedName(name, "runner")
		if !dnsLabel.MatchString(got) || len(got) > 63 {
			t.Errorf("DerivedName(%q) = %q: not a DNS label", name, got)
		}
		if want != "" && got != want {
			t.Errorf("DerivedName(%q) = %q, want %q", name, got, want)
		}
	}
}
