# Shared helpers for the scripts in this folder.
DATABASE_SERVER=${DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Creates database $1 if it does not exist.
ensure_database() {
  psql "$DATABASE_SERVER/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 \
    || psql "$DATABASE_SERVER/postgres" -qc "CREATE DATABASE \"$1\""
}

drop_database() {
  psql "$DATABASE_SERVER/postgres" -qc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}

# Waits until $1 answers 200, for at most $2 seconds.
wait_http() {
  local url=$1 deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "timed out waiting for $url" >&2; return 1; }
    sleep 0.2
  done
}

# A Python virtualenv under .venv with the given packages.
ensure_venv() {
  if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
  .venv/bin/pip install -q --disable-pip-version-check "$@"
}

# Starts the api binary $1 on a free port with its own database, broker prefix and storage
# directory (named after $2), and removes them all on exit. Sets BASE and KEY.
start_isolated_api() {
  local bin=$1 name=$2 id
  id=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
  ISOLATED_DB="${name}_$id"
  ISOLATED_PREFIX="$name-$id"
  ISOLATED_STORAGE=$(mktemp -d)
  local port
  port=$(free_port)
  export APP__DATABASE__URL="$DATABASE_SERVER/$ISOLATED_DB"
  export APP__HTTP__PORT=$port
  export APP__AMQP__PREFIX=$ISOLATED_PREFIX
  export APP__STORAGE__LOCAL_PATH=$ISOLATED_STORAGE
  export APP__TELEMETRY__LOG_FILTER=${APP__TELEMETRY__LOG_FILTER:-warn}
  ensure_database "$ISOLATED_DB"
  trap stop_isolated_api EXIT
  "$bin" migrate >/dev/null
  KEY=$("$bin" admin create-key --tenant "$name")
  "$bin" serve &
  ISOLATED_PID=$!
  BASE="http://127.0.0.1:$port"
  wait_http "$BASE/readyz" 60
}

stop_isolated_api() {
  [ -n "${ISOLATED_PID:-}" ] && kill "$ISOLATED_PID" 2>/dev/null && wait "$ISOLATED_PID" 2>/dev/null
  drop_database "$ISOLATED_DB"
  rm -rf "$ISOLATED_STORAGE"
  .venv/bin/python scripts/delete_topology.py "$ISOLATED_PREFIX" || true
}

# Starts a whole system of its own for a check: the api, the scheduler, a worker, the re-driver and the Cohere
# stand-in (binaries from $SYSTEM_BIN, default target/debug), on free ports with their own
# database, broker prefix and storage, removed again on exit (stop_isolated_system is the EXIT
# trap). The stand-in answers after STANDIN_LATENCY_MS ("min max", default "20 120") ms. Exports
# the APP__ settings, BASE, API, KEY (a tenant's API key), WORKER (its health port), REDRIVER
# and REDRIVER_TOKEN, STANDIN (its base URL, admin API included); logs go to $SYSTEM/*.log.
start_isolated_system() {
  local name=$1 bin=${SYSTEM_BIN:-target/debug} id standin_port latency url
  read -r -a latency <<<"${STANDIN_LATENCY_MS:-20 120}"
  id=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
  SYSTEM=$(mktemp -d)
  SYSTEM_DB="${name//-/_}_$id"
  SYSTEM_PIDS=()
  trap stop_isolated_system EXIT
  export APP__DATABASE__URL="$DATABASE_SERVER/$SYSTEM_DB"
  export APP__AMQP__PREFIX="$name-$id"
  export APP__STORAGE__LOCAL_PATH="$SYSTEM/objects"
  export APP__TELEMETRY__LOG_FILTER=${APP__TELEMETRY__LOG_FILTER:-warn}
  export APP__HTTP__PORT; APP__HTTP__PORT=$(free_port)
  export APP__WORKER__HEALTH_PORT; APP__WORKER__HEALTH_PORT=$(free_port)
  export APP__REDRIVER__PORT; APP__REDRIVER__PORT=$(free_port)
  export APP__REDRIVER__ADMIN_TOKEN; APP__REDRIVER__ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  export APP__COHERE__API_KEY; APP__COHERE__API_KEY="standin-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
  standin_port=$(free_port)
  export APP__COHERE__BASE_URL="http://127.0.0.1:$standin_port"
  export BASE="http://127.0.0.1:$APP__HTTP__PORT"
  export API="$BASE/api"
  export WORKER="http://127.0.0.1:$APP__WORKER__HEALTH_PORT"
  export REDRIVER="http://127.0.0.1:$APP__REDRIVER__PORT"
  export REDRIVER_TOKEN=$APP__REDRIVER__ADMIN_TOKEN
  export STANDIN=$APP__COHERE__BASE_URL

  ensure_database "$SYSTEM_DB"
  "$bin/api" migrate >/dev/null
  export KEY; KEY=$("$bin/api" admin create-key --tenant "$name" --label "$name")
  "$bin/cohere-standin" --host 127.0.0.1 --port "$standin_port" --api-key "$APP__COHERE__API_KEY" \
    --latency-min-ms "${latency[0]}" --latency-max-ms "${latency[1]}" >"$SYSTEM/standin.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  "$bin/api" serve >"$SYSTEM/api.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  APP__SCHEDULER__HEALTH_PORT=0 "$bin/scheduler" >"$SYSTEM/scheduler.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  "$bin/worker" >"$SYSTEM/worker.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  "$bin/redriver" serve >"$SYSTEM/redriver.log" 2>&1 &
  SYSTEM_PIDS+=($!)
  for url in "$STANDIN/health" "$BASE/readyz" "$WORKER/readyz" "$REDRIVER/readyz"; do
    wait_http "$url" 60
  done
}

# Stops what start_isolated_system started and removes its database, queues and files; on a
# failure, shows the end of each process's log first.
stop_isolated_system() {
  local status=$? pid log
  for pid in "${SYSTEM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${SYSTEM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SYSTEM_PIDS=()
  if [ "$status" -ne 0 ]; then
    for log in "$SYSTEM"/*.log; do
      [ -s "$log" ] && { echo "--- last lines of $(basename "$log")" >&2; tail -n 20 "$log" >&2; }
    done
  fi
  drop_database "$SYSTEM_DB" || true
  .venv/bin/python scripts/delete_topology.py "$APP__AMQP__PREFIX" || true
  rm -rf "$SYSTEM"
}
