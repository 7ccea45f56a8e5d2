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

// Package podprocess is a kubelet for a machine with no container runtime: it runs the
// pods of a local control plane as processes. It binds pending pods to its node (there is
// no scheduler), starts each pod's single container from a local executable that stands
// for the container's image, with what the Pod says (command and args, environment, a
// ServiceAccount token bound to the pod), reports the container's state back into the
// pod's status, restarts it by the pod's restart policy, and finishes a pod's deletion
// once its process has stopped. `make run-local` and the e2e suite use it so that the
// runner pods the operator makes run for real.
package podprocess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/strategyops/strategy-operator/internal/childproc"
)

// Config configures a Kubelet.
type Config struct {
	// REST reaches the API server as this kubelet: it binds pods, writes their status,
	// requests ServiceAccount tokens and reads what pods' environments refer to.
	REST *rest.Config
	// NodeName is the node this kubelet registers and runs pods on.
	NodeName string
	// Images maps an image name, without registry, tag or digest (strategy-runner for
	// ghcr.io/strategyops/strategy-runner:v1), to the executable that stands for it.
	Images map[string]string
	// Dir holds the pods' logs, tokens and volumes.
	Dir string
	// Log receives one line per pod and container event.
	Log *slog.Logger
}

// localhost is the address of the node and of every pod on it.
const localhost = "127.0.0.1"

// tokenLifetime is how long a pod's ServiceAccount token is valid; it is renewed at 80 %.
const tokenLifetime = time.Hour

// Kubelet runs the pods bound to its node as processes.
type Kubelet struct {
	cfg    Config
	client kubernetes.Interface
	pods   corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	running map[types.UID]*podRun
	wg      sync.WaitGroup
}

// podRun is one pod's supervisor.
type podRun struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Kubelet for cfg.
func New(cfg Config) (*Kubelet, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cs, err := kubernetes.NewForConfig(cfg.REST)
	if err != nil {
		return nil, err
	}
	return &Kubelet{cfg: cfg, client: cs, running: map[types.UID]*podRun{}}, nil
}

// LogDir holds one log file per pod, namespace_name.log.
func (k *Kubelet) LogDir() string { return filepath.Join(k.cfg.Dir, "logs") }

// LogPath is the file that collects the output of every run of pod namespace/name.
func (k *Kubelet) LogPath(namespace, name string) string {
	return filepath.Join(k.LogDir(), namespace+"_"+name+".log")
}

// Kubeconfig is the kubeconfig file the processes of pod namespace/name get in KUBECONFIG:
// the API server and the pod's ServiceAccount token, nothing else.
func (k *Kubelet) Kubeconfig(namespace, name string) string {
	return filepath.Join(k.podDir(namespace, name), "kubeconfig")
}

func (k *Kubelet) podDir(namespace, name string) string {
	return filepath.Join(k.cfg.Dir, "pods", namespace+"_"+name)
}

// Run registers the node and runs pods until ctx ends; then it stops every process, each
// within its pod's grace period, and returns.
func (k *Kubelet) Run(ctx context.Context) error {
	if err := k.registerNode(ctx); err != nil {
		return fmt.Errorf("registering node %s: %w", k.cfg.NodeName, err)
	}
	factory := informers.NewSharedInformerFactory(k.client, 0)
	podInformer := factory.Core().V1().Pods()
	k.pods = podInformer.Lister()
	k.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		k.queue.ShutDown()
	}()
	for k.next(ctx) {
	}
	k.mu.Lock()
	for _, r := range k.running {
		r.cancel()
	}
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

func (k *Kubelet) next(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	if err := k.sync(ctx, key); err != nil {
		k.cfg.Log.Error("Syncing pod", "pod", key, "error", err.Error())
		k.queue.AddRateLimited(key)
		return true
	}
	k.queue.Forget(key)
	return true
}

