#!/usr/bin/env bash
# `make bench` (after the api, worker and dashboard benchmarks): admission of work by the
# scheduler (issue 12), with the release api, scheduler, worker and Cohere stand-in against the
# local PostgreSQL and RabbitMQ. Each part runs on a system of its own (database, broker prefix,
# storage), removed afterwards:
#   1. submit: time to 202 of whole-library jobs of 1,000 to 1,000,000 URL images (inserted
#      with SQL), median of BENCH_ADMISSION_SUBMIT_REPEATS runs (one at 1,000,000), and the
#      api's RSS during the 1,000,000 submission. No scheduler: nothing is released.
#   2. depth: the stage queue's depth, sampled every 0.5 s for BENCH_ADMISSION_DEPTH_SECONDS,
#      while a 100,000-image job runs (scheduler, one worker, stand-in at 100-300 ms), against
#      the scheduler's window.
#   3. fairness: stand-in enforcing 600 calls/min (100-300 ms), two workers told the limit, the
#      scheduler. Tenant A submits 20,000 images, tenant B 50 images 10 s later: B's time to
#      completion. Then both backlogged: each tenant's share of the calls over
#      BENCH_ADMISSION_SHARE_SECONDS (from job_results.created_at), with equal weights and then
#      with weights 3:1 (`api admin set-share`), the calls per minute against the limit and the
#      stand-in's 429s.
#   4. budget: the estimate of a job over the sample images against the tokens and cost the
#      stand-in billed for it; then a job of 500 copies of them capped at a tenth of its
#      estimate (scheduler, one worker, stand-in at 100-300 ms): the overshoot against the bound
#      of the calls in flight when the cap was reached.
# Images of parts 2 to 4 are copies of uploaded sample images: the upload's row is copied
# with SQL, every copy naming the same stored bytes. Prints one line per measurement (and `#`
# lines with detail); docs/benchmarks.md ("Admission") describes the method.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

RUNS=${BENCH_ADMISSION_RUNS:-submit depth fairness budget}
SUBMIT_SIZES=${BENCH_ADMISSION_SUBMIT_SIZES:-1000 10000 100000 1000000}
SUBMIT_REPEATS=${BENCH_ADMISSION_SUBMIT_REPEATS:-3}
DEPTH_ITEMS=${BENCH_ADMISSION_DEPTH_ITEMS:-100000}
DEPTH_SECONDS=${BENCH_ADMISSION_DEPTH_SECONDS:-30}
DEPTH_CONCURRENCY=${BENCH_ADMISSION_DEPTH_CONCURRENCY:-32}
A_ITEMS=${BENCH_ADMISSION_A_ITEMS:-20000}
B_ITEMS=${BENCH_ADMISSION_B_ITEMS:-50}
B_DELAY=${BENCH_ADMISSION_B_DELAY_SECONDS:-10}
SHARE_SECONDS=${BENCH_ADMISSION_SHARE_SECONDS:-120}
# After both tenants have work (or the weights change), time for the window to turn over
# before counting.
SETTLE_SECONDS=${BENCH_ADMISSION_SETTLE_SECONDS:-40}
RPM=${BENCH_ADMISSION_RPM:-600}
FAIR_CONCURRENCY=${BENCH_ADMISSION_FAIR_CONCURRENCY:-16}
BUDGET_ITEMS=${BENCH_ADMISSION_BUDGET_ITEMS:-500}
BUDGET_CONCURRENCY=${BENCH_ADMISSION_BUDGET_CONCURRENCY:-32}
export APP__SCHEDULER__WINDOW=${APP__SCHEDULER__WINDOW:-128}
WINDOW=$APP__SCHEDULER__WINDOW
wanted() { [[ " $RUNS " == *" $1 "* ]]; }

ensure_venv "pika==1.*"
# BENCH_ADMISSION_BIN=target/debug tries the script out on the debug build (numbers not comparable).
BIN=${BENCH_ADMISSION_BIN:-target/release}
[ "$BIN" != target/release ] || cargo build -q --release -p api -p worker -p scheduler -p cohere-standin

