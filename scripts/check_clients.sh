#!/usr/bin/env bash
# `make clients-check`: the committed OpenAPI documents generate complete, working clients.
#   1. Redocly CLI lints both documents (openapi/redocly.yaml); every example validates against
#      its schema.
#   2. openapi-python-client generates a Python client from each document, with no warning; the
#      run fails on any line of its output other than "Generating ...".
#   3. openapi-typescript generates TypeScript types from each document, and `tsc --noEmit`
#      type-checks clients/typescript/usage.ts against them.
#   4. An api, a worker, the Cohere stand-in and the re-driver start on free ports, with their
#      own database, broker prefix and storage; clients/python/smoke_api.py walks the API and
#      clients/python/smoke_redriver.py the re-driver's admin API through the generated clients.
# Tool versions are pinned in clients/requirements.txt and clients/package.json (+ lock).
# Generated code goes to clients/generated/ (ignored by git), rebuilt on every run. Everything
# started here is stopped, and the database, queues and storage removed, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

CLIENTS=clients
GENERATED=$CLIENTS/generated

# --- tools ------------------------------------------------------------------------------------
# The project's venv (pika) for the topology clean-up in lib.sh; the client tools in their own.
ensure_venv "pika==1.*"
[ -x $CLIENTS/.venv/bin/python ] || python3 -m venv $CLIENTS/.venv
$CLIENTS/.venv/bin/pip install -q --disable-pip-version-check -r $CLIENTS/requirements.txt
(cd $CLIENTS && npm ci --no-audit --no-fund --loglevel=error)
# openapi-python-client runs ruff (from the same venv) on what it generates.
export PATH="$PWD/$CLIENTS/.venv/bin:$PWD/$CLIENTS/node_modules/.bin:$PATH"
# Redocly CLI: no usage reports, no update checks (only the package registries are reachable).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

# --- the documents ----------------------------------------------------------------------------
echo "== redocly lint"
# Errors fail the lint itself; a warning fails here too (accepted findings are listed, with
# their reasons, in openapi/.redocly.lint-ignore.yaml).
lint=$(redocly lint --config openapi/redocly.yaml 2>&1) || { echo "$lint"; exit 1; }
echo "$lint"
if grep -Eq 'You have [0-9]+ warning' <<<"$lint"; then
  echo "redocly lint reported warnings (above)" >&2
  exit 1
fi
echo "== examples against their schemas"
python $CLIENTS/python/check_examples.py openapi/openapi.json openapi/redriver.json

# --- generation -------------------------------------------------------------------------------
rm -rf "$GENERATED"
mkdir -p "$GENERATED/python" "$GENERATED/typescript"

# Generates package $2 from document $1; any output but "Generating <path>" fails the run.
generate_python() {
  local document=$1 package=$2 output
  echo "== openapi-python-client generate --path $document"
  output=$(openapi-python-client generate --path "$document" --meta none --config $CLIENTS/python/config.yaml \
    --output-path "$GENERATED/python/$package" 2>&1) || { echo "$output" >&2; return 1; }
  echo "$output"
  if grep -Ev '^(Generating .*)?$' <<<"$output" >/dev/null; then
    echo "openapi-python-client reported problems with $document (above)" >&2
    return 1
  fi
}
generate_python openapi/openapi.json image_pipelines_client
generate_python openapi/redriver.json redriver_admin_client

# Generates $2.d.ts from document $1; a warning fails the run.
generate_typescript() {
  local document=$1 name=$2 output
  echo "== openapi-typescript $document"
  output=$(openapi-typescript "$document" --default-non-nullable=false \
    -o "$GENERATED/typescript/$name.d.ts" 2>&1) || { echo "$output" >&2; return 1; }
  echo "$output"
  if grep -Ev '^(✨ openapi-typescript .*|🚀 .* → .*)?$' <<<"$output" >/dev/null; then
    echo "openapi-typescript reported problems with $document (above)" >&2
    return 1
  fi
}
generate_typescript openapi/openapi.json api
generate_typescript openapi/redriver.json redriver
echo "== tsc --noEmit -p $CLIENTS/tsconfig.json"
tsc --noEmit -p $CLIENTS/tsconfig.json

# --- the services -----------------------------------------------------------------------------
cargo build -q -p api -p worker -p scheduler -p cohere-standin -p redriver

WORK=
WORKER_PID=
SCHEDULER_PID=
STANDIN_PID=
REDRIVER_PID=
stop_process() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  stop_process "$WORKER_PID"
  stop_process "$SCHEDULER_PID"
  stop_process "$REDRIVER_PID"
  stop_process "$STANDIN_PID"
  WORKER_PID= SCHEDULER_PID= REDRIVER_PID= STANDIN_PID=
  if [ "$status" -ne 0 ] && [ -n "$WORK" ]; then
    for log in "$WORK"/*.log; do
      [ -s "$log" ] && { echo "--- last lines of $(basename "$log")" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  stop_isolated_api
  [ -z "$WORK" ] || rm -rf "$WORK"
}

echo "== starting an api, a worker, the Cohere stand-in and the re-driver"
# The smoke provokes errors on purpose (a 422, a refused image): keep the logs to real trouble.
export APP__TELEMETRY__LOG_FILTER=error
start_isolated_api target/debug/api clients
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d)

STANDIN_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
STANDIN_PORT=$(free_port)
STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"
# The key goes through the environment, not the command line (which `ps` shows).
# 200 ms per answer: a job lasts long enough for its event stream to show it moving.
STANDIN_API_KEY=$STANDIN_KEY target/debug/cohere-standin --host 127.0.0.1 --port "$STANDIN_PORT" \
  --latency-min-ms 200 --latency-max-ms 200 >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
wait_http "$STANDIN_URL/health" 30

APP__COHERE__BASE_URL=$STANDIN_URL APP__COHERE__API_KEY=$STANDIN_KEY APP__WORKER__HEALTH_PORT=0 APP__TELEMETRY__LOG_FILTER=warn \
  target/debug/worker >"$WORK/worker.log" 2>&1 &
WORKER_PID=$!
APP__SCHEDULER__HEALTH_PORT=0 APP__TELEMETRY__LOG_FILTER=warn target/debug/scheduler >"$WORK/scheduler.log" 2>&1 &
SCHEDULER_PID=$!

REDRIVER_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
REDRIVER_PORT=$(free_port)
REDRIVER_BASE="http://127.0.0.1:$REDRIVER_PORT"
APP__REDRIVER__PORT=$REDRIVER_PORT APP__REDRIVER__ADMIN_TOKEN=$REDRIVER_TOKEN \
  target/debug/redriver serve >"$WORK/redriver.log" 2>&1 &
REDRIVER_PID=$!
wait_http "$REDRIVER_BASE/healthz" 60

# --- the smoke runs ---------------------------------------------------------------------------
export PYTHONPATH="$PWD/$GENERATED/python"
export API_BASE=$BASE API_KEY=$KEY STANDIN_URL REDRIVER_BASE REDRIVER_TOKEN
echo "== the API through the generated Python client"
python $CLIENTS/python/smoke_api.py
echo "== the re-driver's admin API through the generated Python client"
python $CLIENTS/python/smoke_redriver.py
echo "clients check: 2 documents linted, 4 clients generated without warnings, 2 smoke runs passed"
