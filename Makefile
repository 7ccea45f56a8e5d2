# strategy-operator

##@ Versions
# Every pinned tool version lives here. hack/tools/{kube,etcd}/go.mod pin the same Kubernetes
# and etcd versions; hack/build-control-plane.sh refuses to build when they disagree.
K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.6.16
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1
GOLANGCI_LINT_VERSION ?= v2.15.0
# The MongoDB-protocol server the tests start (hack/tools/ferretdb pins the same version).
FERRETDB_VERSION ?= v1.24.2
# promtool, from the Prometheus module, checks and unit-tests the alerting rules (test/alerts).
PROMTOOL_VERSION ?= v0.316.0
# The Helm CLI the e2e suite installs the chart with, built from the module proxy.
HELM_VERSION ?= v4.3.1

##@ Release
# The version stamped into the binaries (--version) and the images' tag; the commit and the
# time of every file in the images come from git, so a rebuild of a commit is identical.
VERSION ?= dev
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# make images builds for these platforms; with REGISTRY it pushes there too.
PLATFORMS ?= linux/amd64,linux/arm64
REGISTRY ?=
IMAGE_PREFIX := $(if $(REGISTRY),$(patsubst %/,%,$(REGISTRY))/,)
# Image of the manager, and the runner image the manager gives to strategies that name none.
IMG ?= $(IMAGE_PREFIX)strategy-operator:$(VERSION)
RUNNER_IMG ?= $(IMAGE_PREFIX)strategy-runner:$(VERSION)
# The other images a Strategy may name (the manager's --allowed-images, comma-separated
# path.Match patterns; "*" is any image). Empty: RUNNER_IMG only.
ALLOWED_IMAGES ?=
CONTAINER_TOOL ?= docker
LDFLAGS := -s -w -X github.com/strategyops/strategy-operator/internal/version.Version=$(VERSION) \
	-X github.com/strategyops/strategy-operator/internal/version.Commit=$(COMMIT)

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(shell pwd)/bin
GOOS := $(shell go env GOOS)
GOARCH := $(shell go env GOARCH)
# The control plane built from source, in the layout setup-envtest uses.
ENVTEST_ASSETS ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-$(GOOS)-$(GOARCH)
KUBECTL ?= $(ENVTEST_ASSETS)/kubectl
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
FERRETDB ?= $(LOCALBIN)/ferretdb-$(FERRETDB_VERSION)
PROMTOOL ?= $(LOCALBIN)/promtool-$(PROMTOOL_VERSION)
HELM ?= $(LOCALBIN)/helm

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and the manager's ClusterRole.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd:allowDangerousTypes=true paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: chart
chart: manifests kustomize ## Write the Helm chart dist/chart from config/ (hack/chart): never edit it by hand.
	hack/kustomize-overlay.sh bin/chart-overlay chart-manager-image:placeholder chart-runner-image:placeholder "$(KUSTOMIZE)"
	"$(KUSTOMIZE)" build bin/chart-overlay > bin/chart-default.yaml
	mkdir -p bin/chart-prometheus
	printf 'namespace: strategy-operator-system\nnamePrefix: strategy-operator-\nresources:\n- ../../config/prometheus\n' \
		> bin/chart-prometheus/kustomization.yaml
	"$(KUSTOMIZE)" build bin/chart-prometheus > bin/chart-prometheus.yaml
	go run ./hack/chart --in bin/chart-default.yaml --prometheus bin/chart-prometheus.yaml --out dist/chart \
		--app-version "$(VERSION)"

.PHONY: verify-generated
verify-generated: manifests generate chart ## Fail when generated files differ from what is committed.
	@git diff --exit-code -- api config dist || { echo "generated files are stale: run 'make manifests generate chart' and commit" >&2; exit 1; }
	@untracked=$$(git ls-files --others --exclude-standard -- api config dist); [ -z "$$untracked" ] || { \
		echo "generated files not committed: $$untracked" >&2; exit 1; }

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet (with the e2e build tag too).
	go vet ./...
	go vet -tags e2e ./test/...

