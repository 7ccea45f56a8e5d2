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

package controller

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/strategyops/strategy-operator/internal/names"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/strategyops/strategy-operator/api/v1alpha1"
)

// AnyImage, as a pattern of --allowed-images, lets a Strategy name any image (a
// path.Match "*" stops at a slash, so it would not on its own).
const AnyImage = "*"

// imageRefused says why spec.image may not run ("" when it may).
func (r *StrategyReconciler) imageRefused(s *v1.Strategy) string {
	image := s.Spec.Image
	if image == "" || image == r.RunnerImage {
		return ""
	}
	for _, pattern := range r.AllowedImages {
		if ok, _ := path.Match(pattern, image); ok || pattern == AnyImage {
			return ""
		}
	}
	allowed := r.RunnerImage
	if len(r.AllowedImages) > 0 {
		allowed += ", " + strings.Join(r.AllowedImages, ", ")
	}
	return fmt.Sprintf("spec.image %q is not among the images this operator runs (%s; the operator's "+
		"--allowed-images lists more); no pod runs, the state is kept", image, allowed)
}

func (r *StrategyReconciler) getPod(ctx context.Context, s *v1.Strategy) (*corev1.Pod, error) {
	var pod corev1.Pod
	err := r.Client.Get(ctx, objectKey(s, RunnerName(s)), &pod)
	if apierrors.IsNotFound(err) || (err == nil && !ours(s, &pod)) {
		return nil, nil
	}
	return &pod, err
}

// podGone reports whether the runner pod of s is gone. A direct read: the cache may still
// hold a pod that is gone, or miss one just made, or one of s whose labels were taken
// off (the cache holds only labelled ones), which is deleted here, as stopPod would have.
// A pod of the runner's name that is not the operator's (ours) is not a runner of s: it
// counts as gone, and is left alone (ensurePod then cannot create the runner's, and says
// why).
func (r *StrategyReconciler) podGone(ctx context.Context, s *v1.Strategy) (bool, error) {
	var pod corev1.Pod
	err := r.StateClient.Get(ctx, objectKey(s, RunnerName(s)), &pod)
	if apierrors.IsNotFound(err) || (err == nil && !ours(s, &pod)) {
		return true, nil
	}
	if err == nil && pod.DeletionTimestamp.IsZero() && !managed(&pod) {
		r.event(s, corev1.EventTypeNormal, ReasonStoppingPod, fmt.Sprintf("deleting pod %s", pod.Name))
		err = objectErr("deleting", &pod, client.IgnoreNotFound(r.StateClient.Delete(ctx, &pod,
			client.Preconditions{UID: &pod.UID})))
	}
	return false, err
}

// errNameTaken: an object of one of the runner's names exists, made by someone else.
var errNameTaken = errors.New("name taken")

// nameTaken is errNameTaken for obj, saying what to do.
func nameTaken(obj client.Object) error {
	return fmt.Errorf("%w: %s %s exists and was not made by strategy-operator for this Strategy; "+
		"it is left alone, and the strategy runs once it is deleted", errNameTaken, kindOf(obj), obj.GetName())
}

// ours reports whether obj, found under one of the runner's names of s, is the operator's
// to change or delete for s: controlled by s, or labelled by the operator for a Strategy
// of this name (an earlier one of the same name, or a claim kept by retention Retain).
// Anything else someone else made, and the operator neither rewrites nor deletes it: a
// user who may create Strategies must not reach, through a Strategy's names, a Role, a
// binding, a pod or a claim they could not change themselves.
func ours(s *v1.Strategy, obj client.Object) bool {
	return metav1.IsControlledBy(obj, s) ||
		(managed(obj) && obj.GetLabels()[LabelStrategyObject] == names.LabelValue(s.Name))
}

// nameTakenRetry is how often a Strategy stopped for a name taken is looked at again: the
// object in the way, without the operator's labels, is not in the cache, and its deletion
// wakes nothing.
const nameTakenRetry = 10 * time.Second

// stopIfNameTaken stops the strategy, Failed with reason NameTaken, when err says an object
// of the runner's names is someone else's; any other err is returned as it is.
func (r *StrategyReconciler) stopIfNameTaken(ctx context.Context, sc *scope, err error) (ctrl.Result, error) {
	if !errors.Is(err, errNameTaken) {
		return ctrl.Result{}, err
	}
	if err := r.stopPod(ctx, sc.strategy); err != nil {
		return ctrl.Result{}, err
	}
	setCondition(sc.strategy, v1.ConditionDegraded, true, ReasonNameTaken, err.Error())
	r.setStopped(sc, v1.StrategyFailed, ReasonNameTaken, err.Error())
	return ctrl.Result{RequeueAfter: nameTakenRetry}, nil
}

func (r *StrategyReconciler) stopPod(ctx context.Context, s *v1.Strategy) error {
	pod, err := r.getPod(ctx, s)
	if err != nil || pod == nil || !pod.DeletionTimestamp.IsZero() {
		return err
	}
	r.event(s, corev1.EventTypeNormal, ReasonStoppingPod, fmt.Sprintf("deleting pod %s", pod.Name))
	// This pod, not another made under its name since the cache read it.
	return objectErr("deleting", pod, client.IgnoreNotFound(r.Client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})))
}

// ensurePod keeps exactly one pod of the current template. A pod of an older template, or
// one that ended, is deleted, and the new one is created only once the old one is gone.
func (r *StrategyReconciler) ensurePod(ctx context.Context, sc *scope) (ctrl.Result, error) {
	s := sc.strategy
	want := desiredPod(s, sc.activePlace(), r.RunnerImage, sc.draining)
	pod, err := r.getPod(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if pod != nil {
		ended := pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
		outdated := pod.Annotations[AnnotationTemplateHash] != want.Annotations[AnnotationTemplateHash] && !sc.holdPod
		if !pod.DeletionTimestamp.IsZero() || ended || outdated {
			if err := r.stopPod(ctx, s); err != nil {
				return ctrl.Result{}, err
			}
			s.Status.PodName = ""
			setCondition(s, v1.ConditionReady, false, ReasonPodReplacing, "replacing the pod; the new one starts once the old one is gone")
			meta.RemoveStatusCondition(&s.Status.Conditions, v1.ConditionTrading)
			s.Status.Phase = v1.StrategyPending
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		r.setPodStatus(sc, pod)
		return ctrl.Result{RequeueAfter: statusRefresh}, nil
	}
	if gone, err := r.podGone(ctx, s); err != nil || !gone {
		return ctrl.Result{RequeueAfter: time.Second}, err
	}
	if err := controllerutil.SetControllerReference(s, want, r.Scheme); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, want); err != nil {
		if apierrors.IsAlreadyExists(err) {
			var cur corev1.Pod
			if err := r.StateClient.Get(ctx, client.ObjectKeyFromObject(want), &cur); err == nil && !ours(s, &cur) {
				return ctrl.Result{}, nameTaken(&cur)
			}
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, objectErr("creating", want, err)
	}
	r.event(s, corev1.EventTypeNormal, ReasonCreatedPod, fmt.Sprintf("created pod %s", want.Name))
	r.setPodStatus(sc, want)
	return ctrl.Result{RequeueAfter: statusRefresh}, nil
}
