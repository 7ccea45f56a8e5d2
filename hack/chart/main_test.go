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

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, doc string) object {
	t.Helper()
	var o object
	if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

const deploymentDoc = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: strategy-operator-controller-manager
  namespace: strategy-operator-system
  labels: {app.kubernetes.io/managed-by: kustomize}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: manager
        image: chart-manager-image:placeholder
        args: ["--metrics-bind-address=[$(POD_IP)]:8443", --leader-elect, --runner-image=chart-runner-image:placeholder]
        resources: {limits: {memory: 384Mi}}
`

func TestTheManagerDeploymentTakesItsValues(t *testing.T) {
	path, text, err := template(parse(t, deploymentDoc), "")
	if err != nil {
		t.Fatal(err)
	}
	if path != "templates/manager/controller-manager.yaml" {
		t.Errorf("path %s", path)
	}
	for _, want := range []string{
		"namespace: {{ .Release.Namespace }}",
		"app.kubernetes.io/managed-by: {{ .Release.Service }}",
		"replicas: {{ .Values.manager.replicas }}",
		`image: "{{ .Values.manager.image.repository }}:{{ .Values.manager.image.tag | default .Chart.AppVersion }}"`,
		"imagePullPolicy: {{ .Values.manager.image.pullPolicy }}",
		"- --runner-image={{ .Values.runner.image.repository }}:{{ .Values.runner.image.tag | default .Chart.AppVersion }}",
		"- --metrics-bind-address={{ if .Values.metrics.enable }}[$(POD_IP)]:8443{{ else }}0{{ end }}",
		"        - --backends={{ join \",\" .Values.backends }}\n        {{- if .Values.runner.allowedImages }}\n" +
			"        - {{ printf \"--allowed-images=%s\" (join \",\" .Values.runner.allowedImages) | quote }}\n" +
			"        {{- end }}\n" +
			"        {{- if .Values.watchNamespaces }}\n" +
			"        - --watch-namespaces={{ join \",\" .Values.watchNamespaces }}\n        {{- end }}\n" +
			"        {{- range .Values.manager.args }}",
		"        resources: {{- toYaml .Values.manager.resources | nindent 10 }}",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the template lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "__") || strings.Contains(text, "placeholder") || strings.Contains(text, "384Mi") {
		t.Errorf("a mark or a fixed value is left:\n%s", text)
	}
}

func TestTheManagerMustUseThePlaceholderImage(t *testing.T) {
	doc := strings.Replace(deploymentDoc, "chart-manager-image:placeholder", "strategy-operator:dev", 1)
	if _, _, err := template(parse(t, doc), ""); err == nil || !strings.Contains(err.Error(), "placeholder") {
		t.Errorf("a manager rendered with a real image: got %v, want an error asking for the placeholder", err)
	}
	doc = strings.Replace(deploymentDoc, ", --runner-image=chart-runner-image:placeholder", "", 1)
	if _, _, err := template(parse(t, doc), ""); err == nil || !strings.Contains(err.Error(), "--runner-image") {
		t.Errorf("a manager without the runner image: got %v, want an error naming --runner-image", err)
	}
}

func TestCRDsAreKeptAndNamespacesLeftToHelm(t *testing.T) {
	path, text, err := template(parse(t, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: strategies.trading.strategyops.dev}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if path != "templates/crd/strategies.trading.strategyops.dev.yaml" || !strings.HasPrefix(text, generatedHeader+
		"{{- if .Values.crd.enable }}\n") || !strings.Contains(text,
		"    {{- if .Values.crd.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n") {
		t.Errorf("CRD at %s:\n%s", path, text)
	}
	path, _, err = template(parse(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"), "")
	if path != "" || err != nil {
		t.Errorf("the Namespace went to %q, %v; want left out", path, err)
	}
	_, _, err = template(parse(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n"), "")
	if !errors.Is(err, ErrUnknownKind) {
		t.Errorf("a Secret: got %v, want ErrUnknownKind", err)
	}
	_, text, err = template(parse(t, "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\n"+
		"spec: {summary: 'Strategy {{ $labels.strategy }} stalled'}\n"), ".Values.prometheus.enable")
	if err != nil || !strings.Contains(text, "{{- if .Values.prometheus.enable }}") ||
		!strings.Contains(text, `Strategy {{ "{{" }} $labels.strategy {{ "}}" }} stalled`) {
		t.Errorf("a PrometheusRule: %v\n%s", err, text)
	}
}

// helmTemplate renders dist/chart with the Helm CLI ($HELM, which make test-unit builds)
// and the values given, and returns its objects by kind and name (namespace/name when
// namespaced).
func helmTemplate(t *testing.T, set ...string) map[string]object {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run make helm, and HELM=bin/helm (make test-unit sets it)")
	}
	args := make([]string, 0, 5+2*len(set))
	args = append(args, "template", "strategy-operator", filepath.Join("..", "..", "dist", "chart"),
		"--namespace", "operator")
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objects := map[string]object{}
	for doc := range strings.SplitSeq(string(out), "\n---\n") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("helm template printed %v:\n%s", err, doc)
		}
		if len(o) == 0 {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		if ns, _ := meta["namespace"].(string); ns != "" {
			name = ns + "/" + name
		}
		objects[o["kind"].(string)+" "+name] = o
	}
	return objects
}

func managerArgs(t *testing.T, objects map[string]object) []any {
	t.Helper()
	d, ok := objects["Deployment operator/strategy-operator-controller-manager"]
	if !ok {
		t.Fatal("no manager Deployment")
	}
	c := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0]
	return c.(map[string]any)["args"].([]any)
}

// TestNamespacedInstall: with watchNamespaces, the chart binds the manager's ClusterRole in
// each of those namespaces only, never cluster-wide, and tells the manager to watch them;
// without, the binding is cluster-wide and the manager watches every namespace.
func TestNamespacedInstall(t *testing.T) {
	const binding = "strategy-operator-manager-rolebinding"
	all := helmTemplate(t)
	if _, ok := all["ClusterRoleBinding "+binding]; !ok {
		t.Error("the default install has no cluster-wide binding of the manager's rules")
	}
	for key := range all {
		if strings.HasPrefix(key, "RoleBinding ") && strings.HasSuffix(key, "/"+binding) {
			t.Errorf("the default install has %s", key)
		}
	}
	watching := func(a any) bool { return strings.HasPrefix(a.(string), "--watch-namespaces") }
	if slices.ContainsFunc(managerArgs(t, all), watching) {
		t.Errorf("the default install's manager watches some namespaces only: %v", managerArgs(t, all))
	}

	scoped := helmTemplate(t, "watchNamespaces={team-a,team-b}")
	if _, ok := scoped["ClusterRoleBinding "+binding]; ok {
		t.Error("the namespace-scoped install binds the manager's rules cluster-wide")
	}
	for _, ns := range []string{"team-a", "team-b"} {
		rb, ok := scoped["RoleBinding "+ns+"/"+binding]
		if !ok {
			t.Errorf("the namespace-scoped install does not bind the manager's rules in %s", ns)
			continue
		}
		ref := rb["roleRef"].(map[string]any)
		subject := rb["subjects"].([]any)[0].(map[string]any)
		if ref["kind"] != "ClusterRole" || ref["name"] != "strategy-operator-manager-role" ||
			subject["name"] != "strategy-operator-controller-manager" || subject["namespace"] != "operator" {
			t.Errorf("the RoleBinding in %s binds %v to %v", ns, ref, subject)
		}
	}
	if !slices.Contains(managerArgs(t, scoped), any("--watch-namespaces=team-a,team-b")) {
		t.Errorf("the namespace-scoped install's manager args: %v, want --watch-namespaces=team-a,team-b",
			managerArgs(t, scoped))
	}
}