PIDS=()
WORK=$(mktemp -d)
STANDIN_KEY="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
stop_processes() { # SIGTERM, then wait for each to exit
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
stop_system() {
  stop_processes
  if [ -n "${ISOLATED_PID:-}" ]; then stop_isolated_api; fi
  ISOLATED_PID=
}
cleanup() {
  local status=$? log
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.log; do
      [ -s "$log" ] && { echo "--- last lines of $(basename "$log")" >&2; tail -n 15 "$log" >&2; }
    done
  fi
  stop_system
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sql() { psql -qtAX "$APP__DATABASE__URL" -c "$1"; }
load() { echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; }

# A fresh system for one part: the release api with its own database, broker prefix and
# storage (tenant "$1", its key in KEY), job views uncached.
start_system() {
  stop_system
  export APP__HTTP__JOB_CACHE_MILLIS=0
  start_isolated_api $BIN/api "$1"
  trap cleanup EXIT
  TENANT=$1
}

# A pipeline of $2 stages for the tenant of key $1; prints its id.
pipeline() {
  local stages='[{"name":"describe","prompt":"Describe the image."}]'
  [ "$2" = 2 ] && stages='[{"name":"describe","prompt":"Describe the image."},{"name":"again","prompt":"Again."}]'
  curl -fsS -H "Authorization: Bearer $1" -H 'content-type: application/json' "$BASE/api/pipelines" \
    -d "{\"name\":\"bench-admission\",\"stages\":$stages}" | json 'd["id"]'
}

# An empty library named $2 for the tenant of key $1; prints its id.
library() {
  curl -fsS -H "Authorization: Bearer $1" -H 'content-type: application/json' "$BASE/api/libraries" \
    -d "{\"name\":\"$2\"}" | json 'd["id"]'
}

# Uploads files $3... into library $2 of the tenant of key $1 (their sizes are recorded).
upload() {
  local key=$1 id=$2 file form=()
  shift 2
  for file in "$@"; do form+=(-F "file=@$file"); done
  curl -fsS -H "Authorization: Bearer $key" "${form[@]}" "$BASE/api/libraries/$id/images" >/dev/null
}

# Copies the rows of library $1's images, in turn, until it holds $2 images: every copy names
# the same stored bytes (and size) as its original.
copy_images() {
  sql "INSERT INTO images (id, tenant_id, library_id, filename, source, object_key, url, media_type,
         size_bytes, content_hash, width, height, created_at)
       SELECT gen_random_uuid(), o.tenant_id, o.library_id, 'copy-' || g || '-' || o.filename, o.source,
         o.object_key, o.url, o.media_type, o.size_bytes, o.content_hash, o.width, o.height,
         o.created_at + (g + 1) * interval '1 microsecond'
       FROM (SELECT *, row_number() OVER (ORDER BY created_at, id) - 1 AS k, count(*) OVER () AS n
             FROM images WHERE library_id = '$1') o
       JOIN generate_series(0, $2 - 1) g ON g % o.n = o.k AND g >= o.n" >/dev/null
}

# A library named $2 of $3 images for the tenant of key $1: one sample image uploaded, then
# copied with SQL; prints its id.
copied_library() {
  local key=$1 name=$2 n=$3 id
  id=$(library "$key" "$name")
  upload "$key" "$id" samples/images/horse.png
  copy_images "$id" "$n"
  echo "$id"
}

# Submits a whole-library job (key $1, pipeline $2, library $3; $4: more fields of the body as
# JSON, optional); prints its id and the wall-clock time of the 202.
submit() {
  local extra=${4:-}
  python3 - "$BASE" "$1" "$2" "$3" "${extra:-"{}"}" <<'PY'
import json, sys, time, urllib.request
base, key, pipeline, library, extra = sys.argv[1:6]
body = json.dumps({"pipeline_id": pipeline, "library_id": library, **json.loads(extra)}).encode()
request = urllib.request.Request(f"{base}/api/jobs/submit", data=body,
    headers={"Authorization": f"Bearer {key}", "content-type": "application/json"})
with urllib.request.urlopen(request) as response:
    assert response.status == 202, response.status
    print(json.load(response)["id"], f"{time.time():.6f}")
PY
}

# Polls job $2 (key $1) every 100 ms until it is finished (at most $3 seconds, default 600);
# prints its view (JSON).
wait_finished() {
  python3 - "$BASE" "$1" "$2" "${3:-600}" <<'PY'
import json, sys, time, urllib.request
base, key, job, limit = sys.argv[1:5]
started = time.time()
while True:
    request = urllib.request.Request(f"{base}/api/jobs/{job}", headers={"Authorization": f"Bearer {key}"})
    view = json.load(urllib.request.urlopen(request))
    if view["status"] not in ("queued", "running"):
        print(json.dumps(view))
        break
    if time.time() - started > float(limit):
        sys.exit(f"job {job} is not finished after {limit} s: {view['counts']}")
    time.sleep(0.1)
PY
}

start_standin() { # $1 $2: latency range (ms); further arguments go to the stand-in
  local port min=$1 max=$2
  shift 2
  port=$(free_port)
  $BIN/cohere-standin --host 127.0.0.1 --port "$port" --api-key "$STANDIN_KEY" \
    --latency-min-ms "$min" --latency-max-ms "$max" "$@" >>"$WORK/standin.log" 2>&1 &
  PIDS+=($!)
  STANDIN_URL="http://127.0.0.1:$port"
  wait_http "$STANDIN_URL/health" 30
}

start_scheduler() { # returns once it leads
  : >"$WORK/scheduler.log"
  APP__SCHEDULER__HEALTH_PORT=0 APP__TELEMETRY__LOG_FILTER=info,sqlx=warn,lapin=warn \
    $BIN/scheduler >>"$WORK/scheduler.log" 2>&1 &
  PIDS+=($!)
  local deadline=$((SECONDS + 30))
  until grep -q "leading" "$WORK/scheduler.log"; do
    ((SECONDS < deadline)) || { echo "the scheduler does not lead after 30 s" >&2; exit 1; }
    sleep 0.1
  done
}

consumers() {
  .venv/bin/python - "$ISOLATED_PREFIX.stage" <<'PY'
import sys, pika
c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
print(c.channel().queue_declare(queue=sys.argv[1], passive=True).method.consumer_count)
c.close()
PY
}

# A worker at concurrency $1 (log $WORK/worker-$2.log), returning once the stage queue has
# $3 consumers.
start_worker() {
  local log=$WORK/worker-$2.log deadline=$((SECONDS + 30))
  : >"$log"
  APP__COHERE__BASE_URL=$STANDIN_URL APP__COHERE__API_KEY=$STANDIN_KEY APP__WORKER__CONCURRENCY=$1 \
    APP__WORKER__HEALTH_PORT=0 APP__TELEMETRY__LOG_FILTER=info,sqlx=warn,lapin=warn \
    $BIN/worker >>"$log" 2>&1 &
  PIDS+=($!)
  until grep -q consuming "$log" && [ "$(consumers)" = "$3" ]; do
    ((SECONDS < deadline)) || { echo "the worker is not consuming after 30 s" >&2; exit 1; }
    sleep 0.1
  done
}

# --- 1. time to 202 --------------------------------------------------------------------------
if wanted submit; then
start_system bench-admission-submit
PIPELINE=$(pipeline "$KEY" 2)
LARGEST=$(printf '%s\n' $SUBMIT_SIZES | sort -n | tail -1)
echo "# time to 202 of whole-library jobs (two-stage pipeline, URL images inserted with SQL; no scheduler running; $(load))"
declare -A MEDIAN
for N in $SUBMIT_SIZES; do
  LIBRARY=$(library "$KEY" "lib-$N")
  sql "INSERT INTO images (id, tenant_id, library_id, filename, source, url, created_at)
    SELECT gen_random_uuid(), l.tenant_id, l.id, 'img-' || g || '.jpg', 'url', 'https://images.example.org/' || g || '.jpg',
           now() + g * interval '1 microsecond' FROM libraries l, generate_series(1, $N) g WHERE l.id = '$LIBRARY'" >/dev/null
  REPEATS=$SUBMIT_REPEATS
  [ "$N" -ge 1000000 ] && REPEATS=${BENCH_ADMISSION_LARGE_REPEATS:-1}
  # Each run: the time to 202 (python's clock around one request on a fresh connection), the
  # api's VmRSS sampled every 2 ms during the request, its VmHWM after, and the job's total as
  # the first GET shows it.
  OUT=$(python3 - "$BASE" "$KEY" "$PIPELINE" "$LIBRARY" "$ISOLATED_PID" "$REPEATS" <<'PY'
import json, statistics, sys, threading, time, urllib.request
base, key, pipeline, library, pid, repeats = sys.argv[1:7]
def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
body = json.dumps({"pipeline_id": pipeline, "library_id": library}).encode()
times, rss_peak = [], 0
for run in range(int(repeats)):
    done = threading.Event()
    peak = [status("VmRSS")]
    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status("VmRSS"))
            time.sleep(0.002)
    sampler = threading.Thread(target=sample)
    sampler.start()
    request = urllib.request.Request(f"{base}/api/jobs/submit", data=body, headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        code = response.status
        job = json.load(response)
    taken = (time.perf_counter() - started) * 1000
    done.set(); sampler.join()
    view = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/jobs/{job['id']}", headers=headers)))
    times.append(taken)
    rss_peak = max(rss_peak, peak[0])
    print(f"# submit images={view['counts']['total']} run={run + 1} status={code} time_to_202_ms={taken:.1f} "
          f"job_status={view['status']} api_rss_peak_mb={peak[0] / 1024:.1f}")
print(f"median {statistics.median(times):.1f} {' '.join(f'{t:.1f}' for t in times)} {rss_peak / 1024:.1f} {status('VmHWM') / 1024:.1f}")
PY
)
  grep '^#' <<<"$OUT"
  read -r _ MED ALL <<<"$(grep '^median' <<<"$OUT")"
  MEDIAN[$N]=$MED
  RUN_TIMES=$(awk '{for (i = 1; i < NF - 1; i++) printf "%s%s", (i > 1 ? ", " : ""), $i}' <<<"$ALL")
  RSS=$(awk '{print $(NF - 1)}' <<<"$ALL")
  HWM=$(awk '{print $NF}' <<<"$ALL")
  printf 'submit %s images: time to 202 median %s ms of %s (%s ms) (target < 2000 ms at 1,000,000, flat); %s\n' \
    "$N" "$MED" "$REPEATS" "$RUN_TIMES" "$(load)"
  if [ "$N" = "$LARGEST" ]; then
    python3 - "$N" "$RSS" "$HWM" <<'PY'
import sys
n, rss, hwm = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"api memory during the {int(n):,}-image submission: peak VmRSS {rss:.1f} MB (sampled every 2 ms), "
      f"VmHWM {hwm:.1f} MB over the api's life (target < 200 MB) {'met' if max(rss, hwm) < 200 else 'NOT met'}")
