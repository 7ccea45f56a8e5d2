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

package configmapstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// rawLayout keeps each key as a ConfigMap data key as it is, without the escaping of the
// real layout, so that the API server itself refuses a key it finds invalid.
type rawLayout struct{}

func (rawLayout) Name() string       { return "raw-configmap" }
func (rawLayout) New() client.Object { return &corev1.ConfigMap{} }
func (rawLayout) Create(name types.NamespacedName) client.Object {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name.Name, Namespace: name.Namespace}}
}
func (rawLayout) Get(obj client.Object, key string) ([]byte, bool) {
	v, ok := obj.(*corev1.ConfigMap).Data[key]
	return []byte(v), ok
}
func (rawLayout) Put(obj client.Object, key string, value []byte) error {
	cm := obj.(*corev1.ConfigMap)
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[key] = string(value)
	return nil
}
func (rawLayout) Delete(obj client.Object, key string) { delete(obj.(*corev1.ConfigMap).Data, key) }
func (rawLayout) Quarantine(client.Object) []string    { return nil }

// gatedClient holds the first update until gate is closed, so that the operations that
// arrive meanwhile are committed together in the next one, and records the data keys of
// every update it sends.
type gatedClient struct {
	client.Client
	entered, gate chan struct{}

	mu      sync.Mutex
	updates [][]string
}

func (c *gatedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.mu.Lock()
	c.updates = append(c.updates, slices.Sorted(maps.Keys(obj.(*corev1.ConfigMap).Data)))
	first := len(c.updates) == 1
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.gate
	}
	return c.Client.Update(ctx, obj, opts...)
}

// TestRefusedOperationFailsAlone: an update carrying several callers' writes is refused by
// the API server because of one of them; only that caller gets the refusal, the others'
// writes are stored.
func TestRefusedOperationFailsAlone(t *testing.T) {
	ctx := t.Context()
	gc := &gatedClient{Client: env.Client, entered: make(chan struct{}), gate: make(chan struct{})}
	name := types.NamespacedName{Namespace: env.Namespace(ctx, t), Name: "isolation"}
	d := kubestore.New(gc, name, rawLayout{}, kubestore.Options{Create: true})
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}

	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	put := func(key string) {
		wg.Go(func() {
			_, err := d.Put(ctx, key, []byte(`{}`), driver.Precondition{})
			mu.Lock()
			errs[key] = err
			mu.Unlock()
		})
	}
	put("warm-up")
	<-gc.entered // the warm-up's update is held: the next writes queue behind it
	const bad = "not a valid key!"
	stored := []string{"warm-up", "good-1", "good-2", "good-3", "good-4", "good-5"} // what must be stored
	good := stored[1:]
	for _, k := range good {
		put(k)
	}
	put(bad)
	time.Sleep(300 * time.Millisecond) // let every write join the next batch
	close(gc.gate)
	wg.Wait()

	batched := slices.ContainsFunc(gc.updates, func(keys []string) bool {
		return slices.Contains(keys, bad) && !slices.ContainsFunc(good, func(k string) bool { return !slices.Contains(keys, k) })
	})
	if !batched {
		t.Fatalf("the writes were never carried in one update (updates: %v); the test did not test isolation", gc.updates)
	}
	for _, k := range stored {
		if errs[k] != nil {
			t.Errorf("valid write %q failed with the refused one: %v", k, errs[k])
		}
	}
	if !errors.Is(errs[bad], driver.ErrInvalidValue) || !strings.Contains(fmt.Sprint(errs[bad]), bad) {
		t.Errorf("the invalid write got %v, want driver.ErrInvalidValue naming its key", errs[bad])
	}
	keys, err := d.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(keys, stored) {
		t.Errorf("stored keys %v, want %v", keys, stored)
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
