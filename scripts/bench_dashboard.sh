#!/usr/bin/env bash
# `make bench` (third part): the web dashboard against the api serving the built UI, with its
# own database, broker prefix and storage directory on the local PostgreSQL and RabbitMQ.
# Measures
#   1. the Jobs page's first render with 10,000 jobs in history (headless Chromium, median of
#      5 cold page loads) and how many jobs the page fetched;
#   2. the detail page of a 10,000-image job: the most <img> nodes in the DOM while the image
#      grid is scrolled to its end, and the event streams the page opens;
#   3. 1,000 tenant-wide event streams held open against the api: its extra RSS, and the p99
#      of GET /api/jobs/history without and with the streams (wrk);
#   4. the gzip size of every JS chunk of web/dist.
# Jobs, images and items are inserted directly into PostgreSQL (copies of one job submitted
# through the api). Prints one line per measurement; docs/benchmarks.md describes the method.
# BENCH_DASHBOARD_PROFILE=release uses the release api (the UI embedded at compile time);
# the default debug api reads web/dist at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PROFILE=${BENCH_DASHBOARD_PROFILE:-debug}
STREAMS=${BENCH_DASHBOARD_STREAMS:-1000}
LOAD_DURATION=${BENCH_DASHBOARD_LOAD_DURATION:-10s}
LOAD_CONNECTIONS=${BENCH_DASHBOARD_LOAD_CONNECTIONS:-16}
HISTORY_JOBS=10000
JOB_IMAGES=10000

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y wrk >/dev/null; }; }
[ -x /usr/bin/chromium ] || { echo "needs Debian's chromium (/usr/bin/chromium)" >&2; exit 1; }
[ -d web/node_modules/playwright-core ] || (cd web && npm ci --no-audit --no-fund >/dev/null)
[ -f web/dist/index.html ] || make -s web >/dev/null
# pika for the topology clean-up in lib.sh.
ensure_venv "pika==1.*"
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p api
else
  cargo build -q -p api
fi

WORK=$(mktemp -d)
STREAMS_PID=
cleanup() {
  [ -z "$STREAMS_PID" ] || { kill "$STREAMS_PID" 2>/dev/null; wait "$STREAMS_PID" 2>/dev/null || true; }
  stop_isolated_api
  rm -rf "$WORK"
}
start_isolated_api "target/$PROFILE/api" bench-dashboard
trap cleanup EXIT
trap 'exit 130' INT TERM
AUTH="Authorization: Bearer $KEY"
DB=$APP__DATABASE__URL
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sql() { psql -qtAX -v ON_ERROR_STOP=1 "$DB" "$@"; }

# One real job (three URL images, a two-stage pipeline) as the template of every inserted one.
PIPELINE=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/pipelines" \
  -d '{"name":"bench-dashboard","stages":[{"name":"describe","prompt":"Describe the image."},{"name":"check","prompt":"Is it a cat?"}]}' | json 'd["id"]')
library() {
  local id
  id=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/libraries" -d "{\"name\":\"$1\"}" | json 'd["id"]')
  sql -c "INSERT INTO images (id, tenant_id, library_id, filename, source, url, created_at)
    SELECT gen_random_uuid(), l.tenant_id, l.id, 'img-' || lpad(g::text, 5, '0') || '.jpg', 'url',
           'https://images.example.org/' || g || '.jpg', now() - g * interval '1 millisecond'
    FROM libraries l, generate_series(1, $2) g WHERE l.id = '$id'"
  echo "$id"
}
HISTORY_LIBRARY=$(library history 3)
BIG_LIBRARY=$(library big "$JOB_IMAGES")
TEMPLATE=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/jobs/submit" \
  -d "{\"pipeline_id\":\"$PIPELINE\",\"library_id\":\"$HISTORY_LIBRARY\"}" | json 'd["id"]')

