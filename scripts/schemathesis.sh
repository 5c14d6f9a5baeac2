#!/usr/bin/env bash
# Fuzzes a running api against the committed OpenAPI document with schemathesis: no 5xx,
# no response that violates the document. Uses its own database and broker prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv "schemathesis==4.*" "pika==1.*"
cargo build -q -p api
export APP__TELEMETRY__LOG_FILTER=error
start_isolated_api target/debug/api schemathesis

# The event streams stay open (a job's until the job ends, and no worker runs here; the
# tenant's for as long as the client listens): they are left out (tests/tests/worker/
# pipeline_runs.rs and tests/tests/api/tenant_events.rs cover them). Any other request that
# hangs fails.

.venv/bin/schemathesis run openapi/openapi.json \
  --url "$BASE" \
  --header "Authorization: Bearer $KEY" \
  --exclude-path '/api/jobs/{job_id}/events' \
  --exclude-path '/api/events' \
  --request-timeout 30 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,missing_required_header \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
  --workers 2 \
  --seed 1 \
  --no-color
