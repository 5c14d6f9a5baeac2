#!/usr/bin/env bash
# `make bench`: job submission latency (1,000 and 10,000 images) and GET /api/jobs/{id}
# under load, against the release api with the local PostgreSQL and RabbitMQ.
# Prints one line per measurement; the numbers are recorded in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y wrk >/dev/null; }; }
ensure_venv "pika==1.*"
cargo build -q --release -p api
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-15s}
start_isolated_api target/release/api bench
PREFIX=$ISOLATED_PREFIX
AUTH="Authorization: Bearer $KEY"

queue_depth() {
  .venv/bin/python - "$PREFIX.stage" <<'PY'
import sys, pika
c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
ch = c.channel()
print(ch.queue_declare(queue=sys.argv[1], passive=True).method.message_count)
c.close()
PY
}

purge_queue() {
  .venv/bin/python - "$PREFIX.stage" <<'PY'
import sys, pika
c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
c.channel().queue_purge(queue=sys.argv[1])
c.close()
PY
}

PIPELINE=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/pipelines" \
  -d '{"name":"bench","stages":[{"name":"describe","prompt":"Describe the image."},{"name":"again","prompt":"Again."}]}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

echo "# job submission (the 202 is sent once the job is committed; nothing is published: no scheduler runs here)"
for N in 1000 10000; do
  LIBRARY=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/libraries" -d "{\"name\":\"lib-$N\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  psql -q "$APP__DATABASE__URL" -c "INSERT INTO images (id, tenant_id, library_id, filename, source, url, created_at)
    SELECT gen_random_uuid(), l.tenant_id, l.id, 'img-' || g || '.jpg', 'url', 'https://images.example.org/' || g || '.jpg',
           now() + g * interval '1 microsecond' FROM libraries l, generate_series(1, $N) g WHERE l.id = '$LIBRARY'"
  for run in $(seq 1 "$RUNS"); do
    purge_queue
    OUT=$(curl -sS -o /tmp/bench-job.json -w '%{http_code} %{time_total}' -H "$AUTH" -H 'content-type: application/json' \
      "$BASE/api/jobs/submit" -d "{\"pipeline_id\":\"$PIPELINE\",\"library_id\":\"$LIBRARY\"}")
    read -r CODE SECONDS_TAKEN <<<"$OUT"
    DEPTH=$(queue_depth)
    printf 'submit images=%-6s run=%s status=%s time_to_202_ms=%.1f messages_on_queue=%s\n' \
      "$N" "$run" "$CODE" "$(python3 -c "print($SECONDS_TAKEN*1000)")" "$DEPTH"
    [ "$CODE" = 202 ] && [ "$DEPTH" = 0 ] || { echo "submission of $N images failed" >&2; exit 1; }
  done
done

JOB=$(python3 -c 'import json; print(json.load(open("/tmp/bench-job.json"))["id"])')
echo "# GET /api/jobs/{id} of a 10,000-image job: wrk, 2 threads, 64 connections, $DURATION"
echo "## as configured by default (job views cached for 250 ms per replica)"
wrk -t2 -c64 -d"$DURATION" --latency -H "$AUTH" "$BASE/api/jobs/$JOB" | sed -n '/Latency Distribution/,/Requests\/sec/p'

# A second replica on the same database with the cache off: every request reads Postgres.
UNCACHED_PORT=$(free_port)
APP__HTTP__PORT=$UNCACHED_PORT APP__HTTP__JOB_CACHE_MILLIS=0 target/release/api serve &
UNCACHED_PID=$!
trap 'kill $UNCACHED_PID 2>/dev/null; stop_isolated_api' EXIT
wait_http "http://127.0.0.1:$UNCACHED_PORT/readyz" 60
echo "## with the job cache off (APP__HTTP__JOB_CACHE_MILLIS=0): one Postgres query per request"
wrk -t2 -c64 -d"$DURATION" --latency -H "$AUTH" "http://127.0.0.1:$UNCACHED_PORT/api/jobs/$JOB" | sed -n '/Latency Distribution/,/Requests\/sec/p'
