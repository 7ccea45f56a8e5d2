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

// Command kubectl-strategy is a kubectl plugin (on the PATH, kubectl runs it as
// `kubectl strategy`): `kubectl strategy status NAME` shows a Strategy as a trader reads it,
// with its signals, prices, PnL, Lease holder and fencing token, and latest events.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strategyops/strategy-operator/internal/scheme"
	"github.com/strategyops/strategy-operator/internal/strategyview"
)

const usage = `kubectl strategy status NAME [flags]: a Strategy as a trader reads it: its conditions,
the Lease's holder and fencing token, each symbol's signal with its prices and age, the
last close with its PnL, and its latest events.

Flags:
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kubectl strategy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", "", "the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	kubeContext := fs.String("context", "", "the kubeconfig context (default: its current one)")
	var namespace string
	fs.StringVar(&namespace, "namespace", "", "the Strategy's namespace (default: the context's)")
	fs.StringVar(&namespace, "n", "", "shorthand for --namespace")
	fs.Usage = func() {
		_, _ = fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	// Flags may come before, between or after the words.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		words, args = append(words, fs.Arg(0)), fs.Args()[1:]
	}
	if len(words) != 2 || words[0] != "status" {
		fs.Usage()
		return fmt.Errorf("want: kubectl strategy status NAME, got %q", words)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	config := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: *kubeContext})
	if namespace == "" {
		var err error
		if namespace, _, err = config.Namespace(); err != nil {
			return err
		}
	}
	cfg, err := config.ClientConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return strategyview.Show(ctx, c, namespace, words[1], time.Now(), stdout)
}
