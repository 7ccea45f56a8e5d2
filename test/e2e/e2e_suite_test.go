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

// Package e2e drives strategy-operator the way its users do: a real etcd and
// kube-apiserver, the manager binary, and the real kubectl.
package e2e

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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
	manager     *exec.Cmd
	managerLog  string
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

	By("starting etcd and kube-apiserver")
	var err error
	cluster, err = localcluster.Start(testenv.BinaryDir(), dir)
	Expect(err).NotTo(HaveOccurred())

	By("installing the CRDs with kubectl")
	Expect(cluster.InstallCRDs(ctx, filepath.Join(root, "config", "crd"))).To(Succeed())

	By("starting the manager")
	managerLog = filepath.Join(dir, "manager.log")
	logFile, err := os.Create(managerLog)
	Expect(err).NotTo(HaveOccurred())
	manager, err = cluster.StartManager(filepath.Join(root, "bin", "manager"), logFile)
	Expect(err).NotTo(HaveOccurred())

	By("starting the kubelet that runs the runner pods as processes of bin/runner")
	kubeletLog = filepath.Join(dir, "kubelet.log")
	kl, err := os.Create(kubeletLog)
	Expect(err).NotTo(HaveOccurred())
	var kubeletCtx context.Context
	kubeletCtx, stopKubelet = context.WithCancel(context.Background())
	kubelet, kubeletDone, err = cluster.StartKubelet(kubeletCtx, localcluster.Images(filepath.Join(root, "bin")),
		slog.New(slog.NewTextHandler(kl, nil)))
	Expect(err).NotTo(HaveOccurred())
}, NodeTimeout(3*time.Minute))

var _ = AfterSuite(func() {
	if stopKubelet != nil {
		stopKubelet()
		Expect(<-kubeletDone).To(Succeed())
	}
	if manager != nil && manager.Process != nil {
		_ = manager.Process.Signal(syscall.SIGTERM)
		_ = manager.Wait()
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
	for name, path := range map[string]string{"manager log": managerLog, "kubelet log": kubeletLog} {
		if data, err := os.ReadFile(path); err == nil {
			AddReportEntry(name, string(data))
		}
	}
	if kubelet != nil {
		logs, _ := filepath.Glob(filepath.Join(kubelet.LogDir(), "*.log"))
		for _, path := range logs {
			if data, err := os.ReadFile(path); err == nil {
				AddReportEntry("runner log "+filepath.Base(path), string(data))
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events, _ := cluster.Kubectl(ctx, "get", "events", "-A", "--sort-by=.lastTimestamp")
	AddReportEntry("events", events)
})
