# The manager and runner images, for people with a container engine (make docker-build).
# `make images` builds the same images without one (hack/images); this file is the other
# way, not a dependency. Pick the image with --target manager or --target runner.
ARG BUILDER_IMAGE=golang:1.26
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot

FROM ${BUILDER_IMAGE} AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=""
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Empty TARGETARCH builds for the builder's own platform.
RUN for pkg in manager runner; do \
      CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
        -ldflags "-s -w -X github.com/strategyops/strategy-operator/internal/version.Version=${VERSION} -X github.com/strategyops/strategy-operator/internal/version.Commit=${COMMIT}" \
        -o /out/$pkg ./cmd/$pkg || exit 1; \
    done

FROM ${BASE_IMAGE} AS runner
COPY --from=builder /out/runner /usr/local/bin/runner
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/runner"]

FROM ${BASE_IMAGE} AS manager
COPY --from=builder /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
