#!/usr/bin/env bash
# `make run`: migrate, start the api, the scheduler and a worker (and the offline Cohere stand-in when no
# Cohere key is configured), create a development tenant, seed a demo library and pipeline,
# and print how to use them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
DB=${DEV_DATABASE:-pipelines}
PORT=${APP__HTTP__PORT:-8080}
BASE="http://127.0.0.1:$PORT"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

ensure_database "$DB"
target/release/api migrate

if [ -z "${APP__COHERE__API_KEY:-}" ]; then
  STANDIN_PORT=${STANDIN_PORT:-$(free_port)}
  export APP__COHERE__API_KEY="standin-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  export APP__COHERE__BASE_URL="http://127.0.0.1:$STANDIN_PORT"
  echo ">>> APP__COHERE__API_KEY is not set: using the OFFLINE Cohere stand-in at $APP__COHERE__BASE_URL"
  echo ">>> (answers are made up, deterministically; set APP__COHERE__API_KEY to use https://api.cohere.com)"
  target/release/cohere-standin --host 127.0.0.1 --port "$STANDIN_PORT" --api-key "$APP__COHERE__API_KEY" \
    --latency-min-ms 300 --latency-max-ms 900 &
  PIDS+=($!)
  wait_http "$APP__COHERE__BASE_URL/health" 30
else
  echo ">>> using Cohere at ${APP__COHERE__BASE_URL:-https://api.cohere.com}"
fi

KEY=$(target/release/api admin create-key --tenant dev --label "make run")
target/release/api serve &
PIDS+=($!)
target/release/scheduler &
PIDS+=($!)
target/release/worker &
PIDS+=($!)
# The re-driver drains the dead-letter queue; its admin API needs this token.
export APP__REDRIVER__ADMIN_TOKEN=${APP__REDRIVER__ADMIN_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
REDRIVER_PORT=${APP__REDRIVER__PORT:-8090}
APP__REDRIVER__PORT=$REDRIVER_PORT target/release/redriver serve &
PIDS+=($!)
wait_http "$BASE/readyz" 60

# Demo data: the sample photos and a two-stage pipeline whose second stage only sees animals.
AUTH="Authorization: Bearer $KEY"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
LIBRARY=$(curl -fsS -H "$AUTH" "$BASE/api/libraries?limit=200" | json 'next((l["id"] for l in d["items"] if l["name"] == "Demo photos"), "")')
if [ -z "$LIBRARY" ]; then
  LIBRARY=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/libraries" \
    -d '{"name": "Demo photos", "description": "Sample photos shipped with the project"}' | json 'd["id"]')
  FILES=()
  for f in samples/images/*.png samples/images/*.jpg; do FILES+=(-F "file=@$f"); done
  curl -fsS -H "$AUTH" "${FILES[@]}" "$BASE/api/libraries/$LIBRARY/images" >/dev/null
fi
PIPELINE=$(curl -fsS -H "$AUTH" "$BASE/api/pipelines?limit=200" | json 'next((p["id"] for p in d["items"] if p["name"] == "Animal survey"), "")')
[ -n "$PIPELINE" ] || PIPELINE=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/pipelines" -d '{
  "name": "Animal survey",
  "description": "Find the animals, then describe them",
  "stages": [
    {"name": "detect", "prompt": "Is there an animal in this image? Answer as JSON.",
     "json_schema": {"type": "object", "properties": {"animal": {"type": "boolean"}, "species": {"type": "string"}}, "required": ["animal"]},
     "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}},
    {"name": "describe", "prompt": "Describe the animal in two sentences.", "image_detail": "high", "max_tokens": 300}
  ]}' | json 'd["id"]')

cat <<MSG

  Dashboard:  $BASE/
  Sign in with the development tenant's API key (shown once; keep it):
    $KEY

  The system is running: api, scheduler, worker, re-driver$( [ -n "${STANDIN_PORT:-}" ] && echo ", offline Cohere stand-in" ).
    API:        $BASE/api          docs: $BASE/docs/
    Readiness:  $BASE/readyz       worker: http://127.0.0.1:${APP__WORKER__HEALTH_PORT:-9091}/readyz (circuit breakers), /metrics
    Re-driver:  http://127.0.0.1:$REDRIVER_PORT/admin/dead-letters
                with  -H "Authorization: Bearer $APP__REDRIVER__ADMIN_TOKEN"

  For curl, the same key:
    export KEY=$KEY
  Demo library "Demo photos": $LIBRARY
  Demo pipeline "Animal survey": $PIPELINE

  Submit a job, follow it live, read the results:
    JOB=\$(curl -s -H "Authorization: Bearer \$KEY" -H 'content-type: application/json' $BASE/api/jobs/submit \\
      -d '{"pipeline_id": "$PIPELINE", "library_id": "$LIBRARY"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    curl -N -H "Authorization: Bearer \$KEY" $BASE/api/jobs/\$JOB/events
    curl -s -H "Authorization: Bearer \$KEY" "$BASE/api/jobs/\$JOB/results?stage=1"
    curl -s -H "Authorization: Bearer \$KEY" "$BASE/api/jobs/\$JOB/results/export?format=csv"

  Ctrl-C stops everything.
MSG
wait -n "${PIDS[@]}"
