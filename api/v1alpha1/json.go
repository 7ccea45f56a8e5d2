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
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/strategyops/strategy-operator/internal/jsonx"
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
// type) and returns the members of data that plain's type does not name, and the order
// of all the members of data.
func unmarshalKeepingExtra(data []byte, plain any) (map[string]apiextensionsv1.JSON, []string, error) {
	if err := json.Unmarshal(data, plain); err != nil {
		return nil, nil, err
	}
	members, err := jsonx.Members(data)
	if err != nil {
		return nil, nil, err
	}
	known := jsonNames(reflect.TypeOf(plain).Elem())
	var extra map[string]apiextensionsv1.JSON
	order := make([]string, len(members))
	for i, m := range members {
		order[i] = m.Key
		if _, ok := known[m.Key]; ok {
			continue
		}
		if extra == nil {
			extra = make(map[string]apiextensionsv1.JSON)
		}
		extra[m.Key] = apiextensionsv1.JSON{Raw: bytes.Clone(m.Value)}
	}
	return extra, order, nil
}

// marshalWithExtra encodes plain, adds the members of extra that plain does not set, and
// writes the members in order (those order does not name after them), as JSON.stringify
// would write an object whose members were made in that order.
func marshalWithExtra(plain any, extra map[string]apiextensionsv1.JSON, order []string) ([]byte, error) {
	data, err := jsonx.Marshal(plain)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
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
		if data, err = jsonx.Marshal(members); err != nil {
			return nil, err
		}
		if order == nil {
			order = jsonNamesInOrder(reflect.TypeOf(plain))
		}
	}
	if order == nil {
		return data, nil
	}
	return jsonx.InOrder(data, order)
}

// jsonNamesInOrder is the JSON names of t's fields in declaration order.
func jsonNamesInOrder(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "-" && f.IsExported() {
			names = append(names, cmp.Or(name, f.Name))
		}
	}
	return names
}

// The orders in which backtest-kit 19.5.0 makes a signal row (GET_SIGNAL_FN spreads the
// strategy's signal first, then sets its own keys), for a strategy whose signal has the
// keys position, priceOpen (a limit entry only), priceTakeProfit, priceStopLoss,
// minuteEstimatedTime and note, in that order: the shape of the runner's signals.
var (
	// MarketRowKeys: a signal opened at once at the average price.
	MarketRowKeys = strings.Fields("position priceTakeProfit priceStopLoss minuteEstimatedTime note id cost priceOpen multiplier " +
		"isolated symbol exchangeName strategyName frameName scheduledAt pendingAt timestamp " +
		"_isScheduled _entry _peak _fall")
	// LimitRowKeys: a signal with a limit entry, scheduled or (its price already reached)
	// opened at once; an activated scheduled signal keeps it.
	LimitRowKeys = strings.Fields("position priceOpen priceTakeProfit priceStopLoss minuteEstimatedTime note id cost multiplier " +
		"isolated symbol exchangeName strategyName frameName scheduledAt pendingAt timestamp " +
		"_isScheduled _entry _peak _fall")
)

// The orders of a _peak or _fall object's keys, which differ by where backtest-kit made it.
var (
	// ExtremeKeysAtOpen: made with the row (GET_SIGNAL_FN); also the field order.
	ExtremeKeysAtOpen = strings.Fields("price timestamp pnlPercentage pnlCost priceClose priceOpen pnlEntries")
	// ExtremeKeysAtActivation: made when a scheduled signal activates (ACTIVATE_SCHEDULED_SIGNAL_FN).
	ExtremeKeysAtActivation = strings.Fields("price timestamp pnlPercentage pnlCost pnlEntries priceClose priceOpen")
	// ExtremeKeysOnTick: a new extreme seen while open (RETURN_PENDING_SIGNAL_ACTIVE_FN).
	ExtremeKeysOnTick = strings.Fields("price timestamp pnlCost pnlPercentage pnlEntries priceClose priceOpen")
)

// KeyOrder is the order the row's members are written in: the order they were read in,
// or the one set with SetKeyOrder. nil writes LimitRowKeys for a row that is or was
// scheduled (pendingAt differs from scheduledAt), else MarketRowKeys: a limit entry opened
// at once looks like a market one, so whoever makes a row sets its order.
func (s *Signal) KeyOrder() []string { return s.keyOrder }

