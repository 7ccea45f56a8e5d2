// Command kube-apiserver is the upstream Kubernetes API server, built from the
// Go module proxy so that tests and the local control plane need no download
// from outside the module proxy.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
