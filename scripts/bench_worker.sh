#!/usr/bin/env bash
# `make bench` (second part): the worker against the Cohere stand-in, with the release api,
# the local PostgreSQL and RabbitMQ. Measures
#   1. throughput: stand-in without latency, one worker at concurrency 64, a job of
#      6,000 thumbnails (128 px JPEG, a few KB: what the orchestration costs) and one of
#      2,000 sample photos (about 250 KB each: what moving the image bytes adds);
#   2. concurrency efficiency: stand-in at a fixed 200 ms, concurrency 32, a 320-photo job,
#      measured throughput / (32 / 0.2 s);
#   3. worker memory: peak RSS (VmHWM) of a worker at concurrency 64 over a 1,000-photo job
#      with 200 ms latency;
#   4. the cluster-wide rate limit: the stand-in enforcing 600 requests/minute (100-300 ms
#      latency), two worker processes each told the limit, a 600-photo job: the rate reached
#      (calls answered 200 per minute from the 202 to the job's end) and the share of 429s.
# Each job is timed to its `finished_at` (the moment its last outcome was written), read once
# GET /api/jobs/{id} (job cache off), polled every 100 ms, says `completed`; from when is set
# by BENCH_WORKER_ORDER (see run_job). Prints one line per
# measurement (and one `#` line with the CPU each process used during each throughput run);
# docs/benchmarks.md describes the method.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

THUMBNAIL_ITEMS=${BENCH_WORKER_THUMBNAIL_ITEMS:-6000}
THROUGHPUT_ITEMS=${BENCH_WORKER_THROUGHPUT_ITEMS:-2000}
EFFICIENCY_ITEMS=${BENCH_WORKER_EFFICIENCY_ITEMS:-320}
MEMORY_ITEMS=${BENCH_WORKER_MEMORY_ITEMS:-1000}
# A job that makes no progress for this long is reported as stalled.
STALL_SECONDS=${BENCH_WORKER_STALL_SECONDS:-30}
# worker-first (default) or submit-first: see run_job.
ORDER=${BENCH_WORKER_ORDER:-worker-first}
# Which measurements to make (any of: thumbnails photos efficiency memory).
RATE_LIMIT_ITEMS=${BENCH_WORKER_RATE_LIMIT_ITEMS:-600}
RATE_LIMIT_RPM=${BENCH_WORKER_RATE_LIMIT_RPM:-600}
RUNS=${BENCH_WORKER_RUNS:-thumbnails photos efficiency memory ratelimit}
wanted() { [[ " $RUNS " == *" $1 "* ]]; }
IMAGES=$(printf '%s\n' "$THROUGHPUT_ITEMS" "$EFFICIENCY_ITEMS" "$MEMORY_ITEMS" "$RATE_LIMIT_ITEMS" | sort -n | tail -1)

# pika for the queue checks here and the topology clean-up in lib.sh; pillow for thumbnails.
ensure_venv "pika==1.*" "pillow==11.*"
cargo build -q --release -p api -p worker -p scheduler -p cohere-standin

WORK=
SCHEDULER_PID=
WORKER_PID=
SECOND_WORKER_PID=
STANDIN_PID=
stop_process() { # SIGTERM, then wait for it to exit
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_process "$WORKER_PID"
  stop_process "$SECOND_WORKER_PID"
  stop_process "$STANDIN_PID"
  stop_process "$SCHEDULER_PID"
  WORKER_PID= STANDIN_PID= SCHEDULER_PID=
  stop_isolated_api
  [ -z "$WORK" ] || rm -rf "$WORK"
}

# Fresh job views: every poll reads PostgreSQL.
export APP__HTTP__JOB_CACHE_MILLIS=0
start_isolated_api target/release/api bench-worker
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK=$(mktemp -d)
# The scheduler releases the jobs' items into the stage queue (its default window).
APP__SCHEDULER__HEALTH_PORT=0 target/release/scheduler 2>>"$WORK/scheduler.log" &
SCHEDULER_PID=$!
PREFIX=$ISOLATED_PREFIX
AUTH="Authorization: Bearer $KEY"
STANDIN_KEY="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Two libraries: the sample photos and thumbnails of them, each copy made distinct by a few
# appended bytes. $1: the library's name, $2: the directory of its files; prints its id and
# writes its image ids to $WORK/$1.ids.
python3 - "$WORK/photos" "$IMAGES" <<'PY'
import glob, os, sys
out, n = sys.argv[1], int(sys.argv[2])
samples = sorted(glob.glob("samples/images/*.png") + glob.glob("samples/images/*.jpg"))
data = [open(p, "rb").read() for p in samples]
os.makedirs(out)
for i in range(n):
    ext = os.path.splitext(samples[i % len(samples)])[1]
    with open(f"{out}/{i:05d}{ext}", "wb") as f:
        f.write(data[i % len(samples)] + b"\0bench-worker-%d" % i)