PY
  fi
done
SIZES=($(printf '%s\n' $SUBMIT_SIZES | sort -n))
NEXT=${SIZES[-1]}
[ "${#SIZES[@]}" -lt 2 ] || NEXT=${SIZES[-2]}
python3 - "${SIZES[0]}" "${MEDIAN[${SIZES[0]}]}" "$NEXT" "${MEDIAN[$NEXT]}" "$LARGEST" "${MEDIAN[$LARGEST]}" <<'PY'
import sys
n0, t0, n1, t1, n2, t2 = (float(x) for x in sys.argv[1:7])
# Flat: between the two largest sizes the time grows by less than half as much as the size.
flat = n2 == n1 or t2 / t1 < 0.5 * n2 / n1
print(f"submit curve: {n2 / n0:.0f}x the images, {t2 / t0:.1f}x the time to 202 ({t0:.1f} ms at {n0:,.0f}, "
      f"{t1:.1f} ms at {n1:,.0f}, {t2:.1f} ms at {n2:,.0f}); from {n1:,.0f} to {n2:,.0f} images "
      f"{(t2 - t1) / (n2 - n1) * 1000 if n2 > n1 else 0:.2f} ms per 1,000 more; "
      f"flat {'yes' if flat else 'NO (linear at the top)'}; "
      f"target < 2000 ms at 1,000,000 {'met' if t2 < 2000 else 'NOT met'}")
