# The two commands of the README: `make run` and `make test`.
GO      ?= go
BIN     ?= bin/watchroom
NPM     ?= npm

.PHONY: contracts contract-types screenshots run test test-go test-frontend e2e bench bench-cluster build services frontend check-dist fuzz lint soak

## run: the demo: server, embedded broker, simulator and demo users
run: services
	$(GO) run ./cmd/watchroom demo

## test: every test: Go unit and integration tests, frontend unit tests, browser tests
test: services lint contracts test-go test-frontend e2e

lint:
	@unformatted=$$(gofmt -l cmd internal frontend/*.go migrations); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## test-go: Go tests against the real PostgreSQL and Mosquitto; a skipped test fails the run
test-go:
	@.ci/gotest

frontend/node_modules: frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund
	@touch frontend/node_modules

## test-frontend: Vitest unit tests and the type check
test-frontend: frontend/node_modules
	cd frontend && $(NPM) run typecheck && $(NPM) test

tools/contracts/node_modules: tools/contracts/package-lock.json
	cd tools/contracts && $(NPM) ci --no-audit --no-fund
	@touch tools/contracts/node_modules

## contracts: validate docs/asyncapi.yaml (AsyncAPI parser) and docs/openapi.yaml (OpenAPI 3.1 schema),
## and check that frontend/src/contracts/*.gen.ts are current; cmd/watchroom/contracts_test.go (in
## test-go) checks the real server against them, frontend/src/contracts/agree.ts (in test-frontend) types.ts
contracts: tools/contracts/node_modules
	cd tools/contracts && node check.mjs

## contract-types: regenerate frontend/src/contracts/*.gen.ts from the contracts (after changing one)
contract-types: tools/contracts/node_modules
	cd tools/contracts && node types.mjs

## e2e: browser tests in headless Chromium against the real server, PostgreSQL and Mosquitto
e2e: frontend/node_modules
	cd frontend && $(NPM) run e2e

## screenshots: refresh docs/screenshots from a browser test run
screenshots: frontend/node_modules
	cd frontend && WATCHROOM_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(NPM) run e2e

## frontend: rebuild frontend/dist (committed, embedded by go:embed)
frontend: frontend/node_modules
	cd frontend && $(NPM) run build

## check-dist: fail when the committed frontend/dist differs from a fresh build
check-dist: frontend
	git diff --exit-code --stat -- frontend/dist
	@test -z "$$(git status --porcelain -- frontend/dist)" || { echo "frontend/dist has untracked changes: run make frontend and commit"; git status --porcelain -- frontend/dist; exit 1; }

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/watchroom

## bench: the standard load profile of `watchroom bench` against a server, database and Mosquitto of its own;
## prints the table (figures are reported, never asserted; under 2 minutes). JSON: WATCHROOM_BENCH_JSON=file
bench: services
	$(GO) test -run '^$$' -bench '^BenchmarkProfile$$' -count=1 -timeout 6m ./cmd/watchroom

## bench-cluster: the readings profile through haproxy against 1, 2 and 3 instances (docs/benchmarks.md,
## "Several instances behind haproxy"); JSON per count in WATCHROOM_BENCH_JSON_DIR (default /tmp/cluster)
bench-cluster: services
	mkdir -p $${WATCHROOM_BENCH_JSON_DIR:=/tmp/cluster} && WATCHROOM_BENCH_JSON_DIR=$${WATCHROOM_BENCH_JSON_DIR} \
		$(GO) test -run '^$$' -bench '^BenchmarkClusterProfile$$' -benchtime 1x -count=1 -timeout 10m ./cmd/watchroom

## bench-go: the Go micro- and pipeline benchmarks (docs/benchmarks.md)
bench-go: services
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/... ./cmd/...

## soak: the fault suite (docs/reliability.md) with 2-minute database faults and a race-instrumented server
soak: services
	WATCHROOM_FAULT_DB_SECONDS=120 WATCHROOM_FAULT_RACE=1 $(GO) test -race -count=1 -timeout 60m -v -run 'TestFault' ./cmd/watchroom/

## fuzz: every fuzz target for FUZZTIME each (default 20s), seeded from testdata/fuzz
fuzz:
	@.ci/fuzz

services:
	@.ci/services
