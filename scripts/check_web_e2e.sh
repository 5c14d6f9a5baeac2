#!/usr/bin/env bash
# `make web-e2e`: the dashboard in a real browser (Debian's chromium driven by Playwright, never
# a downloaded browser) against a system of its own: the api serving the built UI (web/dist,
# read from disk by the debug build), a worker, the re-driver and the Cohere stand-in, on free
# ports with their own database, broker prefix and storage, all removed afterwards.
# Screenshots of each page (light and dark, desktop and phone width) go to web/test-results/.
# Arguments go to `playwright test`, e.g. `-g 'sign in|estimates'` for some tests only (keep the
# sign-in setup's name in a filter: the other tests need its session).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

[ -f web/dist/index.html ] || { echo "web/dist is not built: run make web first" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }
ensure_venv "pika==1.*"
cargo build -q -p api -p worker -p scheduler -p redriver -p cohere-standin

# Answers take a moment, so a job can be watched (and cancelled) while it runs.
STANDIN_LATENCY_MS="300 900" start_isolated_system web-e2e
(cd web && BASE_URL=$BASE E2E_API_KEY=$KEY STANDIN_ADMIN_URL=$STANDIN \
  node_modules/.bin/playwright test -c e2e/playwright.config.ts "$@")
