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

// Package strategystatestore keeps the crash state of one strategy on one exchange and
// symbol in a StrategyState object: each domain is a field (signal, scheduledSignal,
// snapshot, partial, breakeven), so `kubectl get strategystates` shows it. The safety
// rules (per-key revisions, compare-and-swap, retries, group commit, fencing,
// read-your-writes) are package kubestore's.
//
// A write sets spec.phase in the same update as the signal it derives from. Signals are
// checked in Go before anything is sent, and the API server checks them again.
//
// Risk positions are keyed by risk profile, not by symbol: they have no StrategyState
// field and stay in the ConfigMap backend when this backend is selected.
package strategystatestore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/strategyops/strategy-operator/internal/names"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// Field is the StrategyState field a store keeps.
type Field string

// The fields, one per domain.
const (
	FieldSignal    Field = "signal"
	FieldSchedule  Field = "scheduledSignal"
	FieldSnapshot  Field = "snapshot"
	FieldPartial   Field = "partial"
	FieldBreakeven Field = "breakeven"
)

// SnapshotKey is the only key of the snapshot field (backtest-kit's entity id).
const SnapshotKey = "strategy"

// MaxSpecBytes bounds a StrategyState's spec, well under etcd's request limit.
const MaxSpecBytes = 1 << 20

// Key is the strategy, exchange and symbol a StrategyState belongs to.
type Key struct {
	StrategyName, ExchangeName, Symbol string
}

// Options configures a store.
type Options struct {
	kubestore.Options
	// SkipValidation sends signals without checking them in Go first, leaving it to the
	// API server. Only tests of the API server's validation set it.
	SkipValidation bool
}

// New returns a driver for field of the StrategyState of k in namespace.
func New(c client.Client, namespace string, k Key, field Field, opts Options) *kubestore.Driver {
	name := types.NamespacedName{Namespace: namespace, Name: ObjectName(k)}
	return kubestore.New(c, name, layout{key: k, field: field, validate: !opts.SkipValidation}, opts.Options)
}

// ObjectName is the StrategyState of k: "<strategy>-<exchange>-<symbol>" (see
// names.ObjectName and SymbolPart).
func ObjectName(k Key) string {
	return names.ObjectName(k.StrategyName, k.ExchangeName, names.SymbolPart(k.Symbol))
}

// LegacyObjectName is the name ObjectName gave before names were unambiguous (see
// names.LegacyObjectName), to find an earlier version's objects.
func LegacyObjectName(k Key) string {
	return names.LegacyObjectName(k.StrategyName, k.ExchangeName, k.Symbol)
}

// Labels are the labels of the StrategyState of k.
func Labels(k Key) map[string]string {
	return map[string]string{
		names.LabelStrategy: names.LabelValue(k.StrategyName),
		names.LabelExchange: names.LabelValue(k.ExchangeName),
		names.LabelSymbol:   names.LabelValue(k.Symbol),
	}
}

// NewObject is the empty StrategyState of k, as Init or the operator creates it.
func NewObject(name types.NamespacedName, k Key) *v1.StrategyState {
	st := &v1.StrategyState{
		ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace, Labels: Labels(k)},
		Spec: v1.StrategyStateSpec{
			StrategyName: k.StrategyName, ExchangeName: k.ExchangeName, Symbol: k.Symbol,
		},
	}
	derive(&st.Spec)
	return st
}

type layout struct {
	key      Key
	field    Field
	validate bool
}

var (
	_ kubestore.Layout = layout{}
	_ kubestore.Owner  = layout{}
	_ kubestore.Sizer  = layout{}
)

// Size is the StrategyState's spec as JSON against MaxSpecBytes.
func (layout) Size(obj client.Object) (used, limit int) {
	data, _ := json.Marshal(obj.(*v1.StrategyState).Spec)
	return len(data), MaxSpecBytes
}

// Owns refuses a StrategyState of another strategy, exchange or symbol.
func (l layout) Owns(obj client.Object) error {
	spec := obj.(*v1.StrategyState).Spec
	if spec.StrategyName != l.key.StrategyName || spec.ExchangeName != l.key.ExchangeName || spec.Symbol != l.key.Symbol {
		return fmt.Errorf("it holds %s/%s/%s, this store is for %s/%s/%s", spec.StrategyName, spec.ExchangeName,
			spec.Symbol, l.key.StrategyName, l.key.ExchangeName, l.key.Symbol)
	}
	return nil
}

func (layout) Name() string { return "strategystate" }

func (layout) New() client.Object { return &v1.StrategyState{} }

func (l layout) Create(name types.NamespacedName) client.Object { return NewObject(name, l.key) }

// errKey says which keys a single-value field takes.
func (l layout) errKey(key string) error {
	want := l.key.Symbol
	if l.field == FieldSnapshot {
		want = SnapshotKey
	}
	return fmt.Errorf("%w: %q: the %s field of a StrategyState holds only key %q",
		driver.ErrInvalidKey, key, l.field, want)
}

func (l layout) single(st *v1.StrategyState) **v1.Signal {
	if l.field == FieldSignal {
		return &st.Spec.Signal
	}
	return &st.Spec.ScheduledSignal
}

func marshal(v any) ([]byte, bool) {
	data, err := json.Marshal(v)
	return data, err == nil
}

