"""Writes k8s/overlays/prod/prometheusrule.yaml: the alert rules of deploy/prometheus/alerts.yaml
(the one hand-kept copy) wrapped in a Prometheus Operator PrometheusRule.

    python scripts/k8s/prometheusrule.py           # regenerate
    python scripts/k8s/prometheusrule.py --check   # exit 1 if the committed file differs
"""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/alerts.yaml"
TARGET = ROOT / "k8s/overlays/prod/prometheusrule.yaml"

HEADER = """\
# GENERATED from deploy/prometheus/alerts.yaml by scripts/k8s/prometheusrule.py: do not edit.
# Edit the rules there and run the script; scripts/check_k8s.sh fails while the two differ.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    # Multi-line PromQL stays readable as a block.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    rules = yaml.safe_load(RULES.read_text())
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "image-pipelines",
            "labels": {
                "app.kubernetes.io/name": "image-pipelines",
                "app.kubernetes.io/component": "alerts",
                "app.kubernetes.io/part-of": "image-pipelines",
            },
        },
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def main() -> int:
    text = render()
    if sys.argv[1:] == ["--check"]:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(
                f"{TARGET.relative_to(ROOT)} differs from {RULES.relative_to(ROOT)}: "
                "run `.venv/bin/python scripts/k8s/prometheusrule.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
