#!/usr/bin/env bash
# Wire compatibility with Cohere's POST /v2/chat: the request bodies the worker builds must be
# valid against Cohere's own OpenAPI description (third_party/cohere/cohere-openapi.yaml), and
# Cohere's official Python SDK must round-trip chat calls with images through the stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv "cohere==5.21.*" "jsonschema==4.26.*" "referencing==0.37.*" "pyyaml==6.*"

WORK=$(mktemp -d)
STANDIN_PID=
stop_standin() {
  if [ -n "$STANDIN_PID" ]; then
    kill "$STANDIN_PID" 2>/dev/null || true
    wait "$STANDIN_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop_standin EXIT

cargo build -q -p cohere-standin
cargo run -q -p worker --example print_requests > "$WORK/requests.json"

PORT=$(free_port)
STANDIN_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
BASE="http://127.0.0.1:$PORT"
# The key goes through the environment, not the command line (which `ps` shows).
STANDIN_API_KEY=$STANDIN_KEY target/debug/cohere-standin --host 127.0.0.1 --port "$PORT" \
  >"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
if ! wait_http "$BASE/health" 30; then
  cat "$WORK/standin.log" >&2
  exit 1
fi

if ! .venv/bin/python scripts/cohere_wire_check.py "$WORK/requests.json" "$BASE" "$STANDIN_KEY"; then
  echo "--- stand-in log ---" >&2
  tail -n 20 "$WORK/standin.log" >&2
  exit 1
fi
