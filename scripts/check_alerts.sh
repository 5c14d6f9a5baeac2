#!/usr/bin/env bash
# The Prometheus alert rules (deploy/prometheus/alerts.yaml): valid rules and PromQL
# (`promtool check rules`), every alert firing and staying silent as its unit tests expect
# (`promtool test rules`), and a broken copy rejected, so a check that passes everything fails.
# promtool comes from Debian's `prometheus` package.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=deploy/prometheus/alerts.yaml
TESTS=deploy/prometheus/alerts.test.yaml
command -v promtool >/dev/null || { echo "alerts-check: promtool missing (apt-get install prometheus)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

step() {
  local name=$1; shift
  if "$@" >"$WORK/out" 2>&1; then
    echo "ok   $name"
  else
    echo "FAIL $name" >&2
    cat "$WORK/out" >&2
    failures=$((failures + 1))
  fi
}

step "promtool check rules $RULES" promtool check rules "$RULES"
step "promtool test rules $TESTS" promtool test rules "$TESTS"

# The checker must reject a rule whose expression does not parse.
sed 's/expr: max by (model) (cohere_circuit_state) > 0/expr: max by (model) (cohere_circuit_state > 0/' \
  "$RULES" >"$WORK/broken.yaml"
if cmp -s "$RULES" "$WORK/broken.yaml"; then
  echo "FAIL the broken copy is identical to $RULES (the sed pattern no longer matches)" >&2
  failures=$((failures + 1))
elif promtool check rules "$WORK/broken.yaml" >"$WORK/out" 2>&1; then
  echo "FAIL promtool accepted a rule with a syntax error" >&2
  failures=$((failures + 1))
else
  echo "ok   a rule with a syntax error is rejected"
fi

alerts=$(grep -c '^      - alert:' "$RULES")
if ((failures)); then
  echo "alerts-check: FAILED ($failures failed; $alerts alerts in $RULES)"
  exit 1
fi
echo "alerts-check: passed ($alerts alerts, rules and unit tests)"
