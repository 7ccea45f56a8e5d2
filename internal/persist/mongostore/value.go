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

package mongostore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// toBSON turns a JSON value into the BSON value stored for it: objects become documents
// (their keys in order), numbers int32, int64 or double as they are written.
func toBSON(value []byte) (any, error) {
	var plain any
	if err := json.Unmarshal(value, &plain); err != nil {
		return nil, fmt.Errorf("%w: %w", driver.ErrInvalidValue, err)
	}
	// Extended JSON would read {"$date": …} or {"$numberLong": …} as a date or a number:
	// such a value is the caller's object, which MongoDB cannot keep as it is.
	if name, ok := dollarName(plain); ok {
		return nil, fmt.Errorf("%w: field %q: MongoDB field names cannot start with $", driver.ErrInvalidValue, name)
	}
	var wrapped bson.D
	doc := make([]byte, 0, len(value)+6)
	doc = append(append(append(doc, `{"v":`...), value...), '}')
	if err := bson.UnmarshalExtJSON(doc, false, &wrapped); err != nil {
		return nil, fmt.Errorf("%w: %w", driver.ErrInvalidValue, err)
	}
	if len(wrapped) != 1 {
		return nil, fmt.Errorf("%w: not one JSON value", driver.ErrInvalidValue)
	}
	return wrapped[0].Value, nil
}

// dollarName finds a field name starting with "$" anywhere in a decoded JSON value.
func dollarName(v any) (string, bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.HasPrefix(k, "$") {
				return k, true
			}
			if name, ok := dollarName(e); ok {
				return name, true
			}
		}
	case []any:
		for _, e := range v {
			if name, ok := dollarName(e); ok {
				return name, true
			}
		}
	}
	return "", false
}

// toJSON writes a stored BSON value as JSON (MongoDB's relaxed extended JSON, which is
// plain JSON for every value a JSON writer stored). A missing field reads as null.
func toJSON(v bson.RawValue) ([]byte, error) {
	if v.Type == 0 {
		return []byte("null"), nil
	}
	out, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, false, false)
	if err != nil {
		return nil, err
	}
	inner, ok := bytes.CutPrefix(out, []byte(`{"v":`))
	if !ok || len(inner) == 0 {
		return nil, fmt.Errorf("unexpected extended JSON %q", out)
	}
	return inner[:len(inner)-1], nil
}

// nestedArray reports whether a BSON value holds an array directly inside an array (as
// backtest-kit's risk positions do: pairs of key and position), which FerretDB 1.x cannot
// store.
func nestedArray(v any, inArray bool) bool {
	switch v := v.(type) {
	case bson.A:
		if inArray {
			return true
		}
		for _, e := range v {
			if nestedArray(e, true) {
				return true
			}
		}
	case bson.D:
		for _, e := range v {
			if nestedArray(e.Value, false) {
				return true
			}
		}
	}
	return false
}
