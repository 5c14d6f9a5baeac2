#!/usr/bin/env bash
# Runs the commands of the guides (docs/README.md says how blocks are marked) against a system
# of their own (start_isolated_system in lib.sh: the api, a worker, the re-driver and the Cohere
# stand-in on free ports, with their own database, broker prefix and storage, all removed on
# exit even when a guide fails).
#
#   scripts/check_docs.sh                 every guide (and the links between them, and the alert
#                                         rules' runbook links into docs/operations.md)
#   scripts/check_docs.sh docs/api.md     only these (any path: a changed copy, say)
#   DOCS_VERBOSE=1 scripts/check_docs.sh  also print what the commands printed
#
# Each guide's ```sh blocks run in order in one bash session (`set -Eeuo pipefail`), in a scratch
# directory that links to the checkout's files, with the built binaries first on PATH and these
# variables set: BASE (the api's root), API ($BASE/api), KEY (a tenant's API key), WORKER (the
# worker's health and metrics root), REDRIVER and REDRIVER_TOKEN (the re-driver's admin API),
# STANDIN (the Cohere stand-in; its fault injection is under $STANDIN/admin), and the APP__*
# settings of the system. ```sh cluster blocks need a cluster: each is only checked by `bash -n`.
# A command that fails, or a block that is neither, fails the run with its line in the guide.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/lib.sh

GUIDES=("$@")
GUIDE_TIMEOUT=${GUIDE_TIMEOUT:-180}
if [ ${#GUIDES[@]} -eq 0 ]; then
  GUIDES=(docs/job-flow.md docs/api.md docs/cohere.md docs/operations.md docs/troubleshooting.md)
  # Links between the guides, and the alerts' runbook links into docs/operations.md, lead somewhere.
  python3 scripts/doc_blocks.py links "${GUIDES[@]}" docs/README.md deploy/prometheus/alerts.yaml \
    || { echo "FAIL: links above lead nowhere"; exit 1; }
fi

ensure_venv "pika==1.*"
cargo build -q -p api -p worker -p scheduler -p redriver -p cohere-standin

# Short breaker pauses so the fault scenarios recover in seconds (the defaults are 5 s and 60 s),
# and a rate limit, as in production, so the cluster-wide limiter is in use (high enough not to
# slow the guides).
export APP__BREAKER__OPEN_SECONDS=1 APP__BREAKER__MAX_OPEN_SECONDS=2
export APP__COHERE__REQUESTS_PER_MINUTE=6000
start_isolated_system docs

# The scratch directory (removed with the system's): the checkout's files by link (samples/,
# openapi/, k8s/, ...) and room for what the guides write.
SCRATCH="$SYSTEM/scratch"
mkdir "$SCRATCH"
for entry in "$ROOT"/*; do ln -s "$entry" "$SCRATCH/"; done
export PATH="$ROOT/target/debug:$PATH"

# Puts the stand-in back to a healthy default between guides.
reset_standin() {
  curl -fsS -X PUT -H 'content-type: application/json' "$STANDIN/admin/config" \
    -d "{\"api_key\": \"$APP__COHERE__API_KEY\", \"latency_ms\": {\"min\": 20, \"max\": 120}}" >/dev/null
}

failed=()
for guide in "${GUIDES[@]}"; do
  guide=$(realpath "$guide")
  name=${guide#"$ROOT"/}
  start=$SECONDS
  if ! python3 scripts/doc_blocks.py run "$guide" >"$SYSTEM/run.sh"; then
    echo "FAIL $name: its blocks could not be read (above)"
    failed+=("$name")
    continue
  fi
  if ! cluster=$(python3 scripts/doc_blocks.py cluster "$guide"); then
    echo "FAIL $name: a \`sh cluster\` block is not valid shell (above)"
    failed+=("$name")
    continue
  fi
  reset_standin
  commands=$(grep -cve '^\s*$' -e '^\s*#' "$SYSTEM/run.sh" || true)
  # Its own process group, so whatever a guide leaves running in the background ends with it.
  (cd "$SCRATCH" && exec setsid timeout "$GUIDE_TIMEOUT" bash --noprofile --norc -c '
      set -Eeuo pipefail
      trap '\''echo "FAIL $0:$LINENO: $BASH_COMMAND" >&2'\'' ERR
      source "$1"' "$name" "$SYSTEM/run.sh" >"$SYSTEM/out.txt" 2>&1) &
  group=$!
  rc=0
  wait "$group" || rc=$?
  kill -- -"$group" 2>/dev/null || true
  if [ "$rc" -eq 0 ]; then
    echo "ok   $name: $commands lines run, $cluster cluster lines syntax-checked ($((SECONDS - start)) s)"
    # DOCS_VERBOSE=1 shows what the commands printed, to keep the guides' sample output true.
    [ -z "${DOCS_VERBOSE:-}" ] || sed 's/^/     | /' "$SYSTEM/out.txt"
  else
    echo "FAIL $name (output below; line numbers are the guide's)"
    tail -n 40 "$SYSTEM/out.txt" | sed 's/^/     | /'
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "guides whose commands fail: ${failed[*]}"
  exit 1
fi
echo "every command of ${#GUIDES[@]} guide(s) ran"