PY
fi

# --- 2. stage queue depth --------------------------------------------------------------------
if wanted depth; then
start_system bench-admission-depth
PIPELINE=$(pipeline "$KEY" 1)
LIBRARY=$(copied_library "$KEY" depth "$DEPTH_ITEMS")
start_standin 100 300
start_scheduler
start_worker "$DEPTH_CONCURRENCY" depth 1
read -r JOB _ <<<"$(submit "$KEY" "$PIPELINE" "$LIBRARY")"
# Every 0.5 s: the stage queue's ready messages (AMQP passive declare), the items released and
# not finished (queued or in flight: the window, from PostgreSQL) and the job's finished items.
.venv/bin/python - "$ISOLATED_PREFIX.stage" "$APP__DATABASE__URL" "$JOB" "$DEPTH_SECONDS" "$WINDOW" \
  "$DEPTH_ITEMS" "$DEPTH_CONCURRENCY" "$(load)" <<'PY'
import statistics, subprocess, sys, time, pika
queue, db, job, seconds, window, items, concurrency, load = sys.argv[1:9]
window = int(window)
c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
ch = c.channel()
def sql(q):
    return subprocess.run(["psql", "-qtAX", db, "-c", q], check=True, capture_output=True, text=True).stdout.split("|")
depths, windows = [], []
started = time.monotonic()
finished_before = None
while time.monotonic() - started < float(seconds):
    tick = time.monotonic()
    depths.append(ch.queue_declare(queue=queue, passive=True).method.message_count)
    in_window, done = sql(f"""SELECT (SELECT count(*) FROM job_items WHERE released_at IS NOT NULL
        AND status IN ('pending', 'running')), passed_items + filtered_out_items + failed_items
        FROM jobs WHERE id = '{job}'""")
    windows.append(int(in_window))
    finished_before = finished_before if finished_before is not None else int(done)
    time.sleep(max(0.0, 0.5 - (time.monotonic() - tick)))
