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

// Package policy tests the admission policies in config/policy on a real API server, as
// the users they concern.
package policy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var env *testenv.Environment

func TestMain(m *testing.M) { testenv.RunMain(m, &env) }

// apply creates every object in the YAML files given, relative to the repository root.
func apply(ctx context.Context, t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := env.Client.Create(ctx, &obj); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("%s: %s %s: %v", f, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// user is a client for a new user of the API server, bound in ns to the Strategy editor
// role and to the extra rules given.
func user(ctx context.Context, t *testing.T, ns, name string, extra ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	u, err := env.Env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bind := func(kind, role string) {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: name, APIGroup: rbacv1.GroupName}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}}
		if err := env.Client.Create(ctx, rb); err != nil {
			t.Fatal(err)
		}
	}
	bind("ClusterRole", "strategy-editor-role")
	if len(extra) > 0 {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-extra"}, Rules: extra}
		if err := env.Client.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		bind("Role", role.Name)
	}
	c, err := client.New(u.Config(), client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func strategyWithEnv(ns, name string, env ...corev1.EnvVar) *v1.Strategy {
	return &v1.Strategy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.StrategySpec{ExchangeName: "binance", Symbols: []string{"BTCUSDT"}, Env: env}}
}

func secretEnv(secret string) corev1.EnvVar {
	return corev1.EnvVar{Name: "DB", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "url"}}}
}

func configMapEnv(cm string) corev1.EnvVar {
	return corev1.EnvVar{Name: "SETTINGS", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: "mode"}}}
}

// TestNoConfusedDeputy: a user who may edit Strategies, but not read a Secret or a
// ConfigMap, cannot make the operator hand either to a runner; a user who may read them
// can; the operator's own updates of a Strategy are not checked again.
func TestNoConfusedDeputy(t *testing.T) {
	ctx := context.Background()
	apply(ctx, t, "config/rbac/strategy_editor_role.yaml", "config/policy/strategy_references_policy.yaml")
	ns := env.Namespace(ctx, t)
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-creds"},
			StringData: map[string]string{"url": "x"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"},
			Data: map[string]string{"mode": "x"}},
	} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	editor := user(ctx, t, ns, "editor")
	reader := user(ctx, t, ns, "reader", rbacv1.PolicyRule{APIGroups: []string{""},
		Resources: []string{"secrets", "configmaps"}, ResourceNames: []string{"db-creds", "settings"},
		Verbs: []string{"get"}})

	// The policy takes effect once the API server has loaded it.
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = editor.Create(ctx, strategyWithEnv(ns, "sneaky", secretEnv("db-creds")))
		if err != nil || time.Now().After(deadline) {
			break
		}
		if err := env.Client.Delete(ctx, strategyWithEnv(ns, "sneaky")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const secretRefused = "only Secrets you may read (get) yourself; it references db-creds"
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), secretRefused) {
		t.Fatalf("an editor who cannot read Secret db-creds put it in a Strategy: got %v", err)
	}
	err = editor.Create(ctx, strategyWithEnv(ns, "sneaky-cm", configMapEnv("settings")))
	const configMapRefused = "only ConfigMaps you may read (get) yourself; it references settings"
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), configMapRefused) {
		t.Fatalf("an editor who cannot read ConfigMap settings put it in a Strategy: got %v", err)
	}
	plain := strategyWithEnv(ns, "plain", corev1.EnvVar{Name: "MODE", Value: "paper"})
	if err := editor.Create(ctx, plain); err != nil {
		t.Fatalf("the editor's Strategy without references was refused: %v", err)
	}
	// Nor can the editor add a reference later.
	plain.Spec.Env = append(plain.Spec.Env, secretEnv("db-creds"))
	if err := editor.Update(ctx, plain); !apierrors.IsForbidden(err) {
		t.Fatalf("the editor added Secret db-creds to a Strategy: got %v", err)
	}

	// Nor name it as a database backend's URL.
	redisBacked := strategyWithEnv(ns, "sneaky-redis")
	redisBacked.Spec.Persistence = v1.PersistenceSpec{Backend: v1.BackendRedis,
		Redis: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "db-creds", Key: "url"}}}
	err = editor.Create(ctx, redisBacked)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), secretRefused) {
		t.Fatalf("an editor who cannot read Secret db-creds named it as the Redis URL: got %v", err)
	}
	redisBacked.ResourceVersion = ""
	if err := reader.Create(ctx, redisBacked); err != nil {
		t.Fatalf("a user who may read db-creds could not name it as the Redis URL: %v", err)
	}

	// Nor as a MongoDB URL; and a replica's URL is checked as the backend's (the reader may
	// read db-creds, not replica-creds).
	for _, c := range []struct {
		name, secret string
		as           client.Client
		persistence  v1.PersistenceSpec
	}{
		{"sneaky-mongo", "db-creds", editor, v1.PersistenceSpec{Backend: v1.BackendMongoDB,
			MongoDB: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "db-creds", Key: "url"}}}},
		{"sneaky-replica", "replica-creds", reader, v1.PersistenceSpec{Backend: v1.BackendRedis,
			Redis: &v1.DatabasePersistence{URLSecretRef: v1.SecretKeyRef{Name: "db-creds", Key: "url"}},
			Replicas: []v1.StoreReplica{{Name: "copy", Backend: v1.BackendPostgreSQL,
				URLSecretRef: v1.SecretKeyRef{Name: "replica-creds", Key: "url"}}}}},
	} {
		sneaky := strategyWithEnv(ns, c.name)
		sneaky.Spec.Persistence = c.persistence
		if err := c.as.Create(ctx, sneaky); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), c.secret) {
			t.Fatalf("%s: a user who cannot read Secret %s named it: got %v", c.name, c.secret, err)
		}
	}

	allowed := strategyWithEnv(ns, "allowed", secretEnv("db-creds"), configMapEnv("settings"))
	if err := reader.Create(ctx, allowed); err != nil {
		t.Fatalf("a user who may read db-creds and settings was refused: %v", err)
	}
	// The operator (here the administrator, who cannot be refused anyway) and the editor
	// may still change what is not the spec, such as labels, of a Strategy that references
	// what the editor cannot read.
	allowed.Labels = map[string]string{"team": "quant"}
	if err := editor.Update(ctx, allowed); err != nil {
		t.Fatalf("updating a label of a Strategy was checked as if its references changed: %v", err)
	}
}

