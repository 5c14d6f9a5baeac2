#!/usr/bin/env bash
# `make run`: migrate, start the api, create a development tenant and print its key.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BIN=target/release/api
DB=${DEV_DATABASE:-pipelines}

ensure_database "$DB"
$BIN migrate
KEY=$($BIN admin create-key --tenant dev --label "make run")
$BIN serve &
API_PID=$!
trap 'kill $API_PID 2>/dev/null; wait $API_PID 2>/dev/null' EXIT INT TERM
wait_http "http://127.0.0.1:${APP__HTTP__PORT}/readyz" 60 || true

BASE="http://127.0.0.1:${APP__HTTP__PORT}"
cat <<MSG

  The api is running.
    API:          $BASE/api
    API docs:     $BASE/docs/
    OpenAPI:      $BASE/api/openapi.json
    Readiness:    $BASE/readyz

  Development tenant "dev", API key (shown once):
    $KEY

  Try:
    curl -s -H "Authorization: Bearer $KEY" $BASE/api/libraries

  Ctrl-C stops it.
MSG
wait $API_PID