func (k *Kubelet) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: map[string]string{
			corev1.LabelHostname: k.cfg.NodeName, "node.kubernetes.io/process-kubelet": "true"}},
	}
	if _, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			Reason: "ProcessKubeletReady", Message: "pods run as local processes", LastHeartbeatTime: now, LastTransitionTime: now}}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: localhost},
			{Type: corev1.NodeHostName, Address: k.cfg.NodeName}}
		n.Status.Capacity = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
		n.Status.Allocatable = n.Status.Capacity
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// sync brings one pod's process in line with the pod.
func (k *Kubelet) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Gone. Deleted through this kubelet (finish), its process has stopped already;
		// deleted by force, it is killed now.
		k.mu.Lock()
		defer k.mu.Unlock()
		for uid, r := range k.running {
			if r.key == key {
				r.cancel()
				delete(k.running, uid)
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case pod.Spec.NodeName == "":
		return k.bind(ctx, pod)
	case pod.Spec.NodeName != k.cfg.NodeName:
		return nil
	case pod.DeletionTimestamp != nil:
		k.finish(ctx, pod)
		return nil
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.running[pod.UID]; ok {
		return nil
	}
	podCtx, cancel := context.WithCancel(ctx)
	r := &podRun{key: key, cancel: cancel, done: make(chan struct{})}
	k.running[pod.UID] = r
	k.wg.Go(func() {
		defer close(r.done)
		k.supervise(podCtx, pod.DeepCopy())
	})
	return nil
}

// bind schedules a pending pod to this node: the local control plane has no scheduler.
func (k *Kubelet) bind(ctx context.Context, pod *corev1.Pod) error {
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return nil
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: k.cfg.NodeName},
	}, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound or gone meanwhile: the next event tells
	}
	return err
}

// finish stops a deleted pod's process within its grace period, then removes the pod, as
// kubelet confirms a deletion.
func (k *Kubelet) finish(ctx context.Context, pod *corev1.Pod) {
	k.mu.Lock()
	r, ok := k.running[pod.UID]
	k.mu.Unlock()
	go func() {
		if ok {
			r.cancel()
			<-r.done
		}
		k.mu.Lock()
		delete(k.running, pod.UID)
		k.mu.Unlock()
		err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(pod.UID))})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			k.cfg.Log.Error("Removing a deleted pod", "pod", pod.Namespace+"/"+pod.Name, "error", err.Error())
		}
	}()
}