// TestOwnCodeNeedsPodCreate: a Strategy that names an image or a command runs code of its
// author's choosing with the runner's ServiceAccount, so setting or changing either, or the
// environment or arguments that steer it, needs the right to create pods in the namespace;
// an editor without it may still create and change Strategies on the default runner, and
// change the symbols of one a pod creator set up.
func TestOwnCodeNeedsPodCreate(t *testing.T) {
	ctx := context.Background()
	apply(ctx, t, "config/rbac/strategy_editor_role.yaml", "config/policy/strategy_references_policy.yaml")
	ns := env.Namespace(ctx, t)
	editor := user(ctx, t, ns, "code-editor")
	podMaker := user(ctx, t, ns, "pod-maker", rbacv1.PolicyRule{APIGroups: []string{""},
		Resources: []string{"pods"}, Verbs: []string{"create"}})
	const refused = "spec.image, spec.command, spec.env, spec.args: a Strategy that names an image or a command " +
		"runs code of your choosing"

	withImage := strategyWithEnv(ns, "own-image")
	withImage.Spec.Image = "registry.example.com/attacker:latest"
	// The policy takes effect once the API server has loaded it.
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		err = editor.Create(ctx, withImage.DeepCopy())
		if err != nil || time.Now().After(deadline) {
			break
		}
		if err := env.Client.Delete(ctx, withImage.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refused) {
		t.Fatalf("an editor who may not create pods named an image of their own: got %v", err)
	}
	withCommand := strategyWithEnv(ns, "own-command")
	withCommand.Spec.Image = "node-bot:dev"
	withCommand.Spec.Command = []string{"/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"}
	if err := editor.Create(ctx, withCommand.DeepCopy()); !apierrors.IsForbidden(err) ||
		!strings.Contains(err.Error(), refused) {
		t.Fatalf("an editor who may not create pods named a command: got %v", err)
	}

	// On the default runner the editor may create and change Strategies...
	plain := strategyWithEnv(ns, "plain-runner")
	if err := editor.Create(ctx, plain); err != nil {
		t.Fatalf("the editor's Strategy on the default runner was refused: %v", err)
	}
	// ...its environment and arguments included...
	plain.Spec.Env = []corev1.EnvVar{{Name: "MODE", Value: "paper"}}
	plain.Spec.Args = []string{"--strategy=momentum"}
	if err := editor.Update(ctx, plain); err != nil {
		t.Fatalf("the editor could not set the environment of a Strategy on the default runner: %v", err)
	}
	// ...but not add an image later.
	edited := plain.DeepCopy()
	edited.Spec.Image = "registry.example.com/attacker:latest"
	if err := editor.Update(ctx, edited); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refused) {
		t.Fatalf("the editor added an image to a Strategy: got %v", err)
	}

	// A user who may create pods may name both; the editor may then change the rest of
	// that Strategy, but neither its command nor its image.
	bot := strategyWithEnv(ns, "bot")
	bot.Spec.Image, bot.Spec.Command = "node-bot:dev", []string{"node", "bot.js"}
	if err := podMaker.Create(ctx, bot); err != nil {
		t.Fatalf("a user who may create pods could not name an image and a command: %v", err)
	}
	bot.Spec.Symbols = append(bot.Spec.Symbols, "ETHUSDT")
	if err := editor.Update(ctx, bot); err != nil {
		t.Fatalf("the editor could not add a symbol to a Strategy whose image and command stay: %v", err)
	}
	for field, change := range map[string]func(*v1.Strategy){
		"command": func(s *v1.Strategy) { s.Spec.Command = []string{"node", "other.js"} },
		"image":   func(s *v1.Strategy) { s.Spec.Image = "node-bot:other" },
		// Code of the editor's own, through the bot's runtime.
		"env": func(s *v1.Strategy) {
			s.Spec.Env = []corev1.EnvVar{{Name: "NODE_OPTIONS", Value: "--import=data:text/javascript,process.exit(7)"}}
		},
		"args": func(s *v1.Strategy) { s.Spec.Args = []string{"--option=x"} },
	} {
		edited := bot.DeepCopy()
		change(edited)
		if err := editor.Update(ctx, edited); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refused) {
			t.Fatalf("the editor changed a Strategy's %s: got %v", field, err)
		}
	}
	bot.Spec.Command = []string{"node", "other.js"}
	if err := podMaker.Update(ctx, bot); err != nil {
		t.Fatalf("a user who may create pods could not change the command: %v", err)
	}
}
