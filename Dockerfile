# The job image: one static Go binary at /job on distroless/static (CA
# certificates and a nonroot user, no shell, no libc). See docs/image.md.
#
#   make image                 this machine's platform (docker buildx, else buildah)
#   make publish PUBLISH=1     linux/amd64 + linux/arm64, pushed to ECR
#
# Both bases are build arguments so the image test (internal/deploytest/imagetest) can
# build this very file offline from locally assembled bases.
ARG BUILDER_IMAGE=docker.io/library/golang:1.26-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
# buildx sets these two itself. buildah 1.28 (Debian 12) expands them in FROM
# only when they are passed with --build-arg (scripts/image.sh does), and
# without the explicit platform on the last FROM it would look for the base
# on the builder's platform.
ARG BUILDPLATFORM
ARG TARGETPLATFORM

# The builder always runs on the build machine's platform and cross-compiles
# for the target (GOOS/GOARCH), so a multi-arch build needs no emulation.
FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS build
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by buildx and buildah from --platform (the host's platform by default).
ARG TARGETOS TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" \
    go build -trimpath -ldflags "-s -w -X benchling-webhook/internal/cli.Version=${VERSION}" \
      -o /out/job ./cmd/job

FROM --platform=$TARGETPLATFORM ${BASE_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="benchling-webhook job" \
      org.opencontainers.image.description="Benchling webhook verification and export-to-S3 job for ECS Fargate" \
      org.opencontainers.image.source="https://github.com/quiltdata/benchling-webhook" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/job /job
USER 65532:65532
ENTRYPOINT ["/job"]
# The default is what the schedule and `copilot job run` run: make the
# packages agree with Benchling (docs/operations.md, "Reconcile"). The state
# machines pass their own command (verify, export) as container overrides.
CMD ["reconcile"]
