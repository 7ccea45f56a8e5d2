#!/usr/bin/env bash
# Writes a kustomization into DIR that installs config/default with the manager image IMG,
# --runner-image=RUNNER_IMG and, when given, --allowed-images=ALLOWED_IMAGES, so that make
# deploy and make build-installer set the images without editing the committed config/
# (kustomize edit would).
#   hack/kustomize-overlay.sh DIR IMG RUNNER_IMG KUSTOMIZE [ALLOWED_IMAGES]
set -euo pipefail
dir=$1 img=$2 runner_img=$3 allowed=${5:-}
kustomize=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$dir"
mkdir -p "$dir"
rel=$(realpath --relative-to="$dir" "$root/config/default")
cat > "$dir/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $rel
patches:
- target:
    kind: Deployment
    name: strategy-operator-controller-manager
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --runner-image=$runner_img
YAML
if [[ -n $allowed ]]; then
	cat >> "$dir/kustomization.yaml" <<YAML
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --allowed-images=$allowed
YAML
fi
(cd "$dir" && "$kustomize" edit set image "controller=$img")
