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
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// mounts maps the container's mount paths to local folders.
type mounts []struct{ at, local string }

// translate rewrites a path under a mount path, alone or as the value of --flag=path or
// NAME=path, to the local folder: without a mount namespace this is how the process
// finds its volumes.
func (m mounts) translate(s string) string {
	prefix, value := "", s
	if i := strings.IndexByte(s, '='); i >= 0 {
		prefix, value = s[:i+1], s[i+1:]
	}
	for _, mt := range m {
		if value == mt.at || strings.HasPrefix(value, strings.TrimSuffix(mt.at, "/")+"/") {
			return prefix + filepath.Join(mt.local, strings.TrimPrefix(value, mt.at))
		}
	}
	return s
}

func (m mounts) translateAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = m.translate(s)
	}
	return out
}

// volumes makes a local folder for each of the container's mounts: one per
// PersistentVolumeClaim, shared by every pod that mounts the claim and kept after the
// pod, and one per emptyDir, removed with the pod's folder.
func (k *Kubelet) volumes(pod *corev1.Pod, c corev1.Container) (mounts, error) {
	var m mounts
	for _, vm := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 {
			return nil, fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		v := pod.Spec.Volumes[i]
		var local string
		switch {
		case v.PersistentVolumeClaim != nil:
			local = filepath.Join(k.cfg.Dir, "volumes", pod.Namespace, v.PersistentVolumeClaim.ClaimName)
		case v.EmptyDir != nil:
			local = filepath.Join(k.podDir(pod.Namespace, pod.Name), "volumes", v.Name)
		default:
			return nil, fmt.Errorf("volume %q: the process kubelet mounts only persistentVolumeClaim and emptyDir volumes", v.Name)
		}
		if vm.SubPath != "" {
			local = filepath.Join(local, vm.SubPath)
		}
		if err := os.MkdirAll(local, 0o700); err != nil {
			return nil, err
		}
		m = append(m, struct{ at, local string }{filepath.Clean(vm.MountPath), local})
	}
	// The longest mount path first, so that nested mounts win.
	slices.SortFunc(m, func(a, b struct{ at, local string }) int { return len(b.at) - len(a.at) })
	return m, nil
}

// environment resolves the container's env as kubelet does (ContainerEnv), the pod's IP
// the one this kubelet gave it.
func (k *Kubelet) environment(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]string, error) {
	return ContainerEnv(ctx, k.client, pod, c, k.podIP(pod.UID))
}

// ContainerEnv resolves the env of pod's container c as kubelet does, reading what it refers
// to through cs: values, the pod's own fields (status.podIP is podIP), and keys of
// ConfigMaps and Secrets. It returns NAME=value pairs in the container's order.
func ContainerEnv(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, c corev1.Container,
	podIP string) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("container %q: envFrom is not supported by the process kubelet", c.Name)
	}
	out := make([]string, 0, len(c.Env))
	for _, e := range c.Env {
		v, err := envValue(ctx, cs, pod, e, podIP)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

func envValue(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, e corev1.EnvVar, podIP string) (string,
	error) {
	src := e.ValueFrom
	switch {
	case src == nil:
		return e.Value, nil
	case src.FieldRef != nil && src.FieldRef.FieldPath == "status.podIP":
		return podIP, nil
	case src.FieldRef != nil:
		return podField(pod, src.FieldRef.FieldPath)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := cs.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, nil
			}
			err = fmt.Errorf("ConfigMap %s has no key %q", ref.Name, ref.Key)
		}
		if ptr.Deref(ref.Optional, false) {
			return "", nil
		}
		return "", err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := cs.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), nil
			}
			err = fmt.Errorf("secret %s has no key %q", ref.Name, ref.Key)
		}
		if ptr.Deref(ref.Optional, false) {
			return "", nil
		}
		return "", err
	default:
		return "", errors.New("only value, fieldRef, configMapKeyRef and secretKeyRef are supported by the process kubelet")
	}
}

func podField(pod *corev1.Pod, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return localhost, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported by the process kubelet", path)
}
