#!/usr/bin/env bash
# Fuzzes a running api against the committed OpenAPI document with schemathesis: no 5xx,
# no response that violates the document. Uses its own database and broker prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv "schemathesis==4.*" "pika==1.*"
cargo build -q -p api
start_isolated_api target/debug/api schemathesis

.venv/bin/schemathesis run openapi/openapi.json \
  --url "$BASE" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,missing_required_header \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --workers 2 \
  --seed 1 \
  --no-color