// supervise runs the pod's container until ctx ends, restarting it by the restart policy.
func (k *Kubelet) supervise(ctx context.Context, pod *corev1.Pod) {
	log := k.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name)
	c := pod.Spec.Containers[0]
	var last *corev1.ContainerStateTerminated
	restarts := int32(0)
	backoff := time.Second
	for {
		proc, err := k.start(ctx, pod)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("Cannot start the container", "error", err.Error())
			k.report(pod, c, "", restarts, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerConfigError", Message: err.Error()}}, last)
		} else {
			started := time.Now()
			log.Info("Started the container", "container", c.Name, "pid", proc.cmd.Process.Pid, "restarts", restarts)
			k.report(pod, c, containerID(proc.cmd), restarts, corev1.ContainerState{Running: &corev1.ContainerStateRunning{
				StartedAt: metav1.NewTime(started)}}, last)
			last = proc.wait(ctx, pod)
			log.Info("The container ended", "container", c.Name, "exitCode", last.ExitCode, "reason", last.Reason)
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > 10*time.Second {
				backoff = time.Second
			}
			restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
				(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && last.ExitCode != 0)
			if !restart {
				k.report(pod, c, last.ContainerID, restarts, corev1.ContainerState{Terminated: last}, nil)
				return
			}
			restarts++
			k.report(pod, c, "", restarts, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CrashLoopBackOff", Message: fmt.Sprintf("restarting in %s", backoff)}}, last)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

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
	environ = append(environ, "HOSTNAME="+pod.Name, "PATH="+os.Getenv("PATH"), "HOME="+dir)
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
	cmd.Env = paths.translateAll(environ)
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
			return prefix + mt.local + strings.TrimPrefix(value, mt.at)
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

// environment resolves the container's env as kubelet does: values, the pod's own fields,
// and keys of ConfigMaps and Secrets.
func (k *Kubelet) environment(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("container %q: envFrom is not supported by the process kubelet", c.Name)
	}
	out := make([]string, 0, len(c.Env))
	for _, e := range c.Env {
		v, err := k.envValue(ctx, pod, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

func (k *Kubelet) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	src := e.ValueFrom
	switch {
	case src == nil:
		return e.Value, nil
	case src.FieldRef != nil:
		return podField(pod, src.FieldRef.FieldPath)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := k.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
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
		s, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
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
	case "status.hostIP", "status.podIP":
		return localhost, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("fieldRef %q is not supported by the process kubelet", path)
}

// writeCredentials requests a token for the pod's ServiceAccount, bound to the pod (it
// stops working when the pod is deleted), and writes it with a kubeconfig that names only
// the API server and that token: the process gets the pod's identity and no other.
func (k *Kubelet) writeCredentials(ctx context.Context, pod *corev1.Pod) error {
	if err := k.writeToken(ctx, pod); err != nil {
		return err
	}
	rc := k.cfg.REST
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData,
		CertificateAuthority: rc.CAFile}
	kc.AuthInfos["serviceaccount"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(k.podDir(pod.Namespace, pod.Name), "token")}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "serviceaccount", Namespace: pod.Namespace}
	kc.CurrentContext = "pod"
	return clientcmd.WriteToFile(*kc, k.Kubeconfig(pod.Namespace, pod.Name))
}

func (k *Kubelet) writeToken(ctx context.Context, pod *corev1.Pod) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := k.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To(int64(tokenLifetime / time.Second)),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	path := filepath.Join(k.podDir(pod.Namespace, pod.Name), "token")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// renewToken replaces the token file before the token expires; client-go rereads it.
func (k *Kubelet) renewToken(ctx context.Context, pod *corev1.Pod, exited <-chan struct{}) {
	if !ptr.Deref(pod.Spec.AutomountServiceAccountToken, true) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-exited:
			return
		case <-time.After(tokenLifetime * 4 / 5):
			if err := k.writeToken(ctx, pod); err != nil && ctx.Err() == nil {
				k.cfg.Log.Error("Renewing a ServiceAccount token", "pod", pod.Namespace+"/"+pod.Name, "error", err.Error())
			}
		}
	}
}

// report writes the container's state into the pod's status, with the phase and
// conditions that follow from it.
func (k *Kubelet) report(pod *corev1.Pod, c corev1.Container, id string, restarts int32, state corev1.ContainerState,
	last *corev1.ContainerStateTerminated) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ready := state.Running != nil
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "process://" + c.Image, RestartCount: restarts,
		Ready: ready, Started: new(ready), State: state, ContainerID: id}
	if last != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: last}
	}
	phase := corev1.PodRunning
	switch {
	case state.Terminated != nil && state.Terminated.ExitCode == 0:
		phase = corev1.PodSucceeded
	case state.Terminated != nil:
		phase = corev1.PodFailed
	case state.Waiting != nil && restarts == 0 && last == nil:
		phase = corev1.PodPending
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID {
			return nil
		}
		now := metav1.Now()
		cur.Status.Phase = phase
		cur.Status.HostIP, cur.Status.PodIP = localhost, localhost
		cur.Status.PodIPs = []corev1.PodIP{{IP: localhost}}
		if cur.Status.StartTime == nil {
			cur.Status.StartTime = &now
		}
		cur.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		status := func(ok bool) corev1.ConditionStatus {
			if ok {
				return corev1.ConditionTrue
			}
			return corev1.ConditionFalse
		}
		for _, cond := range []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: status(ready)},
			{Type: corev1.PodReady, Status: status(ready)},
		} {
			setPodCondition(&cur.Status, cond, now)
		}
		_, err = k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		k.cfg.Log.Error("Writing pod status", "pod", pod.Namespace+"/"+pod.Name, "error", err.Error())
	}
}

func setPodCondition(s *corev1.PodStatus, c corev1.PodCondition, now metav1.Time) {
	for i := range s.Conditions {
		if s.Conditions[i].Type == c.Type {
			if s.Conditions[i].Status != c.Status {
				s.Conditions[i].Status, s.Conditions[i].LastTransitionTime = c.Status, now
			}
			return
		}
	}
	c.LastTransitionTime = now
	s.Conditions = append(s.Conditions, c)
}
