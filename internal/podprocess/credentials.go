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
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// tokenLifetime is how long a pod's ServiceAccount token is valid; it is renewed at 80 %.
const tokenLifetime = time.Hour

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
