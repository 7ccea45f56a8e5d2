//go:build e2e

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

// Package e2e drives strategy-operator the way its users do: a real etcd, kube-apiserver
// and kube-controller-manager, the operator installed with make deploy, its images pulled
// from a registry and run by a kubelet, and the real kubectl.
package e2e

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/strategyops/strategy-operator/internal/localcluster"
	"github.com/strategyops/strategy-operator/internal/podprocess"
	"github.com/strategyops/strategy-operator/internal/testenv"
)

var (
	cluster     *localcluster.Cluster
	registry    *localcluster.Registry
	kubelet     *podprocess.Kubelet
	kubeletLog  string
	stopKubelet context.CancelFunc
	kubeletDone <-chan error
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "strategy-operator e2e")
}

var _ = BeforeSuite(func(ctx context.Context) {
	root := testenv.RepoRoot()
	dir := GinkgoT().TempDir()

	By("starting etcd, kube-apiserver and kube-controller-manager")
	var err error
	cluster, err = localcluster.Start(testenv.BinaryDir(), dir)
	Expect(err).NotTo(HaveOccurred())

	By("serving the images make images built from a local registry")
	registry, err = localcluster.StartRegistry(ctx, filepath.Join(root, "bin", "images"), dir)
	Expect(err).NotTo(HaveOccurred())

	allowedImages = strings.Join(append([]string{localcluster.RunnerImage + ":*"}, registry.Images...), ",")

	By("starting the kubelet that pulls the pods' images from it and runs them as processes")
	kubeletLog = filepath.Join(dir, "kubelet.log")
	kl, err := os.Create(kubeletLog)
	Expect(err).NotTo(HaveOccurred())
	var kubeletCtx context.Context
	kubeletCtx, stopKubelet = context.WithCancel(context.Background())
	kubelet, kubeletDone, err = cluster.StartKubelet(kubeletCtx, registry.Host, slog.New(slog.NewTextHandler(kl, nil)))
	Expect(err).NotTo(HaveOccurred())

	By("writing dist/install.yaml with make build-installer; a server-side dry run accepts it")
	makeTarget(ctx, root, "build-installer")
	// A dry run creates nothing, so the namespace its objects go to must exist already.
	_, err = cluster.Kubectl(ctx, "create", "namespace", operatorNamespace)
	Expect(err).NotTo(HaveOccurred())
	_, err = cluster.Kubectl(ctx, "apply", "--server-side", "--dry-run=server", "-f",
		filepath.Join(root, "dist", "install.yaml"))
	Expect(err).NotTo(HaveOccurred())

	By("writing bin/run-local.yaml, what make run-local installs, for the run-local specs")
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, "run-local-manifests")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "make run-local-manifests: %s", out)

	By("installing the operator with make deploy: CRDs, RBAC, policies, the manager from its image")
	makeTarget(ctx, root, "deploy")
	_, err = cluster.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s",
		"crd", "-l", "app.kubernetes.io/part-of=strategy-operator")
	Expect(err).NotTo(HaveOccurred())
	_, err = cluster.Kubectl(ctx, "rollout", "status", "-n", operatorNamespace, managerDeployment, "--timeout=120s")
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(4*time.Minute))

// makeTarget runs make target in root for the local cluster, with the images make images
// tagged: the manager's and the runner's of this version; Strategies may name the
// allowedImages, and no other image.
func makeTarget(ctx context.Context, root, target string) {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, target,
		"IMG=strategy-operator:dev", "RUNNER_IMG="+localcluster.RunnerImage+":dev", "ALLOWED_IMAGES="+allowedImages,
		"KUBECTL="+cluster.KubectlPath)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "KUBECTL_KUBERC=false", "MAKEFLAGS=")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "make %s: %s", target, out)
}

// allowedImages is the e2e install's --allowed-images: the images of the local registry,
// and the runner image at any tag.
var allowedImages string

var _ = AfterSuite(func() {
	if stopKubelet != nil {
		stopKubelet()
		Expect(<-kubeletDone).To(Succeed())
	}
	if registry != nil {
		Expect(registry.Stop()).To(Succeed())
	}
	if cluster != nil {
		Expect(cluster.Stop()).To(Succeed())
	}
})

// On a failed spec, print what a person would look at first.
var _ = ReportAfterEach(func(report SpecReport) {
	if !report.Failed() || cluster == nil {
		return
	}
	if data, err := os.ReadFile(kubeletLog); err == nil {
		AddReportEntry("kubelet log", string(data))
	}
	if kubelet != nil {
		logs, _ := filepath.Glob(filepath.Join(kubelet.LogDir(), "*.log"))
		for _, path := range logs {
			if data, err := os.ReadFile(path); err == nil {
				AddReportEntry("pod log "+filepath.Base(path), string(data))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, _ := cluster.Kubectl(ctx, "get", "events", "-A", "--sort-by=.lastTimestamp")
	AddReportEntry("events", events)
})