# 9,998 finished copies of it spread over 30 days, and one running job over the 10,000-image
# library with items in every state: 10,000 jobs in history.
BIG_JOB=$(sql <<SQL | tail -1
CREATE TEMP TABLE copies AS
  SELECT j.*, g AS n FROM jobs j, generate_series(1, $HISTORY_JOBS - 2) g WHERE j.id = '$TEMPLATE';
UPDATE copies SET id = gen_random_uuid(), idempotency_key = NULL, request_hash = NULL,
  status = (ARRAY['completed', 'completed', 'completed_with_errors', 'failed', 'cancelled'])[1 + n % 5],
  pending_items = 0, running_items = 0, passed_items = 2, filtered_out_items = 1, failed_items = 0,
  input_tokens = 1800, output_tokens = 240,
  created_at = now() - n * interval '259 seconds', updated_at = now() - n * interval '259 seconds' + interval '30 seconds',
  started_at = now() - n * interval '259 seconds', finished_at = now() - n * interval '259 seconds' + interval '30 seconds';
ALTER TABLE copies DROP COLUMN n;
INSERT INTO jobs SELECT * FROM copies;
INSERT INTO job_stage_stats (job_id, stage_index, name, processed, passed, filtered_out, failed, input_tokens, output_tokens)
  SELECT c.id, s.stage_index, s.name, 3, 3 - s.stage_index, s.stage_index, 0, 900, 120
  FROM copies c JOIN job_stage_stats s ON s.job_id = '$TEMPLATE';

CREATE TEMP TABLE big AS SELECT j.* FROM jobs j WHERE j.id = '$TEMPLATE';
UPDATE big SET id = gen_random_uuid(), idempotency_key = NULL, request_hash = NULL, library_id = '$BIG_LIBRARY',
  status = 'running', total_items = $JOB_IMAGES, pending_items = 2500, running_items = 500, passed_items = 4000,
  filtered_out_items = 2000, failed_items = 1000, cancelled_items = 0, started_at = now(), updated_at = now() - interval '1 hour';
INSERT INTO jobs SELECT * FROM big;
INSERT INTO job_items (id, job_id, image_id, status, current_stage, attempts, last_error, error_class)
  SELECT gen_random_uuid(), b.id, i.id, st, CASE WHEN st IN ('pending', 'running') THEN 0 ELSE 1 END,
         CASE WHEN st = 'pending' THEN 0 ELSE 1 END,
         CASE WHEN st = 'failed' THEN 'image could not be fetched' END, CASE WHEN st = 'failed' THEN 'permanent' END
  FROM big b, (SELECT id, (ARRAY['passed', 'passed', 'passed', 'passed', 'filtered_out', 'filtered_out', 'failed', 'pending', 'pending', 'running'])[1 + (row_number() OVER (ORDER BY created_at DESC, id DESC))::int % 10] AS st
               FROM images WHERE library_id = '$BIG_LIBRARY') i;
INSERT INTO job_stage_stats (job_id, stage_index, name, processed, passed, filtered_out, failed, input_tokens, output_tokens)
  SELECT b.id, s.stage_index, s.name, 7000 - 1000 * s.stage_index, 6000 - 2000 * s.stage_index, 1000 * s.stage_index, 1000 - 500 * s.stage_index, 900000, 120000
  FROM big b JOIN job_stage_stats s ON s.job_id = '$TEMPLATE';
ANALYZE jobs; ANALYZE job_items; ANALYZE images;
SELECT id FROM big;
SQL
)
[ "$(sql -c "SELECT count(*) FROM jobs WHERE NOT preview")" = "$HISTORY_JOBS" ] \
  || { echo "history set-up failed" >&2; exit 1; }
[ "$(sql -c "SELECT count(*) FROM job_items WHERE job_id = '$BIG_JOB'")" = "$JOB_IMAGES" ] \
  || { echo "10,000-image job set-up failed" >&2; exit 1; }

echo "# browser: /usr/bin/chromium headless via playwright-core; api: target/$PROFILE/api; load average $(cut -d' ' -f1-3 /proc/loadavg)"
BASE=$BASE KEY=$KEY JOB=$BIG_JOB HISTORY_JOBS=$HISTORY_JOBS node scripts/bench/dashboard.mjs

# 3. Event streams: the api's RSS, and two GETs' p99 without and with the streams.
PID=$ISOLATED_PID
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
HISTORY_URL="$BASE/api/jobs/history?limit=20"
JOB_URL="$BASE/api/jobs/$BIG_JOB"
p99() { # $1: URL, $2: duration; prints "p99_ms requests_per_second"
  wrk -t2 -c"$LOAD_CONNECTIONS" -d"${2:-$LOAD_DURATION}" --latency -H "$AUTH" "$1" >"$WORK/wrk.txt"
  ! grep -q 'Non-2xx' "$WORK/wrk.txt" || { cat "$WORK/wrk.txt" >&2; echo "non-2xx answers under load" >&2; exit 1; }
  python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
ms = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{ms:.2f} {rps:.0f}")
PY
}
# A first short load run of each warms the api (pool, caches, allocator).
p99 "$HISTORY_URL" 3s >/dev/null
p99 "$JOB_URL" 3s >/dev/null
read -r HISTORY_IDLE HISTORY_IDLE_RPS < <(p99 "$HISTORY_URL")
read -r JOB_IDLE JOB_IDLE_RPS < <(p99 "$JOB_URL")
RSS_BEFORE=$(rss_kb)
echo "# load average before the streams: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/streams.out"
BASE=$BASE KEY=$KEY STREAMS=$STREAMS node scripts/bench/streams.mjs >"$WORK/streams.out" 2>"$WORK/streams.err" &
STREAMS_PID=$!
deadline=$((SECONDS + 60))
until grep -q '^open ' "$WORK/streams.out"; do
  kill -0 "$STREAMS_PID" 2>/dev/null || { cat "$WORK/streams.err" >&2; echo "stream client exited" >&2; exit 1; }
  ((SECONDS < deadline)) || { echo "streams did not open within 60 s" >&2; exit 1; }
  sleep 0.2
