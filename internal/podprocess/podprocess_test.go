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

package podprocess

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExecutableIgnoresRegistryTagAndDigest(t *testing.T) {
	k := &Kubelet{cfg: Config{Images: map[string]string{"strategy-runner": "/opt/bin/runner"}}}
	for _, image := range []string{"strategy-runner", "strategy-runner:dev", "localhost:5000/strategy-runner:v1",
		"ghcr.io/strategyops/strategy-runner@sha256:abc", "ghcr.io/strategyops/strategy-runner:v1@sha256:abc"} {
		bin, err := k.executable(image)
		if err != nil || bin != "/opt/bin/runner" {
			t.Errorf("%s: got %q, %v", image, bin, err)
		}
	}
	_, err := k.executable("localhost:5000/other:v1")
	if err == nil || !strings.Contains(err.Error(), "localhost:5000/other:v1") || !strings.Contains(err.Error(), "strategy-runner") {
		t.Errorf("an unknown image: got %v, want an error naming it and the known images", err)
	}
}

func TestMountPathsBecomeLocalFolders(t *testing.T) {
	m := mounts{{at: "/data/cache", local: "/tmp/c"}, {at: "/data", local: "/tmp/d"}}
	for in, want := range map[string]string{
		"/data":               "/tmp/d",
		"--data-dir=/data":    "--data-dir=/tmp/d",
		"DATA_DIR=/data/x":    "DATA_DIR=/tmp/d/x",
		"/data/cache/y":       "/tmp/c/y",
		"/database":           "/database",
		"--market=simulated":  "--market=simulated",
		"--data-dir=/dataset": "--data-dir=/dataset",
	} {
		if got := m.translate(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestPodFields(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Labels: map[string]string{"app": "x"}}}
	for path, want := range map[string]string{"metadata.name": "p", "metadata.namespace": "n", "metadata.labels['app']": "x"} {
		if got, err := podField(pod, path); err != nil || got != want {
			t.Errorf("%s: got %q, %v", path, got, err)
		}
	}
	if _, err := podField(pod, "status.phase"); err == nil || !strings.Contains(err.Error(), "status.phase") {
		t.Errorf("an unsupported field: got %v", err)
	}
}