elapsed = time.monotonic() - started
done = int(done)
c.close()
print(f"# depth samples: {' '.join(map(str, depths))}")
print(f"# window samples: {' '.join(map(str, windows))}")
print(f"stage queue depth during a {int(items):,}-image job (1 worker at concurrency {concurrency}, stand-in 100-300 ms, "
      f"{len(depths)} samples over {elapsed:.0f} s): max {max(depths)} ready messages, median {statistics.median(depths):.0f}; "
      f"released and unfinished items max {max(windows)}; window {window} "
      f"(target: depth under the window) {'met' if max(depths) <= window else 'NOT met'}; "
      f"{done} items finished meanwhile; {load}")
PY
stop_system
fi

# --- 3. fairness -----------------------------------------------------------------------------
if wanted fairness; then
start_system bench-admission-a
KEY_A=$KEY TENANT_A=$TENANT TENANT_B=bench-admission-b
KEY_B=$($BIN/api admin create-key --tenant "$TENANT_B")
PIPELINE_A=$(pipeline "$KEY_A" 1)
PIPELINE_B=$(pipeline "$KEY_B" 1)
LIBRARY_A=$(copied_library "$KEY_A" a "$A_ITEMS")
LIBRARY_B_SMALL=$(copied_library "$KEY_B" b-small "$B_ITEMS")
LIBRARY_B_LARGE=$(copied_library "$KEY_B" b-large "$A_ITEMS")
start_standin 100 300 --requests-per-minute "$RPM"
start_scheduler
export APP__COHERE__REQUESTS_PER_MINUTE=$RPM
start_worker "$FAIR_CONCURRENCY" 1 1
start_worker "$FAIR_CONCURRENCY" 2 2
unset APP__COHERE__REQUESTS_PER_MINUTE

