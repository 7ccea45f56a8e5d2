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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// process is one run of a container.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	// termination is its termination message file, log its output, and policy says
	// whether the log's tail stands in for an empty message after a failure.
	termination, log string
	policy           corev1.TerminationMessagePolicy
}

// Limits of a termination message, as kubelet keeps it.
const (
	maxMessageBytes  = 4096
	maxFallbackBytes = 2048
	maxFallbackLines = 80
)

// message is the container's termination message: what it wrote into its file, or with
// FallbackToLogsOnError after a failure, the tail of its log.
func (p *process) message(exitCode int32) string {
	if data, err := os.ReadFile(p.termination); err == nil && len(data) > 0 {
		return string(data[:min(len(data), maxMessageBytes)])
	}
	if exitCode == 0 || p.policy != corev1.TerminationMessageFallbackToLogsOnError {
		return ""
	}
	data, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	data = data[max(0, len(data)-maxFallbackBytes):]
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-maxFallbackLines):], "\n")
}

// wait returns how the process ended; when ctx ends first it stops the process with
// SIGTERM, then SIGKILL after the pod's grace period.
func (p *process) wait(ctx context.Context, pod *corev1.Pod) *corev1.ContainerStateTerminated {
	select {
	case <-p.exited:
	case <-ctx.Done():
		grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	t := &corev1.ContainerStateTerminated{ExitCode: int32(p.cmd.ProcessState.ExitCode()),
		FinishedAt: metav1.Now(), ContainerID: containerID(p.cmd)}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Signal = int32(ws.Signal())
		t.ExitCode = 128 + int32(ws.Signal())
	}
	t.Reason = "Error"
	if t.ExitCode == 0 {
		t.Reason = "Completed"
	}
	t.Message = p.message(t.ExitCode)
	return t
}

func containerID(cmd *exec.Cmd) string { return fmt.Sprintf("process://%d", cmd.Process.Pid) }

// start starts the pod's container as a process.
func (k *Kubelet) start(ctx context.Context, pod *corev1.Pod) (*process, error) {
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) > 0 {
		return nil, errors.New("the process kubelet runs pods of exactly one container and no init containers")
	}
	c := pod.Spec.Containers[0]
	bin, err := k.executable(c.Image)
	if err != nil {
		return nil, err
	}
	dir := k.podDir(pod.Namespace, pod.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	paths, err := k.volumes(pod, c)
	if err != nil {
		return nil, err
	}
	// The termination message file, empty at each start, where the container's path says.
	termination := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(termination, nil, 0o600); err != nil {
		return nil, err
	}
	if c.TerminationMessagePath != "" {
		paths = append(mounts{{filepath.Clean(c.TerminationMessagePath), termination}}, paths...)
	}
	args := c.Args
	if len(c.Command) > 0 {
		if filepath.Base(c.Command[0]) != filepath.Base(bin) {
			return nil, fmt.Errorf("container %q: command %q is not the entrypoint of image %s (%s)",
				c.Name, c.Command[0], c.Image, filepath.Base(bin))
		}
		args = append(slices.Clone(c.Command[1:]), c.Args...)
	}
	environ, err := k.environment(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	// The pod's values name paths inside the container (translated to the mounts' folders);
	// what this kubelet adds names its own folders, which a mount (an emptyDir at /tmp, with
	// this kubelet's folder under /tmp) must not redirect.
	environ = append(paths.translateAll(environ), "HOSTNAME="+pod.Name, "PATH="+os.Getenv("PATH"), "HOME="+dir)
	if ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
		if err := k.writeCredentials(ctx, pod); err != nil {
			return nil, fmt.Errorf("ServiceAccount %s token: %w", pod.Spec.ServiceAccountName, err)
		}
		environ = append(environ, "KUBECONFIG="+k.Kubeconfig(pod.Namespace, pod.Name))
	}
	if err := os.MkdirAll(filepath.Dir(k.LogPath(pod.Namespace, pod.Name)), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(k.LogPath(pod.Namespace, pod.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, paths.translateAll(args)...)
	cmd.Env = environ
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own, so that signals reach all of it, and killed if this
	// kubelet dies, so that no runner outlives it.
	cmd.SysProcAttr = childproc.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), termination: termination,
		log: k.LogPath(pod.Namespace, pod.Name), policy: c.TerminationMessagePolicy}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	go k.renewToken(ctx, pod, p.exited)
	return p, nil
}

// executable is the local executable that stands for image.
func (k *Kubelet) executable(image string) (string, error) {
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	name = name[strings.LastIndexByte(name, '/')+1:]
	bin, ok := k.cfg.Images[name]
	if !ok {
		known := make([]string, 0, len(k.cfg.Images))
		for n := range k.cfg.Images {
			known = append(known, n)
		}
		slices.Sort(known)
		return "", fmt.Errorf("no local executable stands for image %s (known images: %s)", image, strings.Join(known, ", "))
	}
	return filepath.Abs(bin)
}
