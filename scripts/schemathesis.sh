#!/usr/bin/env bash
# Fuzzes a running api against the committed OpenAPI document with schemathesis: no 5xx,
# no response that violates the document. Uses its own database and broker prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv "schemathesis==4.*" "pika==1.*"
cargo build -q -p api
BIN=target/debug/api
ID=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
DB="schemathesis_$ID"
PORT=$(free_port)
STORAGE=$(mktemp -d)
export APP__DATABASE__URL="$DATABASE_SERVER/$DB"
export APP__HTTP__PORT=$PORT
export APP__AMQP__PREFIX="schemathesis-$ID"
export APP__STORAGE__LOCAL_PATH=$STORAGE
export APP__TELEMETRY__LOG_FILTER=warn

ensure_database "$DB"
cleanup() {
  [ -n "${API_PID:-}" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null
  drop_database "$DB"
  rm -rf "$STORAGE"
  .venv/bin/python scripts/delete_topology.py "schemathesis-$ID" || true
}
trap cleanup EXIT
$BIN migrate
KEY=$($BIN admin create-key --tenant schemathesis)
$BIN serve &
API_PID=$!
wait_http "http://127.0.0.1:$PORT/healthz" 60

.venv/bin/schemathesis run openapi/openapi.json \
  --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,missing_required_header \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --workers 2 \
  --seed 1 \
  --no-color
