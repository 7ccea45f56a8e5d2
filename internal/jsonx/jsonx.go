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

// Package jsonx writes JSON the way JavaScript's JSON.stringify does, which is how
// backtest-kit writes its files: compact, without a trailing newline, '<', '>' and '&'
// left as they are, and an object's members in the order they were given. Go's
// encoding/json differs on the last three, so a value it writes back is not byte for byte
// the value backtest-kit wrote.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Marshal encodes v compactly, without HTML escaping and without a trailing newline.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeSeparators(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// unescapeSeparators writes U+2028 and U+2029 as themselves, as JSON.stringify does;
// encoding/json always escapes them. An escape is one only after an even number of
// backslashes ("\\u2028" is a backslash and the text u2028).
func unescapeSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if rest := b[i:]; bytes.HasPrefix(rest, []byte(`\u2028`)) || bytes.HasPrefix(rest, []byte(`\u2029`)) {
			if rest[5] == '8' {
				out = append(out, "\u2028"...)
			} else {
				out = append(out, "\u2029"...)
			}
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1]) // any other escape, kept whole
		i++
	}
	return out
}

// Member is one member of a JSON object.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Members returns the members of the JSON object data in document order.
func Members(data []byte) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %v", tok)
	}
	var out []Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("member %q: %w", key, err)
		}
		out = append(out, Member{Key: key, Value: raw})
	}
	return out, nil
}

// Keys returns the member names of the JSON object data in document order.
func Keys(data []byte) ([]string, error) {
	members, err := Members(data)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = m.Key
	}
	return keys, nil
}

// InOrder re-encodes the JSON object data with the members named in order first, in that
// order, and the others after them in their order in data. Member values are kept as they
// are (compacted).
func InOrder(data []byte, order []string) ([]byte, error) {
	members, err := Members(data)
	if err != nil {
		return nil, err
	}
	at := make(map[string]int, len(members))
	for i, m := range members {
		at[m.Key] = i
	}
	done := make([]bool, len(members))
	var buf bytes.Buffer
	buf.WriteByte('{')
	emit := func(i int) error {
		if done[i] {
			return nil
		}
		done[i] = true
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		key, err := Marshal(members[i].Key)
		if err != nil {
			return err
		}
		buf.Write(key)
		buf.WriteByte(':')
		return json.Compact(&buf, members[i].Value)
	}
	for _, k := range order {
		if i, ok := at[k]; ok {
			if err := emit(i); err != nil {
				return nil, err
			}
		}
	}
	for i := range members {
		if err := emit(i); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Canonical is v's JSON with every object's members sorted by name: two values that differ
// only in key order (a row read back from the API server, which sorts them, and one read
// from a file) have the same Canonical.
func Canonical(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return "", err
	}
	data, err = json.Marshal(generic)
	return string(data), err
}
