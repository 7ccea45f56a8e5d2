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
	"github.com/strategyops/strategy-operator/internal/childproc"
)

// KillAPIServer SIGKILLs the environment's kube-apiserver and waits until it is gone.
// envtest keeps its process handle to itself, so the process is found by its flags.
func (e *Environment) KillAPIServer() error {
	return childproc.Kill("kube-apiserver", "--secure-port="+e.Env.ControlPlane.GetAPIServer().Port)
}

// StartAPIServer starts the kube-apiserver again after KillAPIServer, on the same port,
// certificates and etcd.
func (e *Environment) StartAPIServer() error { return e.Env.ControlPlane.GetAPIServer().Start() }

// KillEtcd SIGKILLs the environment's etcd and waits until it is gone.
func (e *Environment) KillEtcd() error {
	return childproc.Kill("etcd", "--listen-client-urls="+e.Env.ControlPlane.Etcd.URL.String())
}

// StartEtcd starts etcd again after KillEtcd, on the same client port and data.
func (e *Environment) StartEtcd() error { return e.Env.ControlPlane.Etcd.Start() }