.PHONY: lint
lint: golangci-lint ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run ./...
	"$(GOLANGCI_LINT)" run --build-tags e2e ./test/...

.PHONY: control-plane
control-plane: ## Build etcd, kube-apiserver, kube-controller-manager and kubectl from source (once).
	@hack/build-control-plane.sh $(K8S_VERSION) $(ETCD_VERSION) >/dev/null

.PHONY: sdk-ts
sdk-ts: ## Install and build the backtest-kit adapter package (sdk/backtest-kit: npm ci, whose prepare script runs tsc), and TypeORM for test/sdk.
	@command -v npm >/dev/null 2>&1 || { echo "make test needs Node.js 20 and npm (Debian: apt-get install nodejs npm;" \
		".ci/run installs them)" >&2; exit 1; }
	cd sdk/backtest-kit && npm ci --no-audit --no-fund --loglevel=error
	cd test/sdk/typeorm && npm ci --no-audit --no-fund --loglevel=error

.PHONY: ferretdb
ferretdb: $(FERRETDB) ## Build the MongoDB-protocol test server (FerretDB; the tests run it over PostgreSQL) from source (once).
$(FERRETDB):
	@got=$$(cd hack/tools/ferretdb && go list -m -f '{{.Version}}' github.com/FerretDB/FerretDB); \
		[[ "$$got" == "$(FERRETDB_VERSION)" ]] || { \
		echo "error: hack/tools/ferretdb requires FerretDB $$got but the Makefile pins $(FERRETDB_VERSION)" >&2; exit 1; }
	@echo "building FerretDB $(FERRETDB_VERSION) into $(FERRETDB) (first time only)" >&2
	cd hack/tools/ferretdb && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$(FERRETDB).tmp" .
	mv "$(FERRETDB).tmp" "$(FERRETDB)"

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool (the Prometheus module's, without service discovery) for the alert tests (once).
$(PROMTOOL):
	@got=$$(cd hack/tools/promtool && go list -m -f '{{.Version}}' github.com/prometheus/prometheus); \
		[[ "$$got" == "$(PROMTOOL_VERSION)" ]] || { \
		echo "error: hack/tools/promtool requires Prometheus $$got but the Makefile pins $(PROMTOOL_VERSION)" >&2; exit 1; }
	@echo "building promtool $(PROMTOOL_VERSION) into $(PROMTOOL) (first time only)" >&2
	cd hack/tools/promtool && CGO_ENABLED=0 go build -tags remove_all_sd -trimpath -ldflags "-s -w" \
		-o "$(PROMTOOL).tmp" github.com/prometheus/prometheus/cmd/promtool
	mv "$(PROMTOOL).tmp" "$(PROMTOOL)"

##@ Test

.PHONY: test
test: verify-generated vet lint test-unit test-soak failover-drill test-e2e ## The whole suite: generated files, vet, lint, unit + envtest, soak (short), the failover drill, e2e.

# The runner's crash-equivalence test re-runs its own test binary hundreds of times and is
# I/O-bound; the race detector would make it ten times slower and adds nothing about
# crash safety, so that package runs without it.
RACE_FREE_PKGS := ./internal/runner/...

# The database stores' tests start their own servers from Debian's packages; say how to get
# them before a long run fails on their absence.
.PHONY: test-servers
test-servers: ## Check that the database servers the tests start (PostgreSQL, Redis) are installed.
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1 || { \
		echo "make test needs PostgreSQL's server: apt-get install --no-install-recommends postgresql" \
			"(.ci/run installs it)" >&2; exit 1; }
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "make test needs Redis: apt-get install --no-install-recommends redis-server (.ci/run installs it)" >&2; \
		exit 1; }