// SetKeyOrder sets the order the row's members are written in.
func (s *Signal) SetKeyOrder(keys []string) { s.keyOrder = slices.Clone(keys) }

// MarshalJSON writes the row with its unknown fields, its members in its key order.
func (s Signal) MarshalJSON() ([]byte, error) {
	type plain Signal
	order := s.keyOrder
	if order == nil {
		order = MarketRowKeys
		if s.IsScheduled || s.PendingAt != s.ScheduledAt {
			order = LimitRowKeys
		}
	}
	return marshalWithExtra(plain(s), s.Extra, order)
}

// UnmarshalJSON reads the row, keeps its unknown fields in Extra and its key order.
func (s *Signal) UnmarshalJSON(data []byte) error {
	type plain Signal
	var p plain
	extra, order, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*s = Signal(p)
	s.Extra, s.keyOrder = extra, order
	return nil
}

// SetKeyOrder sets the order the object's members are written in.
func (e *PriceExtreme) SetKeyOrder(keys []string) { e.keyOrder = slices.Clone(keys) }

// MarshalJSON writes the extreme with its unknown fields, in the order read or set.
func (e PriceExtreme) MarshalJSON() ([]byte, error) {
	type plain PriceExtreme
	return marshalWithExtra(plain(e), e.Extra, e.keyOrder)
}

// UnmarshalJSON reads the extreme and keeps its unknown fields and key order.
func (e *PriceExtreme) UnmarshalJSON(data []byte) error {
	type plain PriceExtreme
	var p plain
	extra, order, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*e = PriceExtreme(p)
	e.Extra, e.keyOrder = extra, order
	return nil
}

// MarshalJSON writes the fill with its unknown fields, in the order read.
func (f EntryFill) MarshalJSON() ([]byte, error) {
	type plain EntryFill
	return marshalWithExtra(plain(f), f.Extra, f.keyOrder)
}

// UnmarshalJSON reads the fill and keeps its unknown fields and key order.
func (f *EntryFill) UnmarshalJSON(data []byte) error {
	type plain EntryFill
	var p plain
	extra, order, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*f = EntryFill(p)
	f.Extra, f.keyOrder = extra, order
	return nil
}

// MarshalJSON writes the partial close with its unknown fields, in the order read.
func (c PartialClose) MarshalJSON() ([]byte, error) {
	type plain PartialClose
	return marshalWithExtra(plain(c), c.Extra, c.keyOrder)
}

// UnmarshalJSON reads the partial close and keeps its unknown fields and key order.
func (c *PartialClose) UnmarshalJSON(data []byte) error {
	type plain PartialClose
	var p plain
	extra, order, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*c = PartialClose(p)
	c.Extra, c.keyOrder = extra, order
	return nil
}

// MarshalJSON writes the snapshot with its unknown fields, in the order read.
func (s StrategySnapshot) MarshalJSON() ([]byte, error) {
	type plain StrategySnapshot
	return marshalWithExtra(plain(s), s.Extra, s.keyOrder)
}

// UnmarshalJSON reads the snapshot and keeps its unknown fields and key order.
func (s *StrategySnapshot) UnmarshalJSON(data []byte) error {
	type plain StrategySnapshot
	var p plain
	extra, order, err := unmarshalKeepingExtra(data, &p)
	if err != nil {
		return err
	}
	*s = StrategySnapshot(p)
	s.Extra, s.keyOrder = extra, order
	return nil
}

// MarshalJSON writes the position with its unknown fields, in the order read.
func (p ActivePosition) MarshalJSON() ([]byte, error) {
	type plain ActivePosition
	return marshalWithExtra(plain(p), p.Extra, p.keyOrder)
}

// UnmarshalJSON reads the position and keeps its unknown fields and key order.
func (p *ActivePosition) UnmarshalJSON(data []byte) error {
	type plain ActivePosition
	var v plain
	extra, order, err := unmarshalKeepingExtra(data, &v)
	if err != nil {
		return err
	}
	*p = ActivePosition(v)
	p.Extra, p.keyOrder = extra, order
	return nil
}

// MarshalJSON writes the pair as a two-element array.
func (e RiskEntry) MarshalJSON() ([]byte, error) {
	return jsonx.Marshal([2]any{e.Key, e.Position})
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
	return jsonx.Marshal([]RiskEntry(r))
}
