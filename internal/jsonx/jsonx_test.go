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

package jsonx

import (
	"slices"
	"testing"
)

// The literals below are what JSON.stringify writes for the same values.
func TestMarshalIsJSONStringify(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"note": "a < b & c > d"}, `{"note":"a < b & c > d"}`},
		{[]float64{0.1, 1e21, 1e-7, 123456789012, -0.39960039960038823}, `[0.1,1e+21,1e-7,123456789012,-0.39960039960038823]`},
		{"é\u2028", "\"é\u2028\""},
		{`\u2028`, `"\\u2028"`}, // a backslash, then text
		{"\x01\t", `"\u0001\t"`},
	} {
		got, err := Marshal(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("Marshal(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestInOrder(t *testing.T) {
	got, err := InOrder([]byte(`{"a":1, "b":{"y":1,"x":2}, "c":[1, 2], "d":null}`), []string{"c", "zz", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"c":[1,2],"a":1,"b":{"y":1,"x":2},"d":null}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	keys, err := Keys([]byte(`{"z":1,"a":{"q":1},"m":2}`))
	if err != nil || !slices.Equal(keys, []string{"z", "a", "m"}) {
		t.Errorf("Keys = %v, %v", keys, err)
	}
	if _, err := InOrder([]byte(`[1]`), nil); err == nil {
		t.Error("InOrder of an array: no error")
	}
}
