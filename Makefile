# benchling-webhook: build, test and benchmark the job binary.
# Run `make help` for the targets.

SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X benchling-webhook/internal/cli.Version=$(VERSION)
BIN := bin
TOOLS := $(BIN)/versitygw $(BIN)/benchstat $(BIN)/staticcheck
OUT := out

# Tests never read the developer's AWS configuration.
TEST_ENV := AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent \
	AWS_EC2_METADATA_DISABLED=true BW_REQUIRE_S3=1
FUZZTIME ?= 10s
BENCH ?= .
BENCH_COUNT ?= 6

.PHONY: help build tools test unit fuzz lint bench run clean

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## Build the job binary into bin/job (static, CGO off).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/job ./cmd/job

tools: $(TOOLS) ## Build the test tools pinned in tools/go.mod (versitygw S3 server, benchstat, staticcheck).

$(BIN)/versitygw: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/versitygw github.com/versity/versitygw/cmd/versitygw
$(BIN)/benchstat: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/benchstat golang.org/x/perf/cmd/benchstat
$(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

test: tools lint unit fuzz ## Everything CI runs: lint, all tests (unit, integration against a local S3, CLI), short fuzzing.

unit: tools ## Run the Go tests with the race detector (integration tests included).
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 12m ./...

fuzz: ## Run each fuzzer for FUZZTIME (default 10s).
	$(TEST_ENV) $(GO) test -run '^$$' -fuzz '^FuzzKey$$' -fuzztime $(FUZZTIME) ./internal/extract
	$(TEST_ENV) $(GO) test -run '^$$' -fuzz '^FuzzArchive$$' -fuzztime $(FUZZTIME) ./internal/extract

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

run: build ## Run the main job locally: make a sample export and extract it into out/run/.
	@mkdir -p $(OUT)/sample
	$(GO) run ./internal/samplezip/cmd/samplezip -preset small -o $(OUT)/sample/export.zip
	rm -rf $(OUT)/run
	$(BIN)/job export --download-url $(OUT)/sample/export.zip --local-dir $(OUT)/run --package-name benchling/etr_sample --log-format text
	@echo "Files written:"; cd $(OUT)/run && find . -type f | sort | sed 's|^\./|  |'

clean: ## Remove build and run outputs.
	rm -rf $(BIN) $(OUT)