func (l layout) Get(obj client.Object, key string) ([]byte, bool) {
	st := obj.(*v1.StrategyState)
	switch l.field {
	case FieldSignal, FieldSchedule:
		if s := *l.single(st); key == l.key.Symbol && s != nil {
			return marshal(s)
		}
	case FieldSnapshot:
		if key == SnapshotKey && st.Spec.Snapshot != nil {
			return marshal(st.Spec.Snapshot)
		}
	case FieldPartial:
		if d, ok := st.Spec.Partial[key]; ok {
			return marshal(d)
		}
	case FieldBreakeven:
		if d, ok := st.Spec.Breakeven[key]; ok {
			return marshal(d)
		}
	}
	return nil, false
}

// decode reads value into a fresh T as encoding/json does (not strictly): a type that
// keeps unknown fields (in its Extra) keeps them, the others ignore them, and a value of
// the wrong shape is an error naming the field.
func decode[T any](field Field, value []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(value))
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %s: %v", driver.ErrInvalidValue, field, err)
	}
	return v, nil
}

func (l layout) Put(obj client.Object, key string, value []byte) error {
	st := obj.(*v1.StrategyState)
	next := st.Spec.DeepCopy()
	if err := l.set(next, key, value); err != nil {
		return err
	}
	derive(next)
	if data, _ := json.Marshal(next); len(data) > MaxSpecBytes {
		return fmt.Errorf("%w: the StrategyState would hold %d bytes, past its %d-byte limit",
			driver.ErrTooLarge, len(data), MaxSpecBytes)
	}
	st.Spec = *next
	labelPhase(st)
	return nil
}

func (l layout) set(spec *v1.StrategyStateSpec, key string, value []byte) error {
	switch l.field {
	case FieldSignal, FieldSchedule:
		if key != l.key.Symbol {
			return l.errKey(key)
		}
		s, err := decode[*v1.Signal](l.field, value)
		if err != nil {
			return err
		}
		if err := l.check(s); err != nil {
			return fmt.Errorf("%w: %s: %w", driver.ErrInvalidValue, l.field, err)
		}
		if l.field == FieldSignal {
			spec.Signal = s
		} else {
			spec.ScheduledSignal = s
		}
	case FieldSnapshot:
		if key != SnapshotKey {
			return l.errKey(key)
		}
		s, err := decode[*v1.StrategySnapshot](l.field, value)
		if err != nil {
			return err
		}
		spec.Snapshot = s
	case FieldPartial:
		d, err := decode[v1.PartialData](l.field, value)
		if err != nil {
			return err
		}
		if spec.Partial == nil {
			spec.Partial = map[string]v1.PartialData{}
		}
		spec.Partial[key] = d
	case FieldBreakeven:
		d, err := decode[v1.BreakevenData](l.field, value)
		if err != nil {
			return err
		}
		if spec.Breakeven == nil {
			spec.Breakeven = map[string]v1.BreakevenData{}
		}
		spec.Breakeven[key] = d
	}
	return nil
}

// check applies the rules the API server applies to a signal row, in Go, so that a bad
// row is refused with every broken rule named before anything is sent.
func (l layout) check(s *v1.Signal) error {
	if s == nil || !l.validate {
		return nil
	}
	if err := v1.ValidateSignal(s, v1.SignalLimits{}, nil); err != nil {
		return err
	}
	if s.Symbol != l.key.Symbol || s.StrategyName != l.key.StrategyName || s.ExchangeName != l.key.ExchangeName {
		return fmt.Errorf("%w %q: it belongs to %s/%s/%s, not to this StrategyState's %s/%s/%s", v1.ErrInvalidSignal,
			s.ID, s.StrategyName, s.ExchangeName, s.Symbol, l.key.StrategyName, l.key.ExchangeName, l.key.Symbol)
	}
	return nil
}

func (l layout) Delete(obj client.Object, key string) {
	st := obj.(*v1.StrategyState)
	switch l.field {
	case FieldSignal, FieldSchedule:
		if key == l.key.Symbol {
			*l.single(st) = nil
		}
	case FieldSnapshot:
		if key == SnapshotKey {
			st.Spec.Snapshot = nil
		}
	case FieldPartial:
		delete(st.Spec.Partial, key)
	case FieldBreakeven:
		delete(st.Spec.Breakeven, key)
	}
	derive(&st.Spec)
	labelPhase(st)
}

// derive sets what a StrategyState shows of its signals (phase, display) from them.
func derive(spec *v1.StrategyStateSpec) {
	spec.Phase = v1.PhaseFor(spec.Signal, spec.ScheduledSignal)
	spec.Display = v1.DisplayFor(spec.Signal, spec.ScheduledSignal)
}

// labelPhase sets the StrategyState's phase as its label names.LabelPhase, which the
// operator's metadata watch sees. Only writes set it (a new object has none): an object
// without it is one only an earlier runner, which keeps no such label, has written.
func labelPhase(st *v1.StrategyState) {
	if st.Labels == nil {
		st.Labels = map[string]string{}
	}
	st.Labels[names.LabelPhase] = string(st.Spec.Phase)
}

// Quarantine finds nothing: the API server keeps every field to its schema.
func (layout) Quarantine(client.Object) []string { return nil }
