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

// Package configmapstore keeps a store in one ConfigMap: each entity a data key holding its
// JSON document. The safety rules (per-key revisions, compare-and-swap, retries, group
// commit, fencing, read-your-writes) are package kubestore's; this package maps keys onto
// ConfigMap data and names the ConfigMaps of store contexts.
package configmapstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/keyname"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

const (
	// MaxDataBytes is the API server's limit on a ConfigMap's data (keys and values).
	MaxDataBytes = 1 << 20

	// quarantinePrefix marks data keys holding values found corrupt at Init. Encoded keys
	// never start with it: '_' is always followed by two hex digits or 'h'.
	quarantinePrefix = "_q."
	hashedPrefix     = "_h"
)

// Options configures a ConfigMap store.
type Options struct {
	kubestore.Options
	// Labels are set on the ConfigMap when the driver creates it.
	Labels map[string]string
	// Context names the store context exactly. It is recorded on the ConfigMap when the
	// driver creates it, and a ConfigMap recording another context is refused
	// (driver.ErrNotOwned): two contexts whose names clean up alike never share data.
	Context string
}

// AnnotationContext records the store context a ConfigMap holds.
const AnnotationContext = "trading.strategyops.dev/context"

// New returns a driver for the ConfigMap name. c must read from the API server directly.
func New(c client.Client, name types.NamespacedName, opts Options) *kubestore.Driver {
	return kubestore.New(c, name, layout{labels: opts.Labels, context: opts.Context}, opts.Options)
}

// EncodeKey maps an entity id to a valid ConfigMap data key (see keyname; '_' escapes,
// "_h" marks hashed keys).
func EncodeKey(key string) string { return dataKeys.Encode(key) }

var dataKeys = keyname.Escaper{Escape: '_', Hashed: hashedPrefix}

type layout struct {
	labels  map[string]string
	context string
}

var (
	_ kubestore.Layout = layout{}
	_ kubestore.Owner  = layout{}
	_ kubestore.Sizer  = layout{}
)

// Size is the ConfigMap's data, keys and values, against the API server's limit.
func (layout) Size(obj client.Object) (used, limit int) {
	return dataSize(obj.(*corev1.ConfigMap)), MaxDataBytes
}

// Owns refuses a ConfigMap that records another store context.
func (l layout) Owns(obj client.Object) error {
	if got := obj.GetAnnotations()[AnnotationContext]; l.context != "" && got != "" && got != l.context {
		return fmt.Errorf("it holds store context %q, this store is %q", got, l.context)
	}
	return nil
}

func (layout) Name() string { return "configmap" }

func (layout) New() client.Object { return &corev1.ConfigMap{} }

func (l layout) Create(name types.NamespacedName) client.Object {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace, Labels: l.labels}}
	if l.context != "" {
		cm.Annotations = map[string]string{AnnotationContext: l.context}
	}
	return cm
}

func (layout) Get(obj client.Object, key string) ([]byte, bool) {
	v, ok := obj.(*corev1.ConfigMap).Data[EncodeKey(key)]
	return []byte(v), ok
}

func dataSize(cm *corev1.ConfigMap) int {
	n := 0
	for k, v := range cm.Data {
		n += len(k) + len(v)
	}
	for k, v := range cm.BinaryData {
		n += len(k) + len(v)
	}
	return n
}

func (layout) Put(obj client.Object, key string, value []byte) error {
	cm := obj.(*corev1.ConfigMap)
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	enc := EncodeKey(key)
	old, had := cm.Data[enc]
	cm.Data[enc] = string(value)
	if size := dataSize(cm); size > MaxDataBytes {
		if had {
			cm.Data[enc] = old
		} else {
			delete(cm.Data, enc)
		}
		return fmt.Errorf("%w: %d bytes would take the ConfigMap to %d bytes, past its %d-byte limit",
			driver.ErrTooLarge, len(value), size, MaxDataBytes)
	}
	return nil
}

func (layout) Delete(obj client.Object, key string) {
	delete(obj.(*corev1.ConfigMap).Data, EncodeKey(key))
}

// Quarantine moves values that are not valid JSON to "_q.<time>.<key>" data keys, where a
// person can still find them.
func (layout) Quarantine(obj client.Object) []string {
	cm := obj.(*corev1.ConfigMap)
	entries := map[string]string{} // data key -> store key
	var book map[string]json.RawMessage
	_ = json.Unmarshal([]byte(cm.Annotations[kubestore.AnnotationEntries]), &book)
	for k := range book {
		entries[EncodeKey(k)] = k
	}
	var moved []string
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for enc, v := range cm.Data {
		if strings.HasPrefix(enc, quarantinePrefix) || json.Valid([]byte(v)) {
			continue
		}
		cm.Data[quarantinePrefix+stamp+"."+enc] = v
		delete(cm.Data, enc)
		if k, ok := entries[enc]; ok {
			moved = append(moved, k)
		} else {
			moved = append(moved, enc)
		}
	}
	return moved
}
