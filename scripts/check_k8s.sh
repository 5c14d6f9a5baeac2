#!/usr/bin/env bash
# The Kubernetes manifests, offline: every overlay under k8s/overlays renders (`kubectl
# kustomize`); every built-in object is valid for Kubernetes 1.32 and 1.37
# (`kubernetes-validate --strict`: unknown fields and wrong types fail, and so does a kind it
# has no schema for); every KEDA and Prometheus Operator object is valid against its kind's
# schema and types (scripts/k8s/validate_crs.mjs); the rules no schema knows hold
# (scripts/k8s/check_manifests.py: security context, probes, settings names, the worker
# autoscaler's Cohere-budget formula, ...); the Secret template holds no value; the prod
# PrometheusRule matches deploy/prometheus/alerts.yaml. Then broken copies of the rendered
# objects must each be rejected, which shows that every one of those checks can fail.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

KUBE_VERSIONS=(1.32 1.37)
command -v kubectl >/dev/null || { echo "k8s-check: kubectl missing" >&2; exit 1; }
command -v node >/dev/null || { echo "k8s-check: node missing" >&2; exit 1; }

ensure_venv "kubernetes-validate==1.37.0" "pyyaml==6.*"
# The npm packages (pinned in scripts/k8s/package-lock.json), installed again when the lock changes.
if ! cmp -s scripts/k8s/package-lock.json scripts/k8s/node_modules/.package-lock.json.installed 2>/dev/null; then
  (cd scripts/k8s && npm ci --no-audit --no-fund --loglevel=error)
  cp scripts/k8s/package-lock.json scripts/k8s/node_modules/.package-lock.json.installed
fi

PY=.venv/bin/python
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() {
  echo "FAIL $*" >&2
  failures=$((failures + 1))
}

# kubernetes-validate exits 0 on a kind it has no schema for (it only warns): count that as a failure.
validate_builtin() {
  local file=$1 version out
  for version in "${KUBE_VERSIONS[@]}"; do
    out=$(.venv/bin/kubernetes-validate --strict -k "$version" "$file" 2>&1) || {
      grep -v '^INFO .* passed ' <<<"$out"
      return 1
    }
    if grep -qv '^INFO .* passed ' <<<"$out"; then
      echo "$out" | grep -v '^INFO .* passed '
      return 1
    fi
  done
}

overlays=()
for dir in k8s/overlays/*/; do
  name=$(basename "$dir")
  overlays+=("$name")
  if ! kubectl kustomize "$dir" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
    fail "kubectl kustomize $dir"
    cat "$WORK/$name.err" >&2
    continue
  fi
  echo "ok   kubectl kustomize $dir"
  $PY scripts/k8s/check_manifests.py check "$name" "$WORK/$name.yaml" "$WORK" || fail "$name: rules"
  if out=$(validate_builtin "$WORK/$name.builtin.yaml"); then
    count=$(grep -c '^---' "$WORK/$name.builtin.yaml" || true)
    echo "ok   $name: $((count + 1)) built-in objects valid for Kubernetes ${KUBE_VERSIONS[*]} (kubernetes-validate --strict)"
  else
    fail "$name: kubernetes-validate"
    echo "$out" >&2
  fi
done
((${#overlays[@]} >= 2)) || fail "expected the dev and prod overlays under k8s/overlays (found ${overlays[*]:-none})"

if $PY scripts/k8s/check_manifests.py secret-template k8s/base/secret.example.yaml \
  && out=$(validate_builtin k8s/base/secret.example.yaml); then
  :
else
  fail "k8s/base/secret.example.yaml"
  echo "${out:-}" >&2
fi

if $PY scripts/k8s/prometheusrule.py --check; then
  echo "ok   k8s/overlays/prod/prometheusrule.yaml matches deploy/prometheus/alerts.yaml"
else
  fail "k8s/overlays/prod/prometheusrule.yaml is stale"
fi

# Broken copies, one fault each: every one must be rejected by the check that owns it.
if [ -s "$WORK/dev.yaml" ] && [ -s "$WORK/prod.yaml" ]; then
  $PY scripts/k8s/check_manifests.py mutants "$WORK/dev.yaml" "$WORK/prod.yaml" "$WORK" >/dev/null
  for file in "$WORK"/mutant-*.yaml; do
    name=$(basename "$file" .yaml)
    case $name in
      mutant-rule-*)
        mkdir -p "$WORK/rules"
        if $PY scripts/k8s/check_manifests.py check "$name" "$file" "$WORK/rules" >"$WORK/out" 2>&1; then
          fail "$name: the rules accepted a broken copy"
        else
          echo "ok   $name rejected as it should be: $(grep -m1 '^FAIL' "$WORK/out" | sed "s/^FAIL $name: //")"
        fi
        ;;
      *)
        if out=$(validate_builtin "$file"); then
          fail "$name: kubernetes-validate accepted a broken copy"
        else
          echo "ok   $name rejected as it should be: $(head -n1 <<<"$out" | sed 's/^.*resource //; s/^WARN .*yaml //')"
        fi
        ;;
    esac
  done
else
  fail "no rendered dev and prod overlays to break on purpose"
fi

# The custom resources of every overlay and the broken ones, in one compiler run.
crs=("$WORK"/*.crs.json)
if ! node scripts/k8s/validate_crs.mjs "${crs[@]}"; then
  fail "custom resources (KEDA, Prometheus Operator)"
fi

if ((failures)); then
  echo "k8s-check: FAILED ($failures failed; overlays: ${overlays[*]})"
  exit 1
fi
echo "k8s-check: passed (overlays: ${overlays[*]}; built-in kinds, custom resources, rules, broken copies rejected)"