PY
.venv/bin/python - "$WORK/thumbnails" "$THUMBNAIL_ITEMS" <<'PY'
import glob, io, os, sys
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
thumbs = []
for path in sorted(glob.glob("samples/images/*.png") + glob.glob("samples/images/*.jpg")):
    image = Image.open(path).convert("RGB")
    image.thumbnail((128, 128))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    thumbs.append(buffer.getvalue())
os.makedirs(out)
for i in range(n):
    with open(f"{out}/{i:05d}.jpg", "wb") as f:
        f.write(thumbs[i % len(thumbs)] + b"\0bench-worker-%d" % i)
PY
upload_library() {
  local name=$1 dir=$2 library
  library=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/libraries" \
    -d "{\"name\":\"$name\"}" | json 'd["id"]')
  mapfile -t FILES < <(ls "$dir"/* | sort)
  for ((i = 0; i < ${#FILES[@]}; i += 100)); do
    FORM=()
    for f in "${FILES[@]:i:100}"; do FORM+=(-F "file=@$f"); done
    curl -fsS -H "$AUTH" "${FORM[@]}" "$BASE/api/libraries/$library/images" \
      | json '"\n".join(i["id"] for i in d["items"])' >>"$WORK/$name.ids"
  done
  [ "$(wc -l <"$WORK/$name.ids")" -eq "${#FILES[@]}" ] \
    || { echo "uploaded $(wc -l <"$WORK/$name.ids") of ${#FILES[@]} images" >&2; exit 1; }
  rm -rf "$dir"
  echo "$library"
}
PHOTOS=$(upload_library photos "$WORK/photos")
THUMBNAILS=$(upload_library thumbnails "$WORK/thumbnails")
PIPELINE=$(curl -fsS -H "$AUTH" -H 'content-type: application/json' "$BASE/api/pipelines" \
  -d '{"name":"bench-worker","stages":[{"name":"describe","prompt":"Describe the image."}]}' | json 'd["id"]')

# Stand-in answering after $1 ms (up to $2 ms when given); further arguments go to the stand-in.
start_standin() {
  local port min=$1 max=${2:-$1}
  shift $(($# < 2 ? $# : 2))
  port=$(free_port)
  target/release/cohere-standin --host 127.0.0.1 --port "$port" --api-key "$STANDIN_KEY" \
    --latency-min-ms "$min" --latency-max-ms "$max" "$@" 2>>"$WORK/standin.log" &
  STANDIN_PID=$!
  STANDIN_URL="http://127.0.0.1:$port"
  wait_http "$STANDIN_URL/health" 30
}

# Consumers on the stage queue.
consumers() {
  .venv/bin/python - "$PREFIX.stage" <<'PY'
import sys, pika
c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f"))
print(c.channel().queue_declare(queue=sys.argv[1], passive=True).method.consumer_count)
c.close()
PY
}

# One worker process at concurrency $1, returning once it consumes the stage queue ($2: how
# many consumers there are then, 1 by default; $3: its log file).
start_worker() {
  local consuming=${2:-1} log=${3:-$WORK/worker.log}
  : >"$log"
  APP__COHERE__BASE_URL=$STANDIN_URL APP__COHERE__API_KEY=$STANDIN_KEY APP__WORKER__CONCURRENCY=$1 \
    APP__WORKER__HEALTH_PORT=0 \
    APP__TELEMETRY__LOG_FORMAT=json APP__TELEMETRY__LOG_FILTER=${BENCH_WORKER_LOG_FILTER:-info,sqlx=warn,lapin=warn} \
    target/release/worker 2>>"$log" &
  WORKER_PID=$!
  local deadline=$((SECONDS + 30))
  until grep -q consuming "$log" && [ "$(consumers)" = "$consuming" ]; do
    kill -0 "$WORKER_PID" 2>/dev/null || { echo "the worker exited:" >&2; cat "$WORK/worker.log" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "the worker is not consuming after 30 s" >&2; exit 1; }
    sleep 0.1
  done
}

stop_worker_and_standin() {
  stop_process "$WORKER_PID"
  stop_process "$SECOND_WORKER_PID"
  SECOND_WORKER_PID=
  # BENCH_WORKER_KEEP_LOGS=dir keeps each run's worker log there.
  [ -z "${BENCH_WORKER_KEEP_LOGS:-}" ] || cp "$WORK/worker.log" "$BENCH_WORKER_KEEP_LOGS/worker-$(date +%s%N).log"
  stop_process "$STANDIN_PID"
  WORKER_PID= STANDIN_PID=
}

# Submits a job over the first $1 images of library $2 (photos or thumbnails); prints its id
# and the wall-clock time of the 202.
submit_job() {
  local library=$PHOTOS
  [ "$2" = thumbnails ] && library=$THUMBNAILS
  python3 - "$BASE" "$KEY" "$PIPELINE" "$library" "$WORK/$2.ids" "$1" <<'PY'
import json, sys, time, urllib.request
base, key, pipeline, library, ids_file, n = sys.argv[1:7]
ids = open(ids_file).read().split()[:int(n)]
headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
body = json.dumps({"pipeline_id": pipeline, "library_id": library, "image_ids": ids}).encode()
request = urllib.request.Request(f"{base}/api/jobs/submit", data=body, headers=headers)
with urllib.request.urlopen(request) as response:
    assert response.status == 202, response.status
    print(json.load(response)["id"], f"{time.time():.6f}")
PY
}

# The wall-clock time of the worker's "consuming" log line (JSON logs).
consuming_since() {
  python3 - "$WORK/worker.log" <<'PY'
import datetime, json, sys
for line in open(sys.argv[1]):
    if line.startswith("{") and json.loads(line).get("message") == "consuming":
        stamp = json.loads(line)["timestamp"]
        print(f"{datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00')).timestamp():.6f}")
        break
PY
}

# Polls job $1 every 100 ms until it is `completed`; prints "<items> <seconds from $2 to the
# job's finished_at>" ($2: a wall-clock time; api, database and script share this machine's
# clock). Fails, with the job's state, when it ends otherwise or makes no progress
# for $STALL_SECONDS.
wait_job() {
  python3 - "$BASE" "$KEY" "$1" "$2" "$STALL_SECONDS" <<'PY'
import datetime, json, sys, time, urllib.request
base, key, job, since, stall = sys.argv[1:6]
since, stall = float(since), float(stall)
headers = {"Authorization": f"Bearer {key}"}
last_change, last_counts = time.time(), None
while True:
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/jobs/{job}", headers=headers)) as response:
        view = json.load(response)
    now = time.time()
    if view["status"] == "completed":
        # The job's own end (when its last outcome was written), not when this poll saw it.
        finished = datetime.datetime.fromisoformat(view["finished_at"].replace("Z", "+00:00"))
        print(view["counts"]["total"], f"{finished.timestamp() - since:.3f}")
        break
    if view["status"] not in ("queued", "running"):
        sys.exit(f"job {job} ended {view['status']}: {view['counts']}")
    if view["counts"] != last_counts:
        last_change, last_counts = now, view["counts"]
    elif now - last_change > stall:
        sys.exit(f"job {job} stalled for {stall:.0f} s, {now - since:.1f} s after it started: "
                 f"status {view['status']}, counts {view['counts']}")
    time.sleep(0.1)
PY
}

# Runs a job of $2 images of library $3 (photos, the default, or thumbnails) through a fresh
# worker at concurrency $1; sets ITEMS and TAKEN (seconds), and CPU_BEFORE/CPU_AFTER
# (cpu_snapshot around the timed part).
# worker-first (the default): the worker consumes before the job is submitted, and the clock
# starts at the 202. submit-first: the job is submitted with no worker running, then the
# worker starts, and the clock starts at its "consuming" log line.
run_job() {
  local job since out library=${3:-photos}
  if [ "$ORDER" = worker-first ]; then
    start_worker "$1" "${CONSUMERS:-1}"
    CPU_BEFORE=$(cpu_snapshot)
    read -r job since <<<"$(submit_job "$2" "$library")"
  else
    read -r job since <<<"$(submit_job "$2" "$library")"
    CPU_BEFORE=$(cpu_snapshot)
    start_worker "$1" "${CONSUMERS:-1}"
    since=$(consuming_since)
  fi
  [ -n "$job" ] && [ -n "$since" ] || { echo "could not start the job" >&2; return 1; }
  out=$(wait_job "$job" "$since") || { tail -n 5 "$WORK/worker.log" >&2; return 1; }
  CPU_AFTER=$(cpu_snapshot)
  read -r ITEMS TAKEN <<<"$out"
}

# CPU seconds (user + system) used so far by: the worker, the api, the stand-in (by pid), every
# postgres process and beam.smp (by name), and the whole machine (busy, from /proc/stat).
cpu_snapshot() {
  python3 - "$WORKER_PID" "$ISOLATED_PID" "$STANDIN_PID" <<'PY'
import os, sys, time
tick = os.sysconf("SC_CLK_TCK")
pids = dict(zip(("worker", "api", "standin"), sys.argv[1:4]))
out = {name: 0.0 for name in ("worker", "api", "standin", "postgres", "rabbitmq")}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    seconds = (int(fields[11]) + int(fields[12])) / tick
    name = next((k for k, v in pids.items() if v == pid), None)
    name = name or {"postgres": "postgres", "beam.smp": "rabbitmq"}.get(comm)
    if name:
        out[name] += seconds
cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
out["busy"] = (sum(cpu) - cpu[3] - cpu[4]) / tick
out["wall"] = time.time()
print(" ".join(f"{k}={v}" for k, v in out.items()))
PY
}

# --- 1. throughput -------------------------------------------------------------------------
# $1: library, $2: images, $3: what the images are (for the output line).
throughput() {
  start_standin 0
  run_job 64 "$2" "$1" || { echo "throughput run failed" >&2; exit 1; }
  stop_worker_and_standin
  python3 - "$3" <<PY
import sys
items, seconds = int("$ITEMS"), float("$TAKEN")
print(f"worker throughput ({sys.argv[1]}): {items} stage executions in {seconds:.2f} s = "
      f"{items / seconds:.0f}/s (target >= 1500/s)")
PY
  python3 - "$CPU_BEFORE" "$CPU_AFTER" <<'PY'
import os, sys
before, after = (dict((k, float(v)) for k, v in (p.split("=") for p in s.split())) for s in sys.argv[1:3])
d = {k: after[k] - before[k] for k in after}
wall, cores = d["wall"], os.cpu_count()
named = ("worker", "api", "standin", "postgres", "rabbitmq")
other = d["busy"] - sum(d[k] for k in named)
parts = ", ".join(f"{k} {d[k]:.2f}" for k in named)
print(f"# CPU seconds during that run ({wall:.2f} s wall x {cores} cores = {cores * wall:.2f}): "
      f"{parts}, other {max(other, 0):.2f}, idle {max(cores * wall - d['busy'], 0):.2f}")
PY
}
if wanted thumbnails; then throughput thumbnails "$THUMBNAIL_ITEMS" "128 px thumbnails"; fi
if wanted photos; then throughput photos "$THROUGHPUT_ITEMS" "sample photos, ~250 KB"; fi

# --- 2. concurrency efficiency -------------------------------------------------------------
if wanted efficiency; then
start_standin 200
run_job 32 "$EFFICIENCY_ITEMS" || { echo "efficiency run failed" >&2; exit 1; }
stop_worker_and_standin
python3 - <<PY
items, seconds = int("$ITEMS"), float("$TAKEN")
ideal = 32 / 0.2
rate = items / seconds
print(f"worker concurrency efficiency: {items} stage executions in {seconds:.2f} s = {rate:.0f}/s "
      f"of an ideal {ideal:.0f}/s (32 in flight / 0.2 s) = {rate / ideal:.2f} (target >= 0.90)")
PY
fi

# --- 3. memory -----------------------------------------------------------------------------
if wanted memory; then
start_standin 200
run_job 64 "$MEMORY_ITEMS" || { echo "memory run failed" >&2; exit 1; }
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$WORKER_PID/status")
stop_worker_and_standin
python3 - <<PY
print(f"worker memory: peak RSS {$HWM_KB / 1024:.1f} MB at concurrency 64 over $ITEMS stage executions "
      f"with 200 ms latency ({float('$TAKEN'):.2f} s) (target < 100 MB)")
PY
fi

# --- 4. the cluster-wide rate limit --------------------------------------------------------
if wanted ratelimit; then
start_standin 100 300 --requests-per-minute "$RATE_LIMIT_RPM"
export APP__COHERE__REQUESTS_PER_MINUTE=$RATE_LIMIT_RPM
start_worker 16 1 "$WORK/second-worker.log"
SECOND_WORKER_PID=$WORKER_PID
CONSUMERS=2 run_job 16 "$RATE_LIMIT_ITEMS" || { echo "rate-limit run failed" >&2; exit 1; }
unset APP__COHERE__REQUESTS_PER_MINUTE
CALLS=$(curl -fsS "$STANDIN_URL/admin/calls")
stop_worker_and_standin
python3 - "$CALLS" <<PY
import json, sys
calls = json.loads(sys.argv[1])
by_status = {int(k): v for k, v in calls["by_status"].items()}
answered, limited = by_status.get(200, 0), by_status.get(429, 0)
items, seconds, rpm = int("$ITEMS"), float("$TAKEN"), int("$RATE_LIMIT_RPM")
reached = answered / seconds * 60
print(f"rate limit: {items} images through 2 workers in {seconds:.1f} s = {reached:.0f} calls/min "
      f"of {rpm} allowed = {reached / rpm:.1%} (target >= 95%); 429s: {limited} of {calls['total']} "
      f"calls = {limited / max(calls['total'], 1):.2%} (target < 1%)")
PY
fi