read -r JOB_A _ <<<"$(submit "$KEY_A" "$PIPELINE_A" "$LIBRARY_A")"
sleep "$B_DELAY"
read -r JOB_B SINCE_B <<<"$(submit "$KEY_B" "$PIPELINE_B" "$LIBRARY_B_SMALL")"
# B's job to its finished_at, polled every 100 ms; and when its items were released, and what
# of A's was in the window as B arrived (the job_items rows say).
python3 - "$BASE" "$KEY_B" "$JOB_B" "$SINCE_B" "$B_ITEMS" "$B_DELAY" "$A_ITEMS" "$WINDOW" \
  "$FAIR_CONCURRENCY" "$RPM" "$(load)" <<'PY'
import datetime, json, sys, time, urllib.request
base, key, job, since, b_items, delay, a_items, window, concurrency, rpm, load = sys.argv[1:12]
since = float(since)
headers = {"Authorization": f"Bearer {key}"}
while True:
    view = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/jobs/{job}", headers=headers)))
    if view["status"] not in ("queued", "running"):
        break
    if time.time() - since > 600:
        sys.exit(f"tenant B's job is not finished after 600 s: {view['counts']}")
    time.sleep(0.1)
finished = datetime.datetime.fromisoformat(view["finished_at"].replace("Z", "+00:00")).timestamp()
taken = finished - since
print(f"fairness: tenant B's {b_items}-image job, submitted {delay} s after tenant A's {int(a_items):,}-image job, "
      f"{view['status']} {taken:.1f} s after its 202 (target < 30 s) {'met' if taken < 30 and view['status'] == 'completed' else 'NOT met'} "
      f"(window {window}, 2 workers at concurrency {concurrency}, {rpm} calls/min); {load}")
PY
sql "SELECT '# B''s items released ' || round(extract(epoch FROM min(i.released_at) - j.created_at)::numeric, 1)
       || ' to ' || round(extract(epoch FROM max(i.released_at) - j.created_at)::numeric, 1)
       || ' s after its submission, finished ' || round(extract(epoch FROM min(i.finished_at) - j.created_at)::numeric, 1)
       || ' to ' || round(extract(epoch FROM max(i.finished_at) - j.created_at)::numeric, 1) || ' s after it'
     FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE j.id = '$JOB_B' GROUP BY j.created_at"

# Both tenants backlogged (BENCH_ADMISSION_SHARE_SECONDS=0 skips this): B submits as much as
# A did.
if [ "$SHARE_SECONDS" -gt 0 ]; then
submit "$KEY_B" "$PIPELINE_B" "$LIBRARY_B_LARGE" >/dev/null

