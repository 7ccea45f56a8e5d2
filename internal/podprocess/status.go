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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// report writes the container's state into the pod's status, with the phase and
// conditions that follow from it.
func (k *Kubelet) report(pod *corev1.Pod, c corev1.Container, id string, restarts int32, state corev1.ContainerState,
	last *corev1.ContainerStateTerminated) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ready := state.Running != nil
	cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: k.imageID(c.Image), RestartCount: restarts,
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
		ip := k.podIP(pod.UID)
		cur.Status.HostIP, cur.Status.PodIP = localhost, ip
		cur.Status.HostIPs, cur.Status.PodIPs = []corev1.HostIP{{IP: localhost}}, []corev1.PodIP{{IP: ip}}
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