.PHONY: test-unit
test-unit: control-plane test-servers ferretdb promtool helm sdk-ts ## Unit and envtest suites on a real kube-apiserver and etcd.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" FERRETDB="$(FERRETDB)" PROMTOOL="$(PROMTOOL)" HELM="$(HELM)" go test $$(go list ./... | grep -v -e '/internal/runner$$' -e /test/soak -e /test/failover) -count=1 -race -timeout 30m
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" FERRETDB="$(FERRETDB)" go test $(RACE_FREE_PKGS) -count=1 -timeout 30m -v
	cd examples/store-driver && go vet ./... && go test ./... -count=1 -race -v
	cd test/docs && go vet ./... && go test ./... -count=1 -v

# The soak drives one symbol through SOAK_SIGNALS signals on every backend, each with a runner
# process and the manager binary beside it, the backends side by side: make test runs 1,000,
# make soak 10,000.
SOAK_SIGNALS ?= 1000
SOAK_TIMEOUT ?= 30m

.PHONY: test-soak
test-soak: control-plane test-servers ferretdb build ## Bounded state and a flat runner heap over SOAK_SIGNALS signals per backend.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" FERRETDB="$(FERRETDB)" SOAK_SIGNALS=$(SOAK_SIGNALS) \
		go test ./test/soak/ -count=1 -timeout $(SOAK_TIMEOUT) -parallel 6 -v

# The drill of the loss of a whole cluster: two local clusters, each with its own control
# plane and manager binary, share one database (PostgreSQL, Redis, MongoDB side by side).
.PHONY: failover-drill
failover-drill: control-plane test-servers ferretdb build ## Lose a cluster: another takes its strategies over from the shared database, and the lost one stays out.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" FERRETDB="$(FERRETDB)" go test ./test/failover/ -count=1 -timeout 40m -v

STRESS_RUNS ?= 5

.PHONY: test-stress
test-stress: ## make test-unit STRESS_RUNS times in a row (5) while a busy loop per core loads the machine; stops at the first failure.
	hack/stress.sh $(STRESS_RUNS) $(MAKE) --no-print-directory test-unit

.PHONY: soak
soak: ## The soak at 10,000 signals per backend.
	$(MAKE) test-soak SOAK_SIGNALS=10000 SOAK_TIMEOUT=240m

# The e2e suite runs the images on this machine: it builds them for this machine's platform
# only (make images builds every one of PLATFORMS), and pushes nothing.
test-e2e: PLATFORMS = linux/$(GOARCH)
test-e2e: REGISTRY =
run-local-setup: PLATFORMS = linux/$(GOARCH)
run-local-setup: REGISTRY =
# run-local's node pulls from its own registry only, which holds the images built here and
# those make local-image puts there: a Strategy may name any of them.
run-local-manifests: ALLOWED_IMAGES = *

.PHONY: test-e2e
test-e2e: control-plane build images ferretdb kustomize controller-gen helm ## End to end through real processes, kubectl and helm.
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" KUBECTL="$(KUBECTL)" FERRETDB="$(FERRETDB)" HELM="$(HELM)" go test -tags e2e ./test/e2e/ -count=1 -timeout 30m -v -ginkgo.v

##@ Build

# Static and trimmed like the images' binaries, so that make images reuses the compiled packages.
.PHONY: build
build: ## Build the manager, the runner, the kubectl plugin (kubectl-strategy), the Go SDK's example strategy and run-local.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/manager ./cmd/runner ./cmd/kubectl-strategy ./examples/go-strategy ./hack/local
	mv bin/local bin/run-local

.PHONY: images
images: ## Build the manager, runner and example-strategy images for PLATFORMS into bin/images (OCI layout); push to REGISTRY if set.
	go run ./hack/images --platforms "$(PLATFORMS)" --version "$(VERSION)" --commit "$(COMMIT)" \
		--source-date-epoch "$(SOURCE_DATE_EPOCH)" --out bin/images $(if $(REGISTRY),--registry "$(REGISTRY)")

# The build's lines go to stderr and make prints nothing after it, so that stdout carries
# run-local's own lines alone: make run-local | head shows them, and no broken pipe kills
# make before run-local starts (run-local itself shrugs off a reader that went away).
.PHONY: run-local
run-local: ## Start a local control plane, a registry with the images, the operator and the samples; pods run as local processes.
	@$(MAKE) --no-print-directory run-local-setup >&2
	@FERRETDB="$(FERRETDB)" bin/run-local --assets "$(ENVTEST_ASSETS)" --install bin/run-local.yaml --images bin/images

