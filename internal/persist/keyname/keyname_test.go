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

package keyname_test

import (
	"strings"
	"testing"

	"github.com/strategyops/strategy-operator/internal/persist/keyname"
)

func TestEncodeIsReversibleAndSafe(t *testing.T) {
	for _, e := range []keyname.Escaper{{Escape: '%', Hashed: "~"}, {Escape: '_', Hashed: "_h"}} {
		for _, key := range []string{"BTCUSDT", "BTC/USDT", "..", ".hidden", "a_b", "100%", "ключ", "x:y"} {
			name := e.Encode(key)
			if strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%") != "" ||
				strings.HasPrefix(name, ".") || e.IsHashed(name) {
				t.Errorf("%c: %q encodes to %q", e.Escape, key, name)
			}
			back, err := e.Decode(name)
			if err != nil || back != key {
				t.Errorf("%c: %q -> %q -> %q, %v", e.Escape, key, name, back, err)
			}
		}
		long := e.Encode(strings.Repeat("k", 255))
		if !e.IsHashed(long) || len(long) > keyname.MaxPlain {
			t.Errorf("%c: a 255-byte key encodes to %q", e.Escape, long)
		}
	}
}
