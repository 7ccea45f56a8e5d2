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

package kubestore

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Labels on the objects that hold stores, so that a person or the operator can find every
// object of a strategy, exchange, symbol or risk profile.
const (
	LabelDomain   = "trading.strategyops.dev/domain"
	LabelStrategy = "trading.strategyops.dev/strategy"
	LabelExchange = "trading.strategyops.dev/exchange"
	LabelSymbol   = "trading.strategyops.dev/symbol"
	LabelRisk     = "trading.strategyops.dev/risk"
)

var notName = regexp.MustCompile(`[^a-z0-9]+`)

// ObjectName joins parts into a valid object name (a DNS label): lower case, runs of
// characters outside [a-z0-9] as '-'. When that lost anything, or the name would pass 63
// characters, a hash of the exact parts is added, so distinct parts never share a name.
func ObjectName(parts ...string) string {
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

var notLabel = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LabelValue makes s a valid label value: characters outside [A-Za-z0-9._-] become '_',
// cut to 63.
func LabelValue(s string) string {
	v := notLabel.ReplaceAllString(s, "_")
	return strings.Trim(v[:min(len(v), 63)], "._-")
}
