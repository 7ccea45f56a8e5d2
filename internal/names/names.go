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

// Package names is the vocabulary of the objects the project makes in a cluster: their
// names, and the labels that find every object of a strategy, exchange, symbol or risk
// profile, and of its owner.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Labels on the objects that hold stores, so that a person or the operator can find every
// object of a strategy, exchange, symbol or risk profile, and of its owner.
const (
	// LabelOwner is the UID of the Strategy that owns the object: retention Delete removes
	// only the objects of its own UID.
	LabelOwner    = "trading.strategyops.dev/owner-uid"
	LabelDomain   = "trading.strategyops.dev/domain"
	LabelStrategy = "trading.strategyops.dev/strategy"
	LabelExchange = "trading.strategyops.dev/exchange"
	LabelSymbol   = "trading.strategyops.dev/symbol"
	LabelRisk     = "trading.strategyops.dev/risk"
	// LabelPhase is a StrategyState's phase (Idle, Scheduled, Open), which its store sets
	// on every write: a metadata watch sees a signal open or close, and kubectl selects by it.
	LabelPhase = "trading.strategyops.dev/phase"
)

var (
	notName = regexp.MustCompile(`[^a-z0-9]+`)
	plain   = regexp.MustCompile(`^[a-z0-9]+$`)
)

// RunnerPath is where an image holds the runner: the runner image, and an image that runs
// a process of the user's (spec.command) under runner exec.
const RunnerPath = "/usr/local/bin/runner"

// ObjectName joins parts into a valid object name (a DNS label) that no other list of
// parts maps to. Parts that are all [a-z0-9] are joined with '-' as they are; otherwise
// (or past 63 characters) the cleaned-up parts are followed by "--" and a 64-bit hash of
// the exact parts. A plain name has no "--" and one segment per part, so it cannot equal
// another list's plain name nor any hashed name: nobody can choose parts that take
// another's name.
func ObjectName(parts ...string) string {
	exact := true
	for _, p := range parts {
		exact = exact && plain.MatchString(p)
	}
	if name := strings.Join(parts, "-"); exact && len(name) <= 63 {
		return name
	}
	return hashed(parts)
}

// LeaseName is the Lease of a state identity, a strategy on an exchange: the one its
// runners campaign for, whose holder alone may write its state.
func LeaseName(strategyName, exchangeName string) string {
	return ObjectName("state", strategyName, exchangeName)
}

// DerivedName is the name of an object derived from another object's name (itself
// unique in its namespace) and a fixed suffix: "<name>-<suffix>" when that is a valid DNS
// label, otherwise cleaned up, cut, and given a hash of the exact parts. The fixed suffix
// keeps distinct names apart; these names are as every earlier version made them (pods,
// ServiceAccounts and volumes must be found again after an upgrade).
func DerivedName(name, suffix string) string { return LegacyObjectName(name, suffix) }

// LegacyObjectName is how versions before unambiguous store names named objects: parts
// cleaned up to [a-z0-9-] and joined with '-', with a 40-bit hash of the exact parts when
// that lost anything (an upper-case part alone did not count) or passed 63 characters. Two
// lists of parts could share a name ("x-y","z" and "x","y-z"). The operator uses it to
// find the store objects of an earlier version and move them to ObjectName's names.
func LegacyObjectName(parts ...string) string {
	clean := make([]string, len(parts))
	lossy := false
	for i, p := range parts {
		lower := strings.ToLower(p)
		clean[i] = strings.Trim(notName.ReplaceAllString(lower, "-"), "-")
		lossy = lossy || clean[i] != lower || lower != p && strings.ToUpper(p) != p
	}
	name := strings.Join(clean, "-")
	if !lossy && len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	suffix := "-" + hex.EncodeToString(sum[:5])
	return strings.Trim(name[:min(len(name), 63-len(suffix))], "-") + suffix
}

func hashed(parts []string) string {
	clean := make([]string, 0, len(parts))
	for _, p := range parts {
		if c := strings.Trim(notName.ReplaceAllString(strings.ToLower(p), "-"), "-"); c != "" {
			clean = append(clean, c)
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	suffix := "--" + hex.EncodeToString(sum[:8])
	prefix := strings.Join(clean, "-")
	return strings.Trim(prefix[:min(len(prefix), 63-len(suffix))], "-") + suffix
}

// SymbolPart is the name part of a trading symbol: an all-upper-case symbol is written in
// lower case ("BTCUSDT" as "btcusdt"), so that the usual symbols keep readable names. Two
// symbols that differ only so share the name; the stores of one strategy refuse an object
// holding another context (driver.ErrNotOwned), and distinct strategies never share a name.
func SymbolPart(symbol string) string {
	if upper.MatchString(symbol) {
		return strings.ToLower(symbol)
	}
	return symbol
}

var upper = regexp.MustCompile(`^[A-Z0-9]+$`)

var notLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LabelValue makes s a valid label value: characters outside [A-Za-z0-9._-] become '_',
// cut to 63.
func LabelValue(s string) string {
	v := notLabel.ReplaceAllString(s, "_")
	return strings.Trim(v[:min(len(v), 63)], "._-")
}
