# The two commands that matter: `make run` (the system) and `make test` (every check).
SHELL := /bin/bash
CARGO ?= cargo
DATABASE_SERVER ?= postgres://postgres@127.0.0.1:5432
DEV_DATABASE ?= pipelines
APP_PORT ?= 8080

export APP__DATABASE__URL ?= $(DATABASE_SERVER)/$(DEV_DATABASE)
export APP__HTTP__PORT ?= $(APP_PORT)

.PHONY: run build test fmt-check clippy nextest schemathesis openapi bench bench-submit bench-get clean-test-leftovers

## Build, migrate, start the api, create a development tenant and print its key and the URLs.
run: build
	@scripts/run.sh

build:
	$(CARGO) build --release -p api

## Everything CI checks: formatting, lints, all tests (with the OpenAPI drift check), API fuzzing.
test: fmt-check clippy nextest schemathesis

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

nextest:
	$(CARGO) nextest run --workspace --no-fail-fast

## Fuzz the running api against the committed OpenAPI document.
schemathesis:
	@scripts/schemathesis.sh

## Regenerate openapi/openapi.json from the code.
openapi:
	$(CARGO) run -q -p api -- openapi > openapi/openapi.json

## Benchmarks (numbers go to docs/benchmarks.md).
bench:
	@scripts/bench.sh