.PHONY: local-image
local-image: build ## Put an image IMAGE (name:tag) into make run-local's registry LOCAL_REGISTRY: the folder DIR (your bot) at /app, and bin/runner (or BINARY, your Go SDK program) as its entrypoint; no container engine needed.
	bin/run-local image --registry "$(LOCAL_REGISTRY)" --dir "$(DIR)" --image "$(IMAGE)" --runner "$(or $(BINARY),bin/runner)"

.PHONY: run-local-setup
run-local-setup: control-plane build images ferretdb run-local-manifests

.PHONY: run-local-manifests
run-local-manifests: kustomize ## Write bin/run-local.yaml, what make run-local installs.
	hack/kustomize-overlay.sh bin/run-local-overlay "strategy-operator:$(VERSION)" "strategy-runner:$(VERSION)" "$(KUSTOMIZE)" "$(ALLOWED_IMAGES)"
	"$(KUSTOMIZE)" build bin/run-local-overlay > bin/run-local.yaml

.PHONY: docker-build
docker-build: ## Build the manager and runner images with a container engine (make images needs none).
	$(CONTAINER_TOOL) build --target manager --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMG) .
	$(CONTAINER_TOOL) build --target runner --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(RUNNER_IMG) .

.PHONY: build-installer
build-installer: manifests kustomize ## Write dist/install.yaml: the CRDs, RBAC, policies and the manager (IMG, RUNNER_IMG).
	hack/kustomize-overlay.sh bin/overlay "$(IMG)" "$(RUNNER_IMG)" "$(KUSTOMIZE)" "$(ALLOWED_IMAGES)"
	mkdir -p dist
	"$(KUSTOMIZE)" build bin/overlay > dist/install.yaml

##@ Deployment

.PHONY: install
install: manifests ## Install the CRDs into the cluster of the current kubeconfig.
	"$(KUBECTL)" apply -k config/crd

.PHONY: uninstall
uninstall: manifests ## Remove the CRDs from the cluster of the current kubeconfig.
	"$(KUBECTL)" delete --ignore-not-found -k config/crd

.PHONY: deploy
deploy: manifests kustomize ## Deploy the manager (IMG, RUNNER_IMG) to the cluster of the current kubeconfig.
	hack/kustomize-overlay.sh bin/overlay "$(IMG)" "$(RUNNER_IMG)" "$(KUSTOMIZE)" "$(ALLOWED_IMAGES)"
	"$(KUSTOMIZE)" build bin/overlay | "$(KUBECTL)" apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the manager, and the CRDs with every Strategy and state, from the cluster of the current kubeconfig.
	"$(KUSTOMIZE)" build config/default | "$(KUBECTL)" delete --ignore-not-found -f -

##@ Dependencies

$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

.PHONY: controller-gen
controller-gen: $(LOCALBIN) ## Install controller-gen into bin/ if necessary.
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(LOCALBIN) ## Install kustomize into bin/ if necessary.
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

.PHONY: helm
helm: $(LOCALBIN) ## Install the Helm CLI into bin/ if necessary.
	$(call go-install-tool,$(HELM),helm.sh/helm/v4/cmd/helm,$(HELM_VERSION))

