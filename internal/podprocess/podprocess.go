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
// no scheduler), pulls each pod's image from a registry and unpacks it into a folder,
// starts the pod's single container from it with what the Pod says (command and args,
// environment with $(VAR) references, volumes, a ServiceAccount token bound to the pod, a
// loopback address of its own as the pod IP), reports the container's state back into the
// pod's status (ErrImagePull and ImagePullBackOff included), restarts it by the pod's
// restart policy, and finishes a pod's deletion once its process has stopped. `make
// run-local` and the e2e suite use it so that the images a cluster would run run here.
//
// What it does not do that a real kubelet does: no namespaces or cgroups (every process
// sees this machine's file system and network, runs as this kubelet's user, and a bare
// command the image lacks is found on this machine's PATH), no resource limits, no probes
// (a running container counts as ready), and only emptyDir and persistentVolumeClaim
// volumes; paths are redirected into the image and the volumes by rewriting the command
// line and environment, not by mounts.
package podprocess

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

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
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// Config configures a Kubelet.
type Config struct {
	// REST reaches the API server as this kubelet: it binds pods, writes their status,
	// requests ServiceAccount tokens and reads what pods' environments refer to.
	REST *rest.Config
	// NodeName is the node this kubelet registers and runs pods on.
	NodeName string
	// Mirror is a registry (host:port) to pull every image from, whatever registry its
	// reference names, as a container runtime's mirror does: strategy-runner:v1 is pulled
	// as Mirror/library/strategy-runner:v1. Empty pulls from the named registries.
	Mirror string
	// PodCIDR is the loopback range (inside 127.0.0.0/8, all of which is local on Linux)
	// that pod IPs come from; kubelets on one machine need ranges apart. Empty: 127.0.0.0/16.
	PodCIDR string
	// Dir holds the pods' logs, tokens and volumes.
	Dir string
	// Log receives one line per pod and container event.
	Log *slog.Logger
}

// localhost is the address of the node and of every pod on it.
const localhost = "127.0.0.1"

// Kubelet runs the pods bound to its node as processes.
type Kubelet struct {
	cfg    Config
	client kubernetes.Interface
	pods   corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	running map[types.UID]*podRun
	wg      sync.WaitGroup

	pullMu   sync.Mutex
	imagesMu sync.Mutex
	images   map[string]pulledImage // by the reference the pod names

	podCIDR netip.Prefix
	ipsMu   sync.Mutex
	ips     map[types.UID]string // each running pod's loopback address
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
	cidr, err := netip.ParsePrefix(cmp.Or(cfg.PodCIDR, "127.0.0.0/16"))
	if err != nil || !cidr.Addr().Is4() || !cidr.Addr().IsLoopback() {
		return nil, fmt.Errorf("PodCIDR %q: want a range inside 127.0.0.0/8", cfg.PodCIDR)
	}
	return &Kubelet{cfg: cfg, client: cs, running: map[types.UID]*podRun{}, images: map[string]pulledImage{},
		ips: map[types.UID]string{}, podCIDR: cidr.Masked()}, nil
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
		Spec: corev1.NodeSpec{PodCIDR: k.podCIDR.String(), PodCIDRs: []string{k.podCIDR.String()}},
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

// waitingReason is how a pod's status names why its container could not start.
func waitingReason(err error) string {
	for _, e := range []error{ErrImagePull, ErrInvalidImageName, ErrImageNeverPull} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "CreateContainerConfigError"
}

// podIP is the pod's own loopback address from the pod range, kept while its supervisor
// runs: processes that bind their pod IP do not collide with other pods'.
func (k *Kubelet) podIP(uid types.UID) string {
	k.ipsMu.Lock()
	defer k.ipsMu.Unlock()
	if ip, ok := k.ips[uid]; ok {
		return ip
	}
	used := map[string]bool{}
	for _, ip := range k.ips {
		used[ip] = true
	}
	for a := k.podCIDR.Addr().Next(); k.podCIDR.Contains(a); a = a.Next() {
		last := a.As4()[3]
		if ip := a.String(); last != 0 && last != 1 && last != 255 && !used[ip] {
			k.ips[uid] = ip
			return ip
		}
	}
	k.cfg.Log.Error("The pod range is exhausted: the pod shares the node's address, and its ports may collide",
		"podCIDR", k.podCIDR.String(), "pods", len(k.ips))
	return localhost
}

func (k *Kubelet) releaseIP(uid types.UID) {
	k.ipsMu.Lock()
	defer k.ipsMu.Unlock()
	delete(k.ips, uid)
}

// supervise runs the pod's container until ctx ends, restarting it by the restart policy.
func (k *Kubelet) supervise(ctx context.Context, pod *corev1.Pod) {
	log := k.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name)
	k.podIP(pod.UID)
	defer k.releaseIP(pod.UID)
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
			reason := waitingReason(err)
			k.report(pod, c, "", restarts, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: reason, Message: err.Error()}}, last)
			if reason == ErrImagePull.Error() {
				// As kubelet: the pull failed, and the next try waits for its back-off.
				select {
				case <-ctx.Done():
					return
				case <-time.After(min(backoff, time.Second)):
				}
				k.report(pod, c, "", restarts, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "ImagePullBackOff", Message: "Back-off pulling image \"" + c.Image + "\": " + err.Error()}}, last)
			}
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
