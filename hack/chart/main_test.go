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
		"        - --backends={{ join \",\" .Values.backends }}\n        {{- range .Values.manager.args }}",
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
