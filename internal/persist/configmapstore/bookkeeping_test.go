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
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/strategyops/strategy-operator/internal/persist/configmapstore"
	"github.com/strategyops/strategy-operator/internal/persist/kubestore"
	"github.com/strategyops/strategy-operator/pkg/store/driver"
)

// TestBookkeepingFollowsTheKeys: the driver's bookkeeping shrinks back when keys are
// deleted, and the key count and fill it records for the operator follow the data.
func TestBookkeepingFollowsTheKeys(t *testing.T) {
	ctx := t.Context()
	name := types.NamespacedName{Namespace: env.Namespace(ctx, t), Name: "bookkeeping"}
	d := configmapstore.New(env.Client, name, configmapstore.Options{Options: kubestore.Options{Create: true}})
	if _, err := d.Init(ctx, true); err != nil {
		t.Fatal(err)
	}
	annotations := func() map[string]string {
		var cm corev1.ConfigMap
		if err := env.Client.Get(ctx, name, &cm); err != nil {
			t.Fatal(err)
		}
		return cm.Annotations
	}
	put := func(key string, value []byte) {
		if _, err := d.Put(ctx, key, value, driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	put("first", []byte(`{}`))
	small := len(annotations()[kubestore.AnnotationEntries])
	for i := range 200 {
		put(fmt.Sprintf("signal-%d", i), []byte(`{}`))
	}
	if got := annotations()[kubestore.AnnotationKeys]; got != "201" {
		t.Fatalf("%s = %s, want 201", kubestore.AnnotationKeys, got)
	}
	for i := range 200 {
		if err := d.Delete(ctx, fmt.Sprintf("signal-%d", i), driver.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	ann := annotations()
	if got := len(ann[kubestore.AnnotationEntries]); got != small || ann[kubestore.AnnotationKeys] != "1" {
		t.Fatalf("after deleting 200 keys the bookkeeping holds %d bytes and counts %s keys, want %d bytes and 1",
			got, ann[kubestore.AnnotationKeys], small)
	}
	if u, _ := strconv.Atoi(ann[kubestore.AnnotationUsage]); u > 2 { // the record of recent writes, a few KiB
		t.Fatalf("%s = %d%% for a nearly empty ConfigMap", kubestore.AnnotationUsage, u)
	}
	// 80 % of the data limit in one value.
	put("big", []byte(`"`+strings.Repeat("x", configmapstore.MaxDataBytes*8/10)+`"`))
	if u, _ := strconv.Atoi(annotations()[kubestore.AnnotationUsage]); u != 80 {
		t.Fatalf("%s = %d%%, want 80", kubestore.AnnotationUsage, u)
	}
}
