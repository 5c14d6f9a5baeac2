# The two commands that matter: `make run` (the system) and `make test` (every check).
SHELL := /bin/bash
CARGO ?= cargo
DATABASE_SERVER ?= postgres://postgres@127.0.0.1:5432
DEV_DATABASE ?= pipelines
APP_PORT ?= 8080

export APP__DATABASE__URL ?= $(DATABASE_SERVER)/$(DEV_DATABASE)
export APP__HTTP__PORT ?= $(APP_PORT)

.PHONY: run build test fmt-check clippy nextest chaos cohere-wire schemathesis openapi bench web web-test web-e2e k8s-check alerts-check clients-check docs-check

## Build the UI and the binaries, migrate, start api + scheduler + worker + re-driver (+ the offline Cohere
## stand-in without a key), seed a demo, print the dashboard's URL and the key to sign in with.
run: web build
	@scripts/run.sh

build:
	$(CARGO) build --release -p api -p worker -p scheduler -p cohere-standin -p redriver

## The web UI: locked dependencies, API types generated from openapi/openapi.json, web/dist.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

## The web UI's checks: API types match openapi/openapi.json, type-check, unit tests.
web-test:
	cd web && npm ci --no-audit --no-fund && npm test

## Everything CI checks: formatting, lints, the UI's unit tests and build, all Rust tests (with the
## OpenAPI drift check), the guides' commands, generated clients, manifests and alert rules, the
## dashboard in a real browser, API fuzzing, and last the chaos tests (they stop the services).
test: fmt-check clippy web-test web nextest k8s-check alerts-check cohere-wire clients-check docs-check web-e2e schemathesis chaos

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

nextest:
	$(CARGO) build -p api -p worker -p scheduler -p redriver
	$(CARGO) nextest run --workspace --no-fail-fast -E 'not binary(chaos)'

## Chaos tests: SIGKILLed worker processes, RabbitMQ and PostgreSQL restarted mid-job. They stop
## the local services, so they run alone, one at a time, after every other test.
chaos:
	$(CARGO) build -p worker
	$(CARGO) nextest run -p system-tests --test chaos --test-threads 1 --no-fail-fast

## The worker's Cohere request bodies against Cohere's OpenAPI (third_party/cohere); the official SDK against the stand-in.
cohere-wire:
	@scripts/cohere_wire_check.sh

## The dashboard in Debian's chromium (Playwright) against a system of its own (needs `make web`).
web-e2e:
	@scripts/check_web_e2e.sh

## Render every k8s/ overlay and validate it offline (built-in kinds, KEDA and Prometheus Operator objects, rules), broken copies included.
k8s-check:
	@scripts/check_k8s.sh

## The Prometheus alert rules: promtool check and unit tests.
alerts-check:
	@scripts/check_alerts.sh

## Fuzz the running api against the committed OpenAPI document.
schemathesis:
	@scripts/schemathesis.sh

## Lint both OpenAPI documents, generate Python and TypeScript clients from them (no warnings),
## type-check a TypeScript usage file, and run smoke scripts through the generated Python clients.
clients-check:
	@scripts/check_clients.sh

## Regenerate openapi/openapi.json (the api) and openapi/redriver.json (the re-driver's admin API) from the code.
openapi:
	$(CARGO) run -q -p api -- openapi > openapi/openapi.json
	$(CARGO) run -q -p redriver -- openapi > openapi/redriver.json

## Benchmarks (numbers go to docs/benchmarks.md).
bench:
	@scripts/bench.sh
	@scripts/bench_worker.sh
	@scripts/bench_dashboard.sh

## Run every command of the guides in docs/ against a system of their own (docs/README.md).
docs-check:
	@scripts/check_docs.sh