done
OPENED=$(awk '/^open / {print $2}' "$WORK/streams.out")
# Not a synchronisation: a steady state to measure in. PostgreSQL counts an idle connection's
# transactions up to 10 s late, so the streams' opening reads are let settle first; then every
# stream goes through two re-reads (every 5 s). Meanwhile: the api's CPU time and the
# transactions on its database, with no requests.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
commits() { psql -qtAX "$DATABASE_SERVER/postgres" -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$ISOLATED_DB'"; }
sleep 11
TICKS_0=$(cpu_ticks) COMMITS_0=$(commits) T_0=$(date +%s.%N)
sleep 12
TICKS_1=$(cpu_ticks) COMMITS_1=$(commits) T_1=$(date +%s.%N)
python3 -c "
wall = $T_1 - $T_0
print(f'# idle with $STREAMS streams over {wall:.1f} s: api CPU {($TICKS_1 - $TICKS_0) / $(getconf CLK_TCK) / wall * 100:.0f}% of one core, '
      f'{($COMMITS_1 - $COMMITS_0) / wall:.0f} transactions/s on its database (statistics lag up to 0.5 s)')"
RSS_STREAMS=$(rss_kb)
read -r HISTORY_STREAMS HISTORY_STREAMS_RPS < <(p99 "$HISTORY_URL")
read -r JOB_STREAMS JOB_STREAMS_RPS < <(p99 "$JOB_URL")
RSS_AFTER_LOAD=$(rss_kb)
kill -USR1 "$STREAMS_PID"
wait "$STREAMS_PID" || true
STREAMS_PID=
STILL_OPEN=$(awk '/^still-open / {print $2}' "$WORK/streams.out")
python3 - "$STREAMS" "$OPENED" "$STILL_OPEN" "$RSS_BEFORE" "$RSS_STREAMS" "$RSS_AFTER_LOAD" <<PY
import sys
streams, opened, still, before, during, after = sys.argv[1:]
extra = (max(int(during), int(after)) - int(before)) / 1024
print(f"event streams: {opened} of {streams} open ({still} still open after the load), api RSS {int(before)/1024:.1f} MB before, "
      f"{int(during)/1024:.1f} MB with them, {int(after)/1024:.1f} MB after load = +{extra:.1f} MB (target < +50 MB) {'met' if extra < 50 else 'NOT MET'}")
for name, idle, idle_rps, busy, busy_rps in (
    ("/api/jobs/history?limit=20", "$HISTORY_IDLE", "$HISTORY_IDLE_RPS", "$HISTORY_STREAMS", "$HISTORY_STREAMS_RPS"),
    ("/api/jobs/{id} (10000 items)", "$JOB_IDLE", "$JOB_IDLE_RPS", "$JOB_STREAMS", "$JOB_STREAMS_RPS"),
):
    print(f"GET {name} p99 (wrk -t2 -c$LOAD_CONNECTIONS -d$LOAD_DURATION): {float(idle):.2f} ms without streams ({idle_rps}/s), "
          f"{float(busy):.2f} ms with {opened} streams ({busy_rps}/s) = {float(busy) / float(idle):.2f}x (target: no effect)")
PY

# 4. Built assets.
python3 - <<'PY'
import glob, gzip, os
chunks = sorted(glob.glob("web/dist/assets/*.js"), key=os.path.getsize, reverse=True)
total = 0
for path in chunks:
    data = open(path, "rb").read()
    size = len(gzip.compress(data, 9))
    total += size
    print(f"asset {os.path.basename(path)}: {len(data) / 1024:.1f} KB, gzip {size / 1024:.1f} KB")
index = [p for p in chunks if os.path.basename(p).startswith("index-")]
editor = [p for p in chunks if os.path.basename(p).startswith("PipelineEditor-")]
entry = sum(len(gzip.compress(open(p, "rb").read(), 9)) for p in index)
print(f"assets: {len(chunks)} JS chunks, gzip {total / 1024:.1f} KB in all, entry chunk gzip {entry / 1024:.1f} KB; "
      f"pipeline editor its own chunk: {'yes (' + os.path.basename(editor[0]) + ')' if editor else 'no'}")
PY
