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
