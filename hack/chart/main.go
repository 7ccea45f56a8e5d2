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

// Command chart writes the Helm chart in dist/chart from the kustomize output of config/
// (make chart), so that the chart and config/ never drift: the CRDs, RBAC, policies,
// manager and metrics objects are config/'s, with the values a chart user sets (images,
// replicas, backends, resources, metrics, Prometheus objects, CRDs kept on uninstall)
// turned into template expressions. The files it writes are generated: edit config/ or
// this program, never dist/chart.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// The image references make chart renders config/ with, which become template expressions.
const (
	managerImagePlaceholder = "chart-manager-image:placeholder"
	runnerImagePlaceholder  = "chart-runner-image:placeholder"
	namespace               = "strategy-operator-system"
	namePrefix              = "strategy-operator-"
)

func main() {
	in := flag.String("in", "", "kustomize output of config/default, rendered with the placeholder images")
	prometheus := flag.String("prometheus", "", "kustomize output of config/prometheus")
	out := flag.String("out", "dist/chart", "chart folder to write")
	appVersion := flag.String("app-version", "dev", "the chart's appVersion: the images' default tag")
	flag.Parse()
	if err := run(*in, *prometheus, *out, *appVersion); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// object is one manifest document.
type object = map[string]any

func run(in, prometheus, out, appVersion string) error {
	files := map[string]string{
		"Chart.yaml":             chartYAML(appVersion),
		"values.yaml":            valuesYAML,
		".helmignore":            "*.tgz\n.git/\n",
		"templates/NOTES.txt":    notes,
		"templates/_helpers.tpl": helpers,
	}
	for _, src := range []struct {
		path    string
		wrapAll string
	}{{in, ""}, {prometheus, ".Values.prometheus.enable"}} {
		objects, err := readObjects(src.path)
		if err != nil {
			return err
		}
		for _, o := range objects {
			name, text, err := template(o, src.wrapAll)
			if err != nil {
				return err
			}
			if name != "" {
				files[name] = text
			}
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	for name, text := range files {
		path := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d files into %s\n", len(files), out)
	return nil
}

func readObjects(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []object
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no objects", path)
	}
	return out, nil
}

// ErrUnknownKind: config/ made an object the chart does not know where to put.
var ErrUnknownKind = errors.New("no place in the chart for this kind")

// template is the chart file of one object: its path under the chart and its text, or no
// path for an object the chart leaves out (the namespace: Helm installs into its own).
func template(o object, wrapAll string) (string, string, error) {
	kind, _ := o["kind"].(string)
	meta, _ := o["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	file := strings.TrimPrefix(name, namePrefix)
	var dir, wrap string
	switch kind {
	case "Namespace":
		return "", "", nil
	case "CustomResourceDefinition":
		dir, wrap = "crd", ".Values.crd.enable"
		annotations, _ := meta["annotations"].(map[string]any)
		if annotations == nil {
			annotations = map[string]any{}
			meta["annotations"] = annotations
		}
		annotations["helm.sh/resource-policy"] = "__KEEP__"
	case "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
		dir = "rbac"
		file = strings.ToLower(kind) + "-" + file
	case "Deployment":
		dir = "manager"
		if err := deployment(o); err != nil {
			return "", "", err
		}
	case "Service":
		dir, wrap = "metrics", ".Values.metrics.enable"
	case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
		dir, wrap = "policy", ".Values.policy.enable"
		file = strings.ToLower(kind) + "-" + strings.TrimSuffix(file, ".trading.strategyops.dev")
	case "ServiceMonitor", "PodMonitor", "PrometheusRule":
		dir = "prometheus"
		file = strings.ToLower(kind) + "-" + file
	default:
		return "", "", fmt.Errorf("%w: %s %s", ErrUnknownKind, kind, name)
	}
	if wrapAll != "" {
		wrap = wrapAll
	}
	data, err := yaml.Marshal(o)
	if err != nil {
		return "", "", err
	}
	text := expressions(string(data))
	if wrap != "" {
		text = "{{- if " + wrap + " }}\n" + text + "{{- end }}\n"
	}
	return filepath.Join("templates", dir, file+".yaml"), "# Generated by hack/chart from config/ (make chart): do not edit.\n" + text, nil
}

// deployment marks the manager's fields a chart user sets, for expressions to replace.
func deployment(o object) error {
	spec, _ := o["spec"].(map[string]any)
	spec["replicas"] = "__REPLICAS__"
	tpl, _ := spec["template"].(map[string]any)
	podSpec, _ := tpl["spec"].(map[string]any)
	containers, _ := podSpec["containers"].([]any)
	if len(containers) != 1 {
		return fmt.Errorf("the manager Deployment has %d containers, want 1", len(containers))
	}
	c, _ := containers[0].(map[string]any)
	if c["image"] != managerImagePlaceholder {
		return fmt.Errorf("the manager's image is %v, want the placeholder %s (render config/ with it)", c["image"],
			managerImagePlaceholder)
	}
	c["imagePullPolicy"] = "__PULL_POLICY__"
	c["resources"] = "__RESOURCES__"
	args, _ := c["args"].([]any)
	c["args"] = append(args, "__EXTRA_ARGS__")
	return nil
}

var resourcesLine = regexp.MustCompile(`(?m)^( *)resources: __RESOURCES__$`)
var extraArgsLine = regexp.MustCompile(`(?m)^( *)- __EXTRA_ARGS__$`)
var keepLine = regexp.MustCompile(`(?m)^( *)helm\.sh/resource-policy: __KEEP__$`)

// expressions turns the marks and config/'s fixed values into template expressions.
func expressions(s string) string {
	s = strings.ReplaceAll(s, "app.kubernetes.io/managed-by: kustomize", "app.kubernetes.io/managed-by: {{ .Release.Service }}")
	s = strings.ReplaceAll(s, "namespace: "+namespace, "namespace: {{ .Release.Namespace }}")
	s = strings.ReplaceAll(s, "image: "+managerImagePlaceholder,
		`image: "{{ .Values.manager.image.repository }}:{{ .Values.manager.image.tag | default .Chart.AppVersion }}"`)
	s = strings.ReplaceAll(s, "--runner-image="+runnerImagePlaceholder,
		`--runner-image={{ .Values.runner.image.repository }}:{{ .Values.runner.image.tag | default .Chart.AppVersion }}`)
	s = strings.ReplaceAll(s, "--metrics-bind-address=$(POD_IP):8443",
		"--metrics-bind-address={{ if .Values.metrics.enable }}$(POD_IP):8443{{ else }}0{{ end }}")
	s = strings.ReplaceAll(s, "replicas: __REPLICAS__", "replicas: {{ .Values.manager.replicas }}")
	s = strings.ReplaceAll(s, "imagePullPolicy: __PULL_POLICY__", "imagePullPolicy: {{ .Values.manager.image.pullPolicy }}")
	s = resourcesLine.ReplaceAllStringFunc(s, func(line string) string {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		return fmt.Sprintf("%sresources: {{- toYaml .Values.manager.resources | nindent %d }}", line[:indent], indent+2)
	})
	s = extraArgsLine.ReplaceAllStringFunc(s, func(line string) string {
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		return indent + `- --backends={{ join "," .Values.backends }}` + "\n" +
			indent + "{{- range .Values.manager.args }}\n" + indent + "- {{ . | quote }}\n" + indent + "{{- end }}"
	})
	s = keepLine.ReplaceAllString(s, "${1}{{- if .Values.crd.keep }}\n${1}helm.sh/resource-policy: keep\n${1}{{- end }}")
	return s
}

func chartYAML(appVersion string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Generated by hack/chart (make chart): do not edit.
apiVersion: v2
name: strategy-operator
description: Runs live trading strategies on Kubernetes, resuming every open signal after a crash and never trading one strategy twice.
type: application
version: 0.1.0
appVersion: %q
`, appVersion)
	return b.String()
}
