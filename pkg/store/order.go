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

package store

import (
	"errors"
	"strings"
)

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// CompareKeys orders keys as backtest-kit does (localeCompare with numeric collation and
// base sensitivity): runs of digits compare by value, so "2" comes before "10", and other
// text compares without regard to case. Keys equal under those rules fall back to plain
// byte order, so the order is total.
func CompareKeys(a, b string) int {
	x, y := a, b
	for x != "" && y != "" {
		xd, yd := isDigit(x[0]), isDigit(y[0])
		var xr, yr string
		xr, x = chunk(x, xd)
		yr, y = chunk(y, yd)
		var c int
		switch {
		case xd && yd:
			c = compareNumeric(xr, yr)
		case xd != yd:
			// digits sort before letters, as in the default collation
			if xd {
				c = -1
			} else {
				c = 1
			}
		default:
			c = strings.Compare(strings.ToLower(xr), strings.ToLower(yr))
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case x == "" && y != "":
		return -1
	case x != "" && y == "":
		return 1
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// chunk splits off the leading run of digits (digits true) or non-digits.
func chunk(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) == digits {
		i++
	}
	return s[:i], s[i:]
}

// compareNumeric compares two runs of decimal digits by value, at any length.
func compareNumeric(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
