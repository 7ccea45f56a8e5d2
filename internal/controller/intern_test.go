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

package controller

import (
	"strings"
	"testing"
	"unsafe"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// fresh is a copy of s in memory of its own, as decoding an object makes it.
func fresh(s string) string { return strings.Clone(s) }

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestInternerSharesOneCopyAndStaysBounded(t *testing.T) {
	in := newInterner(2, 8)
	a := in.intern(fresh("scale"))
	if b := in.intern(fresh("scale")); b != "scale" || !same(a, b) {
		t.Fatalf("a second %q is not the first one's copy", b)
	}
	long := fresh("a-string-past-the-length")
	if got := in.intern(long); !same(got, long) || len(in.seen) != 1 {
		t.Fatalf("a string past maxLen was kept (%d kept)", len(in.seen))
	}
	in.intern(fresh("two"))
	third := fresh("three")
	if got := in.intern(third); !same(got, third) || len(in.seen) != 2 {
		t.Fatalf("past max strings the interner grew to %d", len(in.seen))
	}
	if got := in.intern(fresh("three")); same(got, third) {
		t.Fatal("a string seen when the interner was full was kept")
	}
}

func TestCompactSharesTheStringsOfCachedObjects(t *testing.T) {
	role := func() *rbacv1.Role {
		return &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: fresh("trading"), Name: fresh("s1-runner"),
				Labels:          map[string]string{fresh(LabelManagedBy): fresh(ManagedBy), LabelStrategyObject: fresh("s1-own-value")},
				Annotations:     map[string]string{fresh("note"): fresh("kept as it is")},
				ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: fresh("trading.strategyops.dev/v1alpha1"), Kind: fresh("Strategy")}}},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{fresh("coordination.k8s.io")}, Resources: []string{fresh("leases")},
				Verbs: []string{fresh("get"), fresh("update")}}},
		}
	}
	a, b := role(), role()
	for _, r := range []*rbacv1.Role{a, b} {
		if _, err := compact(r); err != nil {
			t.Fatal(err)
		}
	}
	if b.ManagedFields != nil {
		t.Error("managed fields were kept")
	}
	key := func(m map[string]string) string {
		for k := range m {
			if k == LabelManagedBy {
				return k
			}
		}
		return ""
	}
	for what, pair := range map[string][2]string{
		"namespace":   {a.Namespace, b.Namespace},
		"label key":   {key(a.Labels), key(b.Labels)},
		"label value": {a.Labels[LabelManagedBy], b.Labels[LabelManagedBy]},
		"owner kind":  {a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind},
		"verb":        {a.Rules[0].Verbs[1], b.Rules[0].Verbs[1]},
		"API group":   {a.Rules[0].APIGroups[0], b.Rules[0].APIGroups[0]},
	} {
		if !same(pair[0], pair[1]) {
			t.Errorf("two cached Roles each keep their own %s %q", what, pair[0])
		}
	}
	if _, kept := cachedStrings.seen["s1-own-value"]; kept || same(a.Labels[LabelStrategyObject], b.Labels[LabelStrategyObject]) {
		t.Error("a label value of the object's own (its Strategy's name) went into the interner")
	}
	if a.Annotations["note"] != "kept as it is" || a.Name != "s1-runner" {
		t.Errorf("compact changed what it keeps: %v %q", a.Annotations, a.Name)
	}
}

func TestCompactSharesAStrategysRecurringStrings(t *testing.T) {
	strategy := func() *v1.Strategy {
		return &v1.Strategy{
			Spec: v1.StrategySpec{ExchangeName: fresh("binance"), Symbols: []string{fresh("BTCUSDT")}},
			Status: v1.StrategyStatus{Conditions: []metav1.Condition{{Type: fresh(v1.ConditionReady),
				Status: metav1.ConditionStatus(fresh("True")), Reason: fresh("Running"), Message: fresh("pod s1-runner runs")}}},
		}
	}
	a, b := strategy(), strategy()
	for _, s := range []*v1.Strategy{a, b} {
		if _, err := compact(s); err != nil {
			t.Fatal(err)
		}
	}
	ca, cb := a.Status.Conditions[0], b.Status.Conditions[0]
	if !same(a.Spec.ExchangeName, b.Spec.ExchangeName) || !same(a.Spec.Symbols[0], b.Spec.Symbols[0]) ||
		!same(ca.Reason, cb.Reason) || !same(string(ca.Status), string(cb.Status)) || !same(ca.Type, cb.Type) {
		t.Error("two cached Strategies each keep their own exchange, symbol or condition strings")
	}
	if ca.Message != "pod s1-runner runs" {
		t.Errorf("compact changed a condition's message: %q", ca.Message)
	}
}
