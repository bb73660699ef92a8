# benchling-webhook: build, test and benchmark the job binary.
# Run `make help` for the targets.

SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X benchling-webhook/internal/cli.Version=$(VERSION)
BIN := bin
# Node 22, aws-local-stepfunctions and asl-validator, pinned in tools/node/package-lock.json.
NODE_TOOLS := tools/node/node_modules/.package-lock.json
# AWS Copilot's own packages, for rendering the manifests and addons (deploycheck).
COPILOT_VERSION := v1.34.1
TOOLS := $(BIN)/versitygw $(BIN)/benchstat $(BIN)/staticcheck $(BIN)/actionlint $(BIN)/crane $(BIN)/copilotrender $(NODE_TOOLS)
OUT := out

# Tests never read the developer's AWS configuration.
TEST_ENV := AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
	AWS_EC2_METADATA_DISABLED=true BW_REQUIRE_S3=1
# Every Go package except the end-to-end suite, which `make e2e` runs.
UNIT_PKGS = $$($(GO) list ./... | grep -v '/e2e/')
FUZZTIME ?= 10s
BENCH ?= .
BENCH_COUNT ?= 6

.PHONY: help build tools test unit e2e fuzz lint bench run clean image publish

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## Build the job binary into bin/job (static, CGO off).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/job ./cmd/job

tools: $(TOOLS) ## Build the test tools pinned in tools/go.mod (versitygw, benchstat, staticcheck, actionlint, crane), bin/copilotrender (Copilot $(COPILOT_VERSION)'s packages) and install tools/node (npm ci).

$(BIN)/versitygw: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/versitygw github.com/versity/versitygw/cmd/versitygw
$(BIN)/benchstat: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/benchstat golang.org/x/perf/cmd/benchstat
$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck
$(BIN)/actionlint: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/actionlint github.com/rhysd/actionlint/cmd/actionlint
$(BIN)/crane: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/crane github.com/google/go-containerregistry/cmd/crane
$(BIN)/copilotrender: scripts/build-copilotrender.sh internal/deploytest/deploycheck/testdata/copilotrender/main.go
	GO=$(GO) scripts/build-copilotrender.sh $(COPILOT_VERSION) $@
$(NODE_TOOLS): tools/node/package.json tools/node/package-lock.json
	cd tools/node && npm ci --no-audit --no-fund --loglevel=error

test: tools lint unit e2e fuzz ## Everything CI runs: lint, all tests (unit, integration, CLI, end-to-end on the local stack), short fuzzing.

unit: tools ## Run the Go tests with the race detector (integration tests included), all but e2e/.
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 12m $(UNIT_PKGS)

e2e: tools ## Run the end-to-end suite (e2e/, ginkgo) against the local stack: webhooks in, packages out.
	$(TEST_ENV) $(GO) test -count=1 -timeout 10m ./e2e/...

fuzz: ## Run each fuzzer for FUZZTIME (default 10s): entry names, archives, signature headers.
	$(TEST_ENV) $(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(FUZZTIME) ./internal/extract
	$(TEST_ENV) $(GO) test -run '^$$' -fuzz '^FuzzArchive$$' -fuzztime $(FUZZTIME) ./internal/extract
	$(TEST_ENV) $(GO) test -run '^$$' -fuzz '^FuzzDERSignatures$$' -fuzztime $(FUZZTIME) ./internal/webhook

lint: $(BIN)/staticcheck ## gofmt, go vet, go mod tidy and staticcheck must be clean.
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff
	$(BIN)/staticcheck ./...

bench: tools build ## Benchmarks: job export vs the old Lambda's way vs an upload-only ceiling (docs/performance.md); BENCH_COUNT=6 runs.
	@mkdir -p $(OUT)
	set -o pipefail; $(TEST_ENV) BW_JOB_BIN=$(CURDIR)/$(BIN)/job $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -count $(BENCH_COUNT) -timeout 90m ./bench/ | tee $(OUT)/bench.txt
	$(BIN)/benchstat -col /impl $(OUT)/bench.txt | tee $(OUT)/benchstat.txt

EVENT ?= canvas
run: build tools ## Run the main job locally: a signed sample webhook (EVENT=canvas|entry|button|initialized|lifecycle) through both state machines.
	$(TEST_ENV) $(GO) run ./internal/testkit/emulate/cmd/runlocal --job $(BIN)/job --dir $(OUT)/run --event $(EVENT)

# The job image (Dockerfile, docs/image.md). Tags default to the version; nothing pushes `latest`.
IMAGE_REPO ?= 712023778557.dkr.ecr.us-east-1.amazonaws.com/quiltdata/benchling
IMAGE_TAG ?= $(VERSION)
IMAGE_ENV = IMAGE_REPO='$(IMAGE_REPO)' IMAGE_TAG='$(IMAGE_TAG)' VERSION='$(VERSION)'

image: ## Build the job image for this machine as IMAGE_REPO:IMAGE_TAG (docker buildx if a Docker engine answers, else buildah).
	$(IMAGE_ENV) scripts/image.sh image

publish: ## Build linux/amd64+arm64 and push one multi-arch manifest to ECR (IMAGE_REPO:IMAGE_TAG); needs PUBLISH=1.
	$(IMAGE_ENV) PUBLISH='$(PUBLISH)' scripts/image.sh publish

clean: ## Remove build and run outputs.
	rm -rf $(BIN) $(OUT)
