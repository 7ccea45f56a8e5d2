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

package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Rows written by backtest-kit may carry fields that a newer version added. Signal and
// StrategySnapshot keep such fields in Extra so that a row read and written back is the
// row that was read. The helpers here do that for any struct whose Extra field is
// tagged `json:"-"`.

// knownKeys caches, per struct type, the JSON names of its fields.
var knownKeys sync.Map // reflect.Type -> map[string]struct{}

func jsonNames(t reflect.Type) map[string]struct{} {
	if v, ok := knownKeys.Load(t); ok {
		return v.(map[string]struct{})
	}
	names := make(map[string]struct{}, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = struct{}{}
	}
	knownKeys.Store(t, names)
	return names
}

// unmarshalKeepingExtra decodes data into plain (a pointer to a method-less copy of the
// type) and returns the members of data that plain's type does not name.
func unmarshalKeepingExtra(data []byte, plain any) (map[string]apiextensionsv1.JSON, error) {
	if err := json.Unmarshal(data, plain); err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	known := jsonNames(reflect.TypeOf(plain).Elem())
	var extra map[string]apiextensionsv1.JSON
	for k, v := range members {
		if _, ok := known[k]; ok {
			continue
		}
		if extra == nil {
			extra = make(map[string]apiextensionsv1.JSON)
		}
		extra[k] = apiextensionsv1.JSON{Raw: bytes.Clone(v)}
	}
	return extra, nil
}

// marshalWithExtra encodes plain and adds the members of extra that plain does not set.
func marshalWithExtra(plain any, extra map[string]apiextensionsv1.JSON) ([]byte, error) {
	data, err := json.Marshal(plain)
	if err != nil || len(extra) == 0 {
		return data, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	for k, v := range extra {
		if _, ok := members[k]; ok {
			continue // a typed field always wins over a stale copy in Extra
		}
		raw := v.Raw
		if len(raw) == 0 {
			raw = []byte("null")
		}
		members[k] = raw
	}
	return json.Marshal(members)
}

// MarshalJSON writes the row with its unknown fields.
func (s Signal) MarshalJSON() ([]byte, error) {
	type plain Signal
	return marshalWithExtra(plain(s), s.Extra)
}

// UnmarshalJSON reads the row and keeps its unknown fields in Extra.
func (s *Signal) UnmarshalJSON(data []byte) error {
	type plain Signal
	var p plain
	extra, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*s = Signal(p)
	s.Extra = extra
	return nil
}

// MarshalJSON writes the snapshot with its unknown fields.
func (s StrategySnapshot) MarshalJSON() ([]byte, error) {
	type plain StrategySnapshot
	return marshalWithExtra(plain(s), s.Extra)
}

// UnmarshalJSON reads the snapshot and keeps its unknown fields in Extra.
func (s *StrategySnapshot) UnmarshalJSON(data []byte) error {
	type plain StrategySnapshot
	var p plain
	extra, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*s = StrategySnapshot(p)
	s.Extra = extra
	return nil
}

// MarshalJSON writes the position with its unknown fields.
func (p ActivePosition) MarshalJSON() ([]byte, error) {
	type plain ActivePosition
	return marshalWithExtra(plain(p), p.Extra)
}

// UnmarshalJSON reads the position and keeps its unknown fields in Extra.
func (p *ActivePosition) UnmarshalJSON(data []byte) error {
	type plain ActivePosition
	var v plain
	extra, err := unmarshalKeepingExtra(data, &v)
	if err != nil {
		return err
	}
	*p = ActivePosition(v)
	p.Extra = extra
	return nil
}

// MarshalJSON writes the pair as a two-element array.
func (e RiskEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]any{e.Key, e.Position})
}

// UnmarshalJSON reads a [key, position] pair.
func (e *RiskEntry) UnmarshalJSON(data []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("risk entry: want a [key, position] pair, got %d elements", len(pair))
	}
	if err := json.Unmarshal(pair[0], &e.Key); err != nil {
		return fmt.Errorf("risk entry key: %w", err)
	}
	if err := json.Unmarshal(pair[1], &e.Position); err != nil {
		return fmt.Errorf("risk entry %q: %w", e.Key, err)
	}
	return nil
}

// MarshalJSON writes an empty record as [] (backtest-kit's "no positions"), never null.
func (r RiskPositions) MarshalJSON() ([]byte, error) {
	if r == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]RiskEntry(r))
}