# Calls per tenant from the results written in [now + settle, + SHARE_SECONDS), the stand-in's
# answers over the same span; $1: the weights (for the line), $2 $3: the target shares.
measure_shares() {
  local weights=$1 target_a=$2 target_b=$3 from to calls_before calls_after
  sleep "$SETTLE_SECONDS"
  from=$(sql "SELECT clock_timestamp()")
  calls_before=$(curl -fsS "$STANDIN_URL/admin/calls")
  sleep "$SHARE_SECONDS"
  to=$(sql "SELECT clock_timestamp()")
  calls_after=$(curl -fsS "$STANDIN_URL/admin/calls")
  COUNTS=$(sql "SELECT t.name, count(*) FROM job_results r JOIN jobs j ON j.id = r.job_id
                  JOIN tenants t ON t.id = j.tenant_id
                WHERE r.created_at >= '$from' AND r.created_at < '$to' GROUP BY t.name")
  python3 - "$weights" "$target_a" "$target_b" "$SHARE_SECONDS" "$RPM" "$TENANT_A" "$TENANT_B" \
    "$COUNTS" "$calls_before" "$calls_after" "$(load)" <<'PY'
import json, sys
weights, target_a, target_b, seconds, rpm, tenant_a, tenant_b, counts, before, after, load = sys.argv[1:12]
target_a, target_b, seconds, rpm = float(target_a), float(target_b), float(seconds), int(rpm)
counts = dict(line.split("|") for line in counts.split())
a, b = int(counts.get(tenant_a, 0)), int(counts.get(tenant_b, 0))
total = a + b
before, after = json.loads(before), json.loads(after)
def status(calls, code):
    return int(calls["by_status"].get(str(code), 0))
answered = after["total"] - before["total"]
limited = status(after, 429) - status(before, 429)
per_minute = total / seconds * 60
share_a, share_b = a / max(total, 1), b / max(total, 1)
shares_met = abs(share_a * 100 - target_a) <= 5 and abs(share_b * 100 - target_b) <= 5
print(f"fair share, weights {weights}, over {seconds:.0f} s: A {a} calls = {share_a:.1%}, B {b} calls = {share_b:.1%} "
      f"(target {target_a:.0f}/{target_b:.0f} ± 5) {'met' if shares_met else 'NOT met'}; "
      f"{per_minute:.0f} calls/min of {rpm} = {per_minute / rpm:.1%} (target >= 97%) {'met' if per_minute / rpm >= 0.97 else 'NOT met'}; "
      f"429s: {limited} of {answered} answers = {limited / max(answered, 1):.2%} (target < 1%) {'met' if limited / max(answered, 1) < 0.01 else 'NOT met'}; {load}")
PY
}
measure_shares 1:1 50 50
$BIN/api admin set-share --tenant "$TENANT_A" --weight 3 >/dev/null
measure_shares 3:1 75 25
fi
stop_system
fi

# --- 4. estimate accuracy and the budget cap -------------------------------------------------
if wanted budget; then
start_system bench-admission-budget
PIPELINE=$(pipeline "$KEY" 1)
SAMPLE_FILES=(samples/images/*.png samples/images/*.jpg)
start_standin 100 300
start_scheduler
start_worker "$BUDGET_CONCURRENCY" budget 1

# The estimate of a job over the sample images against what the stand-in billed for it.
SAMPLES=$(library "$KEY" samples)
upload "$KEY" "$SAMPLES" "${SAMPLE_FILES[@]}"
ESTIMATE=$(curl -fsS -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  "$BASE/api/jobs/estimate" -d "{\"pipeline_id\":\"$PIPELINE\",\"library_id\":\"$SAMPLES\"}")
read -r JOB _ <<<"$(submit "$KEY" "$PIPELINE" "$SAMPLES")"
VIEW=$(wait_finished "$KEY" "$JOB")
python3 - "$ESTIMATE" "$VIEW" "$(load)" <<'PY'
import json, sys
estimate, view, load = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
low, high = estimate["input_tokens"]["low"], estimate["input_tokens"]["high"]
billed_in, billed_out = view["usage"]["billed_input_tokens"], view["usage"]["billed_output_tokens"]
cost, cost_low, cost_high = view["usage"]["cost_usd"], estimate["cost_usd"]["low"], estimate["cost_usd"]["high"]
error = ((low + high) / 2 - billed_in) / billed_in
assumed = estimate["output_tokens"]
total_error = ((low + high) / 2 + assumed - billed_in - billed_out) / (billed_in + billed_out)
verdict = lambda e: "met" if abs(e) <= 0.2 else "NOT met"
print(f"estimate accuracy ({estimate['images']} sample images, {estimate['images_of_unknown_size']} of unknown size, one stage, "
      f"job {view['status']}): input tokens estimated {low}-{high}, billed {billed_in} = {error:+.1%} "
      f"(target ± 20%) {verdict(error)}; output tokens assumed {assumed}, billed {billed_out}; "
      f"input + output {total_error:+.1%} (± 20%) {verdict(total_error)}; cost estimated {cost_low:.6f}-{cost_high:.6f} USD, "
      f"billed {cost:.6f} USD ({(cost_high - cost) / cost:+.0%} at the high end); {load}")
PY

# A job of BUDGET_ITEMS copies of the sample images capped at a tenth of its estimate.
COPIES=$(library "$KEY" copies)
upload "$KEY" "$COPIES" "${SAMPLE_FILES[@]}"
copy_images "$COPIES" "$BUDGET_ITEMS"
ESTIMATE=$(curl -fsS -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
  "$BASE/api/jobs/estimate" -d "{\"pipeline_id\":\"$PIPELINE\",\"library_id\":\"$COPIES\"}")
CAP=$(json 'd["cost_usd"]["high"] / 10' <<<"$ESTIMATE")
read -r JOB _ <<<"$(submit "$KEY" "$PIPELINE" "$COPIES" "{\"max_cost_usd\": $CAP}")"
VIEW=$(wait_finished "$KEY" "$JOB")
# When the cap was reached (t_cap: the batch write whose results first brought the running sum
# to it) and what was in flight then: items released before the first skip and not finished
# before t_cap. Every call that spent past the cap is one of theirs, so the overshoot is at most
# their number × the most one call cost (as in the costs test of tests/tests/worker).
STOP=$(psql -qtAX "$APP__DATABASE__URL" -v job="'$JOB'" -v cap="$CAP" <<'SQL'
WITH batches AS (
    SELECT created_at, sum(cost_usd) AS cost FROM job_results WHERE job_id = :job GROUP BY created_at),
running AS (
    SELECT created_at, sum(cost) OVER (ORDER BY created_at) AS spent FROM batches),
t AS (
    SELECT (SELECT min(created_at) FROM running WHERE spent >= :cap) AS t_cap,
           (SELECT min(finished_at) FROM job_items WHERE job_id = :job AND status = 'skipped') AS t_skip)
SELECT (SELECT count(*) FROM job_results WHERE job_id = :job),
       (SELECT max(cost_usd) FROM job_results WHERE job_id = :job),
       (SELECT count(*) FROM job_results, t WHERE job_id = :job AND created_at >= t.t_cap),
       (SELECT count(*) FROM job_items i, t
        WHERE i.job_id = :job AND i.released_at IS NOT NULL AND i.released_at <= t.t_skip
          AND (i.finished_at IS NULL OR i.finished_at >= t.t_cap)),
       (SELECT count(*) FROM job_items WHERE job_id = :job AND status = 'skipped' AND released_at IS NOT NULL)
FROM t
SQL
)
python3 - "$ESTIMATE" "$VIEW" "$CAP" "$STOP" "$BUDGET_CONCURRENCY" "$WINDOW" "$(load)" <<'PY'
import json, sys
estimate, view, cap = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
calls, max_call, from_crossing, in_flight, skipped_released = sys.argv[4].split("|")
calls, max_call, from_crossing, in_flight = int(calls), float(max_call), int(from_crossing), int(in_flight)
concurrency, window, load = sys.argv[5:8]
spent = view["usage"]["cost_usd"]
overshoot = spent - cap
bound = in_flight * max_call
print(f"budget cap: a {estimate['images']}-image job capped at a tenth of its estimate ({cap:.6f} of "
      f"{estimate['cost_usd']['high']:.6f} USD; 1 worker at concurrency {concurrency}, window {window}, stand-in 100-300 ms): "
      f"{view['status']}, stop_reason {view['stop_reason']}, {calls} calls, {view['counts']['skipped']} items skipped "
      f"({skipped_released} of them released); spent {spent:.6f} USD, overshoot {overshoot:.6f} USD = "
      f"{overshoot / cap:.0%} of the cap = {overshoot / max_call:.1f} calls at the dearest call; {from_crossing} calls written "
      f"from the crossing on; in-flight bound {in_flight} calls x {max_call:.6f} = {bound:.6f} USD (target: within it) "
      f"{'met' if 0 <= overshoot <= bound + 1e-12 and view['stop_reason'] == 'budget_exhausted' else 'NOT met'}; {load}")
PY
stop_system
fi
