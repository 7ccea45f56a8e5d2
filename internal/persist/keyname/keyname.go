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

// Package keyname maps store keys reversibly onto the restricted names a backend allows
// (file names, ConfigMap data keys): [A-Za-z0-9._-] is kept (a leading '.' excepted, and
// the escape byte itself), every other byte becomes the escape byte and two hex digits.
// A key whose encoding would pass 200 bytes is stored under a hash instead; the backend
// keeps the original key beside it.
package keyname

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxPlain is the longest encoded name kept as it is.
const MaxPlain = 200

// Escaper is one backend's encoding.
type Escaper struct {
	// Escape introduces two hex digits; it must be outside [A-Za-z0-9].
	Escape byte
	// Hashed prefixes hashed names; it must not be a possible plain encoding.
	Hashed string
}

func (e Escaper) safe(c byte, first bool) bool {
	switch {
	case c == e.Escape:
		return false
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		return true
	default:
		return c == '.' && !first
	}
}

// Encode is the name that holds key.
func (e Escaper) Encode(key string) string {
	if name := e.Escaped(key); len(name) <= MaxPlain {
		return name
	}
	sum := sha256.Sum256([]byte(key))
	return e.Hashed + hex.EncodeToString(sum[:20])
}

// Escaped is key escaped, however long: never a hash.
func (e Escaper) Escaped(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		if c := key[i]; e.safe(c, i == 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%c%02X", e.Escape, c)
		}
	}
	return b.String()
}

// IsHashed reports whether name is a hash, whose key the backend keeps elsewhere.
func (e Escaper) IsHashed(name string) bool { return strings.HasPrefix(name, e.Hashed) }

// Decode reverses Encode for a name that is not hashed.
func (e Escaper) Decode(name string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != e.Escape {
			b.WriteByte(name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("truncated escape in %q", name)
		}
		v, err := hex.DecodeString(name[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", name)
		}
		b.WriteByte(v[0])
		i += 2
	}
	return b.String(), nil
}
