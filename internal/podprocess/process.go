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
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// start starts the pod's container as a process of its image.
func (k *Kubelet) start(ctx context.Context, pod *corev1.Pod) (*process, error) {
	if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) > 0 {
		return nil, errors.New("the process kubelet runs pods of exactly one container and no init containers")
	}
	c := pod.Spec.Containers[0]
	img, err := k.pull(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := checkNonRoot(pod, c, img.config.User); err != nil {
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
	// Every other path the container names is in its image.
	paths = append(paths, struct{ at, local string }{"/", img.rootfs})
	podEnv, err := k.environment(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	// The image's variables, then the pod's over them; $(NAME) in the pod's values and in
	// the command refers to the variables before it.
	vars := map[string]string{}
	var environ []string
	for _, e := range append(slices.Clone(img.config.Env), podEnv...) {
		n, v, _ := strings.Cut(e, "=")
		v = Expand(v, vars)
		vars[n] = v
		environ = append(environ, n+"="+v)
	}
	argv := commandLine(c, img.config)
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %q: neither the pod nor image %s gives a command", c.Name, c.Image)
	}
	for i := range argv {
		argv[i] = Expand(argv[i], vars)
	}
	bin, err := lookPath(argv[0], vars["PATH"], paths)
	if err != nil {
		return nil, fmt.Errorf("container %q, image %s: %w", c.Name, c.Image, err)
	}
	// The pod's values name paths inside the container (translated to the mounts' folders
	// and the image's); what this kubelet adds names its own folders, which a mount (an
	// emptyDir at /tmp, with this kubelet's folder under /tmp) must not redirect.
	environ = append(paths.translateAll(environ), "HOSTNAME="+pod.Name, "HOME="+dir,
		"PATH="+processPath(vars["PATH"], paths))
	if ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
		if err := k.writeCredentials(ctx, pod); err != nil {
			return nil, fmt.Errorf("ServiceAccount %s token: %w", pod.Spec.ServiceAccountName, err)
		}
		environ = append(environ, "KUBECONFIG="+k.Kubeconfig(pod.Namespace, pod.Name))
	}
	workDir := cmp.Or(c.WorkingDir, img.config.WorkingDir, "/")
	if err := os.MkdirAll(filepath.Dir(k.LogPath(pod.Namespace, pod.Name)), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(k.LogPath(pod.Namespace, pod.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, paths.translateAll(argv[1:])...)
	cmd.Args[0] = argv[0]
	cmd.Env = environ
	cmd.Dir = paths.translate(workDir)
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

// commandLine is what the container runs, as kubelet decides it: the pod's command
// replaces the image's entrypoint (and then its cmd), the pod's args replace the image's cmd.
func commandLine(c corev1.Container, img v1.Config) []string {
	switch {
	case len(c.Command) > 0:
		return append(slices.Clone(c.Command), c.Args...)
	case len(c.Args) > 0:
		return append(slices.Clone(img.Entrypoint), c.Args...)
	default:
		return append(slices.Clone(img.Entrypoint), img.Cmd...)
	}
}

// Expand replaces $(NAME) by the variable's value as kubelet does: $$ is a literal $, and
// a reference to a variable not defined stays as written.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] != '$' || i+1 == len(s):
			b.WriteByte(s[i])
		case s[i+1] == '$':
			b.WriteByte('$')
			i++
		case s[i+1] == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			ref := s[i+2 : i+2+end]
			if v, ok := vars[ref]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// lookPath finds the executable of the container's command: an absolute path in the image
// (or a mount), a bare name on the image's PATH, and then on this machine's PATH (the
// process kubelet has no mount namespace, so a runtime the host has, like node, is found
// there when the image lacks it).
func lookPath(command, imagePath string, m mounts) (string, error) {
	if strings.Contains(command, "/") {
		if !path.IsAbs(command) {
			return "", fmt.Errorf("command %q: a relative path is not supported by the process kubelet", command)
		}
		local := m.translate(command)
		if fi, err := os.Stat(local); err != nil || fi.IsDir() {
			return "", fmt.Errorf("command %s: no such executable in the image", command)
		}
		return local, nil
	}
	bin, err := exec.LookPath(command)
	for _, dir := range filepath.SplitList(imagePath) {
		local := filepath.Join(m.translate(dir), command)
		if fi, statErr := os.Stat(local); statErr == nil && !fi.IsDir() {
			return local, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("command %q: not found on the image's PATH %s, nor on the node's", command, imagePath)
	}
	return bin, nil
}

// processPath is the PATH the process gets: the image's folders, then this machine's.
func processPath(imagePath string, m mounts) string {
	var dirs []string
	for _, dir := range filepath.SplitList(imagePath) {
		dirs = append(dirs, m.translate(dir))
	}
	return strings.Join(append(dirs, os.Getenv("PATH")), string(filepath.ListSeparator))
}

// ErrRunAsRoot: the pod asks for a non-root user and the container would run as root.
var ErrRunAsRoot = errors.New("container has runAsNonRoot and image will run as root")

// checkNonRoot refuses to start a container that must not run as root but would, as
// kubelet does: the pod's user, else the image's, must be a non-zero number.
func checkNonRoot(pod *corev1.Pod, c corev1.Container, imageUser string) error {
	nonRoot, uid := false, (*int64)(nil)
	if sc := pod.Spec.SecurityContext; sc != nil {
		nonRoot, uid = ptr.Deref(sc.RunAsNonRoot, false), sc.RunAsUser
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
	}
	if !nonRoot {
		return nil
	}
	if uid != nil {
		if *uid == 0 {
			return fmt.Errorf("%w (pod's runAsUser 0)", ErrRunAsRoot)
		}
		return nil
	}
	user, _, _ := strings.Cut(imageUser, ":")
	n, err := strconv.ParseInt(user, 10, 64)
	switch {
	case user == "" || user == "root" || (err == nil && n == 0):
		return fmt.Errorf("%w (image user %q)", ErrRunAsRoot, imageUser)
	case err != nil:
		return fmt.Errorf("%w: image has non-numeric user (%s), cannot verify user is non-root", ErrRunAsRoot, user)
	}
	return nil
}
