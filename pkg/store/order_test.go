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

package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/strategyops/strategy-operator/pkg/store"
)

func TestCompareKeysIsNumericAware(t *testing.T) {
	keys := []string{"10", "b", "2", "B", "a10", "a2", "1", "007", "a", ""}
	slices.SortFunc(keys, store.CompareKeys)
	want := []string{"", "1", "2", "007", "10", "a", "a2", "a10", "B", "b"}
	if !slices.Equal(keys, want) {
		t.Fatalf("sorted %q, want %q", keys, want)
	}
	for _, k := range keys {
		if store.CompareKeys(k, k) != 0 {
			t.Fatalf("%q does not equal itself", k)
		}
	}
}

func TestValidateKeyNamesTheProblem(t *testing.T) {
	for key, want := range map[string]string{
		"":         "empty",
		"bad\xff":  "not UTF-8",
		"nul\x00x": "NUL",
	} {
		err := store.ValidateKey(key)
		if err == nil || !strings.Contains(err.Error(), "invalid key") || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateKey(%q) = %v, want it to say %q", key, err, want)
		}
	}
}
