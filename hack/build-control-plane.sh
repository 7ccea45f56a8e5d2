#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager,
# kubectl) from the Go module proxy into bin/k8s/<version>-<os>-<arch>/, the
# layout setup-envtest uses, so envtest and the e2e suite find it through
# KUBEBUILDER_ASSETS. Binaries already present are kept.
#
# Usage: hack/build-control-plane.sh [K8S_VERSION [ETCD_VERSION]]
# The versions default to the ones pinned in the Makefile; the wrapper modules
# under hack/tools pin the same versions and this script refuses a mismatch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
k8s_version=${1:-${K8S_VERSION:?set K8S_VERSION or pass it as the first argument}}
etcd_version=${2:-${ETCD_VERSION:?set ETCD_VERSION or pass it as the second argument}}
goos=$(go env GOOS)
goarch=$(go env GOARCH)
out=${CONTROL_PLANE_DIR:-$root/bin/k8s/$k8s_version-$goos-$goarch}
mkdir -p "$out"

pinned() { # module dir, module path -> version in that module's build list
	(cd "$1" && go list -m -f '{{.Version}}' "$2")
}

check_pin() {
	local dir=$1 mod=$2 want=$3 got
	got=$(pinned "$dir" "$mod")
	if [[ "$got" != "$want" ]]; then
		echo "error: $dir requires $mod $got but the Makefile pins $want; update one of them" >&2
		exit 1
	fi
}

version_flags="-s -w \
 -X k8s.io/component-base/version.gitVersion=v$k8s_version \
 -X k8s.io/component-base/version.gitMajor=${k8s_version%%.*} \
 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$k8s_version") \
 -X k8s.io/component-base/version.gitTreeState=clean"

build() { # module dir, package, binary name, ldflags
	local dir=$1 pkg=$2 name=$3 ldflags=$4
	if [[ -x "$out/$name" ]]; then
		return 0
	fi
	echo "building $name into $out (first time only; a few minutes on 2 cores)" >&2
	local start=$SECONDS
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/.$name.tmp" "$pkg")
	mv "$out/.$name.tmp" "$out/$name"
	echo "built $name in $((SECONDS - start))s" >&2
}

check_pin "$root/hack/tools/etcd" go.etcd.io/etcd/server/v3 "v$etcd_version"
check_pin "$root/hack/tools/kube" k8s.io/kubernetes "v$k8s_version"

build "$root/hack/tools/etcd" . etcd "-s -w"
build "$root/hack/tools/kube" ./kubectl kubectl "$version_flags"
build "$root/hack/tools/kube" ./kube-apiserver kube-apiserver "$version_flags"
build "$root/hack/tools/kube" ./kube-controller-manager kube-controller-manager "$version_flags"
echo "$out"
