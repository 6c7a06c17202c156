# AgentOS — the front door. `make run` builds and starts a demo node;
# `make test` runs every test with the race detector.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GIT_SHA ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_TIME ?= $(shell git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.gitSHA=$(GIT_SHA) -X main.buildTime=$(BUILD_TIME)
# urfave_cli_no_docs leaves out urfave/cli's Markdown and man-page writers
# (and the Markdown library they pull in), which the binary never calls:
# a smaller binary and ~0.5 MiB less heap on an idle node (docs/benchmarks.md).
TAGS := urfave_cli_no_docs
export CGO_ENABLED := 0

.PHONY: build run test test-short bench conformance lint release clean

build:
	$(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/agentos .

run: build
	./bin/agentos up --foreground

test:
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 -short ./...

conformance:
	$(GO) test -count=1 ./conformance/...

# In-process benchmarks, then the black-box table (agentos bench against
# the built binary; docs/benchmarks.md).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./... | tee bench.out
	AGENTOS=./bin/agentos bench/blackbox.sh | tee -a bench.out
	AGENTOS=./bin/agentos bench/cluster.sh | tee -a bench.out
	# Restart of a node on a store of a million finished runs (about 5 GB
	# in the temp dir, built in a few minutes): ready in <= 2 s.
	AGENTOS_RESTART_RUNS=1000000 $(GO) test -count=1 -timeout 60m -v -run TestRestart_ManyFinishedRunsReadyFast ./e2e/retention | grep -E 'RESULT|store:|^(ok|FAIL|---)' | tee -a bench.out

lint:
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed; go vet only"; fi

# Reproducible static release binaries: -trimpath, stamped version, no
# build id, timestamps from the commit, plus SHA256SUMS.
release:
	rm -rf dist && mkdir -p dist
	for arch in amd64 arm64; do \
		GOOS=linux GOARCH=$$arch $(GO) build -trimpath -buildvcs=false -tags $(TAGS) -ldflags "$(LDFLAGS) -buildid=" -o dist/agentos-linux-$$arch . || exit 1; \
	done
	cd dist && sha256sum agentos-linux-* > SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf bin dist bench.out
