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

package testenv

import (
	"fmt"
	"syscall"
	"time"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// KillAPIServer SIGKILLs the environment's kube-apiserver and waits until it is gone.
// envtest keeps its process handle to itself, so the process is found by its flags.
func (e *Environment) KillAPIServer() error {
	return killProcessWithArg("kube-apiserver", "--secure-port="+e.Env.ControlPlane.GetAPIServer().Port)
}

// StartAPIServer starts the kube-apiserver again after KillAPIServer, on the same port,
// certificates and etcd.
func (e *Environment) StartAPIServer() error { return e.Env.ControlPlane.GetAPIServer().Start() }

// KillEtcd SIGKILLs the environment's etcd and waits until it is gone.
func (e *Environment) KillEtcd() error {
	return killProcessWithArg("etcd", "--listen-client-urls="+e.Env.ControlPlane.Etcd.URL.String())
}

// StartEtcd starts etcd again after KillEtcd, on the same client port and data.
func (e *Environment) StartEtcd() error { return e.Env.ControlPlane.Etcd.Start() }

func killProcessWithArg(name, arg string) error {
	pid, err := childproc.Find(name, arg)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	// The signal is delivered asynchronously: wait until envtest has reaped the process, so
	// that the next one does not start while it still holds the port.
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) did not die of SIGKILL within 10s", name, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