.PHONY: golangci-lint
golangci-lint: $(LOCALBIN) ## Install golangci-lint into bin/ if necessary.
	$(call go-install-tool,$(GOLANGCI_LINT),github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

# go-install-tool installs $(2)@$(3) as $(1)-$(3) and links $(1) to it, once per version.
define go-install-tool
@[ -f "$(1)-$(3)" ] && [ "$$(readlink -- "$(1)" 2>/dev/null)" = "$(1)-$(3)" ] || { \
set -e; \
echo "installing $(2)@$(3)"; \
rm -f "$(1)"; \
GOBIN="$(LOCALBIN)" go install $(2)@$(3); \
mv "$(LOCALBIN)/$$(basename "$(1)")" "$(1)-$(3)"; \
}; \
ln -sf "$(1)-$(3)" "$(1)"
endef

##@ Benchmarks

BENCH_COUNT ?= 3
# Each section's rows are collected here, and printed as one table at the end.
BENCH_TABLE_FILE = bin/bench-table.tsv
BENCH_TABLE = -table $(BENCH_TABLE_FILE)

.PHONY: bench
bench: control-plane build ferretdb ## Run the benchmarks and print each figure beside its same-run baseline, as a ratio.
	@mkdir -p bin && rm -f $(BENCH_TABLE_FILE)
	go test ./internal/persist/filestore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-filestore.txt
	@echo
	@echo "file store, beside the same write in a plain loop and backtest-kit 19.5.0's own file persistence under Node (median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'File' -in bin/bench-filestore.txt \
		-ratio 'FileStoreSequential/RawLoopSequential>=0.9' \
		-ratio 'FileStoreConcurrent64/RawLoopConcurrent64' \
		-ratio 'FileStoreConcurrent64/RawLoopSequential' \
		-floor 'FileStoreConcurrent64>=6000' \
		-ratio 'FileStoreSequential/BacktestKitOneKey>=1.3' \
		-ratio 'FileStoreConcurrent64/BacktestKitConcurrent64>=5'
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./internal/persist/configmapstore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-configmap.txt
	@echo
	@echo "ConfigMap store on a real API server (median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'ConfigMap' -in bin/bench-configmap.txt \
		-ratio 'StoreOneKey/RawUpdateOneKey>=0.9' \
		-floor 'Store16Strategies>=1000' \
		-ratio 'Store100Symbols/RawUpdate100Symbols' -floor 'Store100Symbols>=5000' \
		-ratio 'Store16Contending/RetryOnConflict16Contending'
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'ConfigMap' -in bin/bench-configmap.txt -metric failed \
		-ceiling 'Store16Contending<=0' -show 'RetryOnConflict16Contending'
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./internal/persist/strategystatestore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-strategystate.txt
	@echo
	@echo "StrategyState store on a real API server (median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'StrategyState' -in bin/bench-strategystate.txt \
		-ratio 'StrategyState16Strategies/RawUpdateStrategyState16' -floor 'StrategyState16Strategies>=1000'
	go test ./internal/persist/redisstore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-redis.txt
	@echo
	@echo "Redis store on a server the benchmark starts (append-only file, fsync always; median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'Redis' -in bin/bench-redis.txt \
		-ratio 'StoreOneKey/RawSetOneKey>=0.9' \
		-ratio 'Store16Strategies/RawSetOneKey>=3' \
		-ratio 'Store16Strategies/RawSet16Strategies' -floor 'Store16Strategies>=1000' \
		-ratio 'Store16Strategies/Store16StrategiesUnbatched' \
		-ratio 'Store100Symbols/RawSet100Symbols'
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'Redis' -in bin/bench-redis.txt -metric reads/s \
		-ratio 'CachedReads1KiB/BareReads1KiB' -ratio 'CachedReads256KiB/BareReads256KiB'
	go test ./internal/persist/pgstore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-postgresql.txt
	@echo
	@echo "PostgreSQL store on a server the benchmark starts (fsync, synchronous commit; median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'PostgreSQL' -in bin/bench-postgresql.txt \
		-ratio 'StoreOneKey/RawUpsertOneKey>=0.9' \
		-ratio 'Store16Strategies/RawUpsertOneKey>=3' \
		-ratio 'Store16Strategies/RawUpsert16Strategies' -floor 'Store16Strategies>=1000' \
		-ratio 'Store16Strategies/Store16StrategiesUnbatched' \
		-ratio 'Store100Symbols/RawUpsert100Symbols'
	FERRETDB="$(FERRETDB)" go test ./internal/persist/mongostore -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-mongodb.txt
	@echo
	@echo "MongoDB store on FerretDB over PostgreSQL, servers the benchmark starts (fsync, synchronous commit; median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'MongoDB' -in bin/bench-mongodb.txt \
		-ratio 'StoreOneKey/RawUpsertOneKey>=0.9' \
		-ratio 'Store16Strategies/RawUpsertOneKey>=3' \
		-ratio 'Store16Strategies/RawUpsert16Strategies' -floor 'Store16Strategies>=1000' \
		-ratio 'Store100Symbols/RawUpsert100Symbols'
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./internal/stateserver -run '^$$' -bench . -benchtime 2s -count $(BENCH_COUNT) | tee bin/bench-endpoint.txt
	@echo
	@echo "runner exec's state API (HTTP on a Unix socket) beside the same write in-process (median of $(BENCH_COUNT) runs):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'runner exec API' -in bin/bench-endpoint.txt \
		-ratio 'EndpointFile/InProcessFile>=0.8' -ratio 'EndpointConfigMap/InProcessConfigMap>=0.9'
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./test/scale -run '^$$' -bench 'Scale(1000Strategies|5000Strategies|10000States)$$' \
		-benchtime 1x -count 1 -timeout 60m | tee bin/bench-scale.txt
	@echo
	@echo "Strategies applied at once, the manager as its own process: 1,000 and 5,000 of one symbol, 5,000 of two (10,000 StrategyStates):"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'scale' -in bin/bench-scale.txt -metric s-to-reconcile -ceiling 'Scale1000Strategies<=60' \
		-show 'Scale5000Strategies' -show 'Scale10000States' -ratio 'Scale5000Strategies/Scale1000Strategies'
	@echo "5x the Strategies in at most 6x the time (5x, +20% for a larger etcd and API server): Strategies/s at 5,000 >= 0.83x of 1,000:"
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'scale' -in bin/bench-scale.txt -metric strategies/s -ratio 'Scale5000Strategies/Scale1000Strategies>=0.83'
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'scale' -in bin/bench-scale.txt -metric MiB-peak-rss -ceiling 'Scale10000States<=200' \
		-show 'Scale1000Strategies' -show 'Scale5000Strategies'
	KUBEBUILDER_ASSETS="$(ENVTEST_ASSETS)" go test ./test/scale -run '^$$' -bench 'ScaleLoaded(1000|10000)States$$' \
		-benchtime 1x -count 1 -timeout 60m | tee bin/bench-scale-loaded.txt
	@echo
	@echo "Loaded: the manager under its own ServiceAccount and ClusterRole, metrics on, while a generator plays every runner for two"
	@echo "minutes (a Lease renewal per Strategy every 2 s, a StrategyState write per symbol per one-minute candle); 500 and 5,000"
	@echo "Strategies of two symbols. Linear from 1,000 to 10,000 StrategyStates: the 1,000 figure at least a tenth of the 10,000 one:"
	@for m in MiB-peak-rss manager-millicores s-to-reconcile; do \
		go run ./hack/benchratio $(BENCH_TABLE) -section 'loaded scale' -in bin/bench-scale-loaded.txt -metric $$m \
			-ratio 'ScaleLoaded1000States/ScaleLoaded10000States>=0.1' || exit 1; done
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'loaded scale' -in bin/bench-scale-loaded.txt -metric MiB-peak-rss -ceiling 'ScaleLoaded10000States<=200'
	@go run ./hack/benchratio $(BENCH_TABLE) -section 'loaded scale' -in bin/bench-scale-loaded.txt -metric manager-millicores -ceiling 'ScaleLoaded10000States<=500'
	@for m in api-requests/s write-p50-ms write-p99-ms queue-depth-max renewals/s renewals/s-meant writes/s writes/s-meant load-errors; do \
		go run ./hack/benchratio $(BENCH_TABLE) -section 'loaded scale' -in bin/bench-scale-loaded.txt -metric $$m \
			-show 'ScaleLoaded1000States' -show 'ScaleLoaded10000States' || exit 1; done
	@echo
	@echo "Every figure of this run, with its baseline from the same run and its goal:"
	@go run ./hack/benchratio -print $(BENCH_TABLE_FILE)
