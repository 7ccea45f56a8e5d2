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

// Command local runs strategy-operator on this machine for a person to try: a real etcd and
// kube-apiserver, the CRDs, the manager, and the samples. It prints how to reach the
// cluster with kubectl and stops everything on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/strategyops/strategy-operator/internal/localcluster"
)

func main() {
	assets := flag.String("assets", "", "folder with etcd, kube-apiserver and kubectl (make control-plane builds it)")
	manager := flag.String("manager", "bin/manager", "manager binary to run")
	samples := flag.String("samples", "config/samples", "kustomization applied once the manager runs")
	namespace := flag.String("namespace", "default", "namespace the samples go to")
	flag.Parse()
	if *assets == "" {
		fmt.Fprintln(os.Stderr, "error: --assets is required (the folder 'make control-plane' prints)")
		os.Exit(2)
	}
	if err := run(*assets, *manager, *samples, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(assets, managerBin, samples, namespace string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "strategy-operator-local-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	step("starting etcd and kube-apiserver")
	cluster, err := localcluster.Start(assets, dir)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping kube-apiserver and etcd")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "warning: stopping the control plane:", err)
		}
	}()
	// Commands below must finish even when Ctrl-C arrives while they run.
	setup, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	step("installing the CRDs")
	if err := cluster.InstallCRDs(setup, "config/crd"); err != nil {
		return err
	}

	step("starting the manager (log: " + filepath.Join(dir, "manager.log") + ")")
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	mgr, err := cluster.StartManager(managerBin, logFile)
	if err != nil {
		return err
	}
	var exitErr error
	exited := make(chan struct{})
	go func() { exitErr = mgr.Wait(); close(exited) }()
	defer func() {
		step("stopping the manager")
		_ = mgr.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = mgr.Process.Kill()
			<-exited
		}
	}()

	step("applying " + samples)
	out, err := cluster.Kubectl(setup, "apply", "-n", namespace, "-k", samples)
	if err != nil {
		return err
	}
	fmt.Print(out)

	fmt.Printf(`
strategy-operator is running on a local control plane. In another terminal:

  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl get strategies
  kubectl get strategystates -o wide
  kubectl describe strategystate breakout-simulated-btcusdt
  kubectl apply -f config/samples/trading_v1alpha1_strategy_configmap.yaml

Press Ctrl-C to stop everything.
`, cluster.Kubeconfig, cluster.KubectlPath)

	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-exited:
		return fmt.Errorf("the manager exited: %v (see its log)", exitErr)
	}
}

func step(msg string) { fmt.Printf("==> %s\n", msg) }
