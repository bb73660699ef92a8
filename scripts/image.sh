#!/usr/bin/env bash
# Build the job image from ./Dockerfile; `make image` and `make publish` run
# this (docs/image.md).
#
#   scripts/image.sh image     this machine's platform, tagged $IMAGE_REPO:$IMAGE_TAG locally
#   scripts/image.sh publish   $IMAGE_PLATFORMS cross-compiled, pushed to ECR as one
#                              multi-arch manifest $IMAGE_REPO:$IMAGE_TAG; needs PUBLISH=1
#
# Environment (make sets the first three):
#   IMAGE_REPO, IMAGE_TAG    where the image goes; nothing here ever pushes `latest`
#   VERSION                  baked into the binary and the version label
#   IMAGE_PLATFORMS          publish only; default linux/amd64,linux/arm64
#   BUILDER_IMAGE, BASE_IMAGE   override the Dockerfile's bases (e.g. a mirror)
#   IMAGE_ENGINE             docker or buildah; by default docker buildx if a Docker
#                            engine answers, else buildah
#   AWS_REGION               publish only; default: the region in IMAGE_REPO
# buildah also reads STORAGE_DRIVER and BUILDAH_ISOLATION; inside a container
# use STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "image: $2" >&2
  exit "$1"
}

mode=${1:-}
[[ $mode == image || $mode == publish ]] || die 2 "usage: $0 image|publish"
[[ -n ${IMAGE_REPO:-} && -n ${IMAGE_TAG:-} && -n ${VERSION:-} ]] ||
  die 2 "IMAGE_REPO, IMAGE_TAG and VERSION must be set (make image / make publish set them)"
ref=$IMAGE_REPO:$IMAGE_TAG
platforms=${IMAGE_PLATFORMS:-linux/amd64,linux/arm64}

if [[ $mode == publish && ${PUBLISH:-} != 1 ]]; then
  die 2 "refusing to push $ref: run \`make publish PUBLISH=1\` to build $platforms and push to ECR"
fi

engine=${IMAGE_ENGINE:-}
if [[ -z $engine ]]; then
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1 &&
    docker buildx version >/dev/null 2>&1; then
    engine=docker
  elif command -v buildah >/dev/null; then
    engine=buildah
  else
    die 1 "no image builder: need a Docker engine with buildx, or buildah (apt-get install buildah)"
  fi
fi
[[ $engine == docker || $engine == buildah ]] || die 2 "IMAGE_ENGINE must be docker or buildah, not $engine"

args=(-f Dockerfile --build-arg "VERSION=$VERSION")
[[ -z ${BUILDER_IMAGE:-} ]] || args+=(--build-arg "BUILDER_IMAGE=$BUILDER_IMAGE")
[[ -z ${BASE_IMAGE:-} ]] || args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")

# buildah 1.28 (Debian 12) expands BUILDPLATFORM and TARGETPLATFORM in FROM
# only when they are passed as build arguments; buildx sets them itself.
host_platform() {
  buildah info --format '{{.host.os}}/{{.host.arch}}'
}

if [[ $mode == image ]]; then
  echo "image: building $ref for this machine with $engine" >&2
  if [[ $engine == docker ]]; then
    docker buildx build --load "${args[@]}" -t "$ref" .
  else
    host=$(host_platform)
    buildah build --platform "$host" --build-arg "BUILDPLATFORM=$host" --build-arg "TARGETPLATFORM=$host" \
      "${args[@]}" -t "$ref" .
  fi
  exit 0
fi

# publish: log in to ECR, build every platform by cross-compiling, push one manifest list.
registry=${IMAGE_REPO%%/*}
region=${AWS_REGION:-}
if [[ -z $region && $registry =~ \.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$ ]]; then
  region=${BASH_REMATCH[1]}
fi
[[ -n $region ]] || die 2 "cannot tell the ECR region from $registry: set AWS_REGION"
command -v aws >/dev/null || die 1 "the AWS CLI is needed to log in to ECR"
echo "image: logging in to $registry ($region)" >&2
aws ecr get-login-password --region "$region" | "$engine" login --username AWS --password-stdin "$registry"

echo "image: building $platforms and pushing $ref with $engine" >&2
if [[ $engine == docker ]]; then
  # The default "docker" driver cannot build a multi-platform image unless
  # the engine uses the containerd image store; a docker-container builder can.
  builder=${IMAGE_BUILDER:-bw-multiarch}
  docker buildx inspect "$builder" >/dev/null 2>&1 ||
    docker buildx create --name "$builder" --driver docker-container >/dev/null
  # --provenance=false: a plain manifest list, without attestation entries.
  docker buildx build --builder "$builder" --platform "$platforms" --provenance=false \
    "${args[@]}" -t "$ref" --push .
else
  host=$(host_platform)
  buildah manifest rm "$ref" >/dev/null 2>&1 || true
  buildah manifest create "$ref" >/dev/null
  IFS=, read -r -a list <<<"$platforms"
  for p in "${list[@]}"; do
    buildah build --platform "$p" --build-arg "BUILDPLATFORM=$host" --build-arg "TARGETPLATFORM=$p" \
      "${args[@]}" --manifest "$ref" .
  done
  buildah manifest push --all "$ref" "docker://$ref"
fi
echo "image: pushed $ref ($platforms)" >&2
