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

// Package localcluster runs a real control plane on this machine: etcd, kube-apiserver and
// kube-controller-manager (for garbage collection and namespace deletion), with a
// kubeconfig for an administrator, the real kubectl to talk to them, and a kubelet that
// runs pods as local processes. The e2e suite and `make run-local` both use it.
package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/strategyops/strategy-operator/internal/childproc"
	"github.com/strategyops/strategy-operator/internal/podprocess"
)

// Cluster is a running control plane.
type Cluster struct {
	env         *envtest.Environment
	dir, assets string
	controllers *exec.Cmd
	// controllersExited is closed once kube-controller-manager has exited (and been reaped).
	controllersExited chan struct{}
	// Config is an administrator's client configuration.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same administrator.
	Kubeconfig string
	// KubectlPath is the kubectl binary built with the control plane.
	KubectlPath string
}

// controllers are the kube-controller-manager controllers the local cluster runs: owner
// references and namespace deletion work as on a real cluster.
const controllers = "garbage-collector-controller,namespace-controller,deployment-controller,replicaset-controller"

// Start starts etcd, kube-apiserver and kube-controller-manager from the binaries in
// assets and writes an administrator's kubeconfig and the controller manager's log into dir.
func Start(assets, dir string) (*Cluster, error) {
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		return nil, fmt.Errorf("kubectl not found in %s (run 'make control-plane'): %w", assets, err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if err := childproc.Envtest(env, assets); err != nil {
		return nil, err
	}
	// Everything of the cluster lives in dir, so that removing dir removes it all, also
	// after a crash.
	env.ControlPlane.Etcd.DataDir = filepath.Join(dir, "etcd")
	env.ControlPlane.GetAPIServer().CertDir = filepath.Join(dir, "kube-apiserver")
	// Compact etcd's history every minute (the default is five): a strategy rewrites its
	// live ledger on every signal event, and under a soak's pace five minutes of old
	// revisions grow etcd's database by gigabytes.
	env.ControlPlane.GetAPIServer().Configure().Set("etcd-compaction-interval", "1m")
	for _, sub := range []string{env.ControlPlane.Etcd.DataDir, env.ControlPlane.GetAPIServer().CertDir} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, err
		}
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	c := &Cluster{env: env, dir: dir, assets: assets, KubectlPath: kubectl}
	admin, err := env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err == nil {
		c.Config = admin.Config()
		var kc []byte
		if kc, err = admin.KubeConfig(); err == nil {
			c.Kubeconfig = filepath.Join(dir, "kubeconfig")
			err = os.WriteFile(c.Kubeconfig, kc, 0o600)
		}
	}
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("writing the administrator's kubeconfig: %w", err)
	}
	if err = c.startControllers(); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	return c, nil
}

func (c *Cluster) startControllers() error {
	log, err := os.OpenFile(filepath.Join(c.dir, "kube-controller-manager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND,
		0o600)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }()
	cmd := exec.Command(filepath.Join(c.assets, "kube-controller-manager"), "--kubeconfig", c.Kubeconfig,
		"--controllers", controllers, "--leader-elect=false", "--secure-port=0")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childproc.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.controllers, c.controllersExited = cmd, exited
	return nil
}

// Stop stops kube-controller-manager, kube-apiserver and etcd and removes their data.
func (c *Cluster) Stop() error {
	if c.controllers != nil {
		_ = c.controllers.Process.Signal(syscall.SIGTERM)
		<-c.controllersExited
	}
	return c.env.Stop()
}

// part is a process of the control plane that envtest started.
type part struct {
	name, arg string // the binary, and an argument that tells this cluster's from others'
	start     func() error
}

// parts are etcd and kube-apiserver, in the order they start.
func (c *Cluster) parts() []part {
	apiserver := c.env.ControlPlane.GetAPIServer()
	return []part{
		{"etcd", "--listen-client-urls=" + c.env.ControlPlane.Etcd.URL.String(), c.env.ControlPlane.Etcd.Start},
		{"kube-apiserver", "--secure-port=" + apiserver.Port, apiserver.Start},
	}
}

// Kill SIGKILLs the whole control plane (kube-controller-manager, kube-apiserver, etcd),
// as the loss of the cluster's machines would, and waits until each is gone; their data
// stays for Restart. Neither may run alongside Watch, which would start them again itself.
func (c *Cluster) Kill() error {
	if c.controllers != nil {
		_ = c.controllers.Process.Kill()
		<-c.controllersExited
	}
	for _, p := range slices.Backward(c.parts()) {
		if err := childproc.Kill(p.name, p.arg); err != nil {
			return err
		}
	}
	return nil
}

// Restart starts a control plane Kill stopped again, on the same ports, certificates and data.
func (c *Cluster) Restart() error {
	for _, p := range c.parts() {
		if err := p.start(); err != nil {
			return fmt.Errorf("starting %s again: %w", p.name, err)
		}
	}
	return c.startControllers()
}

