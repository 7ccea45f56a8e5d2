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

// Package childproc starts the project's long-running child processes (the control plane,
// the manager, pods run as processes) so that they die with the process that started
// them, however it dies: a SIGKILL, a test binary's timeout or a broken pipe must leave no
// etcd or kube-apiserver running behind it.
package childproc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DieWithParent returns an executable that runs bin with the given arguments and the
// same parent-death signal: a small script that execs bin through util-linux's setpriv,
// for processes that another library starts (envtest's etcd and kube-apiserver), where
// SysProcAttr cannot be set. The script is written once per bin into the temporary folder
// and reused.
func DieWithParent(bin string) (string, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", fmt.Errorf("setpriv (util-linux) is needed to tie %s to its parent: %w", filepath.Base(bin), err)
	}
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", quote(setpriv), quote(abs))
	sum := sha256.Sum256([]byte(script))
	dir := filepath.Join(os.TempDir(), "strategy-operator-childproc")
	path := filepath.Join(dir, hex.EncodeToString(sum[:8])+"-"+filepath.Base(abs))
	if data, err := os.ReadFile(path); err == nil && string(data) == script {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	_, werr := tmp.WriteString(script)
	if err := errors.Join(werr, tmp.Chmod(0o755), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}

// Envtest makes env run etcd and kube-apiserver from assets so that they die with this
// process.
func Envtest(env *envtest.Environment, assets string) error {
	etcd, err := DieWithParent(filepath.Join(assets, "etcd"))
	if err != nil {
		return err
	}
	apiserver, err := DieWithParent(filepath.Join(assets, "kube-apiserver"))
	if err != nil {
		return err
	}
	if env.ControlPlane.Etcd == nil {
		env.ControlPlane.Etcd = &envtest.Etcd{}
	}
	env.ControlPlane.Etcd.Path = etcd
	env.ControlPlane.GetAPIServer().Path = apiserver
	if env.ControlPlane.KubectlPath == "" {
		env.ControlPlane.KubectlPath = filepath.Join(assets, "kubectl")
	}
	return nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Find is the process running the binary named name with argument arg, read from /proc
// (for processes another library started, which keeps their handles to itself).
func Find(name, arg string) (int, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if err == nil && filepath.Base(args[0]) == name && slices.Contains(args, arg) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no %s runs with %s", name, arg)
}

// Kill SIGKILLs the process Find names and waits until it is gone: the signal is delivered
// asynchronously, and the library that started it reaps it, so that a new one started
// right after does not find its port still held.
func Kill(name, arg string) error {
	pid, err := Find(name, arg)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) did not die of SIGKILL within 10s", name, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
