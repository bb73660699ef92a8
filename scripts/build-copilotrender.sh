#!/usr/bin/env bash
# Builds bin/copilotrender: internal/deploytest/deploycheck/testdata/copilotrender
# compiled inside a copy of AWS Copilot's own module (github.com/aws/copilot-cli,
# whose packages are all internal/ and so importable only from inside it), so
# that deploycheck renders our manifests and addons with Copilot's packages
# (docs/deploy.md, "What is checked before a deploy"). `make tools` runs it.
#
# Usage: scripts/build-copilotrender.sh VERSION OUT
set -euo pipefail
version=${1:?usage: build-copilotrender.sh VERSION OUT}
out=${2:?usage: build-copilotrender.sh VERSION OUT}
go=${GO:-go}
root=$(cd "$(dirname "$0")/.." && pwd)

# go mod download checks the module against the checksum database.
dir=$(cd "$root" && "$go" mod download -json "github.com/aws/copilot-cli@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$dir" ]] || { echo "build-copilotrender: no module directory for copilot-cli@$version" >&2; exit 1; }

src="$root/bin/copilot-cli@$version"
rm -rf "$src"
mkdir -p "$src"
cp -r "$dir/go.mod" "$dir/go.sum" "$dir/internal" "$src/"
chmod -R u+w "$src"
# Copilot's own build (its Makefile, package-custom-resources) copies the
# custom resources' code into the templates it embeds; the code itself does
# not matter here, only that the files exist.
mkdir -p "$src/internal/pkg/template/templates/custom-resources" "$src/internal/bwrender"
cp "$dir"/cf-custom-resources/lib/*.js "$src/internal/pkg/template/templates/custom-resources/"
cp "$root/internal/deploytest/deploycheck/testdata/copilotrender/main.go" "$src/internal/bwrender/main.go"
case "$out" in /*) ;; *) out="$root/$out" ;; esac
(cd "$src" && GOWORK=off GOFLAGS=-mod=readonly "$go" build -trimpath -o "$out" ./internal/bwrender)