// Watch checks every second, until ctx ends, that etcd, kube-apiserver and
// kube-controller-manager still run. One that died is told of (tell) at once and started
// again, on the same port and data; Watch returns the error of a
// restart that failed. It must not run alongside Stop.
func (c *Cluster) Watch(ctx context.Context, tell func(string)) error {
	parts := c.parts()
	pids := make([]int, len(parts))
	for i, p := range parts {
		pid, err := childproc.Find(p.name, p.arg)
		if err != nil {
			return err
		}
		pids[i] = pid
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i, p := range parts {
			if syscall.Kill(pids[i], 0) != syscall.ESRCH {
				continue
			}
			tell(fmt.Sprintf("%s (pid %d) died; starting it again", p.name, pids[i]))
			if err := p.start(); err != nil {
				return fmt.Errorf("starting %s again: %w", p.name, err)
			}
			pid, err := childproc.Find(p.name, p.arg)
			if err != nil {
				return err
			}
			pids[i] = pid
			tell(fmt.Sprintf("%s runs again (pid %d)", p.name, pid))
		}
		select {
		case <-c.controllersExited:
			tell(fmt.Sprintf("kube-controller-manager (pid %d) died (%s); starting it again",
				c.controllers.Process.Pid, c.controllers.ProcessState))
			if err := c.startControllers(); err != nil {
				return fmt.Errorf("starting kube-controller-manager again: %w", err)
			}
			tell(fmt.Sprintf("kube-controller-manager runs again (pid %d; log: %s)", c.controllers.Process.Pid,
				filepath.Join(c.dir, "kube-controller-manager.log")))
		default:
		}
	}
}

// StartKubelet runs the cluster's pods as local processes (see podprocess) on node
// "local" until ctx ends, pulling every image from the registry mirror (host:port); the
// returned channel yields its result once every process has stopped. Pod logs go under
// dir/kubelet/logs.
func (c *Cluster) StartKubelet(ctx context.Context, mirror string, log *slog.Logger) (*podprocess.Kubelet, <-chan error, error) {
	// A pod range of its own, apart from other local clusters' on this machine (by chance:
	// one of 65,024 /24 ranges).
	cidr := fmt.Sprintf("127.%d.%d.0/24", 1+rand.IntN(254), rand.IntN(256))
	k, err := podprocess.New(podprocess.Config{REST: c.Config, NodeName: "local", Mirror: mirror, PodCIDR: cidr,
		Dir: filepath.Join(c.dir, "kubelet"), Log: log})
	if err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	return k, done, nil
}

// Kubectl runs kubectl against the cluster and returns what it printed on stdout. The error
// carries stderr, so a refusal by the API server reads as kubectl printed it.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := c.KubectlCommand(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ApplyKustomization applies the kustomization at dir to namespace with kubectl. A run
// that fails because an object appeared between kubectl's look and its create (the
// operator made a sample's store object meanwhile) is applied again, up to three times, so
// the kustomization's content goes onto it.
func (c *Cluster) ApplyKustomization(ctx context.Context, namespace, dir string) (string, error) {
	out, err := c.Kubectl(ctx, "apply", "-n", namespace, "-k", dir)
	for try := 0; err != nil && strings.Contains(err.Error(), "AlreadyExists") && try < 3; try++ {
		out, err = c.Kubectl(ctx, "apply", "-n", namespace, "-k", dir)
	}
	return out, err
}

// KubectlCommand is a kubectl command bound to the cluster's kubeconfig, not yet started.
func (c *Cluster) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.KubectlPath, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig, "KUBECTL_KUBERC=false")
	return cmd
}

// InstallCRDs applies the kustomization in crdDir and waits until every CRD is established.
func (c *Cluster) InstallCRDs(ctx context.Context, crdDir string) error {
	if _, err := c.Kubectl(ctx, "apply", "--server-side", "-k", crdDir); err != nil {
		return err
	}
	_, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd", "-l", "app.kubernetes.io/part-of=strategy-operator")
	return err
}

// StartManager runs the manager binary against the cluster (no metrics or probe
// endpoints), writing its output to out; args are added to its flags. The manager gets a
// process group of its own, so that a Ctrl-C meant for the caller does not reach it
// before the caller stops it in order, and it is killed if the caller dies.
func (c *Cluster) StartManager(bin string, out io.Writer, args ...string) (*exec.Cmd, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("manager binary %s: %w (run 'make build')", bin, err)
	}
	flags := append([]string{"--kubeconfig", c.Kubeconfig, "--metrics-bind-address=0",
		"--health-probe-bind-address=0"}, args...)
	cmd := exec.Command(bin, flags...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childproc.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}
