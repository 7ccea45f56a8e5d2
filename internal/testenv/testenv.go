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

// Package testenv starts the real kube-apiserver and etcd that the project's tests run
// against (built from source by hack/build-control-plane.sh) and gives each test a fresh
// namespace.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/scheme"
)

// RepoRoot is the root of this repository.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testenv: cannot locate the source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BinaryDir is the folder holding etcd, kube-apiserver and kubectl: KUBEBUILDER_ASSETS when
// set, else the first folder under bin/k8s (the layout `make control-plane` writes).
func BinaryDir() string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	base := filepath.Join(RepoRoot(), "bin", "k8s")
	entries, err := os.ReadDir(base)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if e.IsDir() {
			return filepath.Join(base, e.Name())
		}
	}
	return ""
}

// Scheme knows the built-in kinds and this project's kinds.
func Scheme() *k8sruntime.Scheme { return scheme.New() }

// Environment is a running API server with the project's CRDs installed.
type Environment struct {
	Env    *envtest.Environment
	Config *rest.Config
	Client client.Client

	// users makes Kubeconfig add one user at a time: envtest's certificate authority is not
	// safe for concurrent use.
	users sync.Mutex
}

// New returns an environment that has not been started, with the project's CRDs and
// binaries configured; callers may adjust it (for example to enable authorization).
func New() *envtest.Environment {
	// controller-runtime complains, with a stack trace, about a logger never set.
	ctrllog.SetLogger(logr.Discard())
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: BinaryDir(),
	}
}

// Start starts env and connects a client to it.
func Start(env *envtest.Environment) (*Environment, error) {
	if env.BinaryAssetsDirectory == "" {
		return nil, fmt.Errorf("no control plane binaries: run 'make control-plane' or set KUBEBUILDER_ASSETS")
	}
	// A test binary killed by its timeout takes etcd and kube-apiserver with it.
	if err := childproc.Envtest(env, env.BinaryAssetsDirectory); err != nil {
		return nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the test control plane from %s: %w", env.BinaryAssetsDirectory, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Environment{Env: env, Config: cfg, Client: c}, nil
}

// Stop stops the control plane.
func (e *Environment) Stop() error { return e.Env.Stop() }

// Kubeconfig writes a kubeconfig file for a new administrator of the control plane, for a
// child process, and returns its path.
func (e *Environment) Kubeconfig(t testing.TB) string {
	t.Helper()
	e.users.Lock()
	admin, err := e.Env.AddUser(envtest.User{Name: "test-admin", Groups: []string{"system:masters"}}, nil)
	e.users.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// LogRecords are the JSON log lines in log whose message is msg, each as its fields;
// other lines are skipped.
func LogRecords(log, msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(log) {
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) == nil && fields["msg"] == msg {
			out = append(out, fields)
		}
	}
	return out
}

var nsCounter atomic.Int64

// Namespace creates a fresh namespace for one test and returns its name.
func (e *Environment) Namespace(ctx context.Context, t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("test-%d-%d", os.Getpid()%10000, nsCounter.Add(1)),
	}}
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// RunMain is a package's TestMain: it starts the control plane into *env, runs the
// package's tests and stops it.
func RunMain(m *testing.M, env **Environment) {
	e, err := Start(New())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	// An API server or etcd started again by StartAPIServer or StartEtcd keeps the first
	// one's certificates or data, which only the first one's stop would have removed.
	certs, data := e.Env.ControlPlane.GetAPIServer().CertDir, e.Env.ControlPlane.Etcd.DataDir
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	_ = os.RemoveAll(certs)
	_ = os.RemoveAll(data)
	os.Exit(code)
}

// TB is the part of testing.TB (and of Ginkgo's GinkgoT) the fixture helpers use.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Fixture returns the file test/fixtures/backtest-kit/<name>: values backtest-kit 19.5.0
// wrote, indented after they were captured.
func Fixture(t TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "test", "fixtures", "backtest-kit", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FixtureAsWritten is Fixture compacted: the bytes backtest-kit wrote (JSON.stringify).
func FixtureAsWritten(t TB, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, Fixture(t, name)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FixtureValue decodes the fixture name into a T.
func FixtureValue[T any](t TB, name string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(Fixture(t, name), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// SeedEnv replays a randomized test: set it to the seed the failed run logged.
const SeedEnv = "STRATEGYOPS_TEST_SEED"

// Seed is the seed of a randomized test: SeedEnv when set, else the clock. It is logged,
// so that a failure can be replayed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
	}
	t.Logf("random seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return seed
}
