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
