#!/usr/bin/env python3
"""Renders a postgres chart with Helm's own engine and prints its container env names.

Usage: helm_render.py CHART_DIR VALUES_FILE NESTED_UNDER_POSTGRES(yes|no)

With `yes` (the split layout) the chart's values are what the values file holds under
its top-level `postgres:` key, as the umbrella chart passes them to its dependency;
with `no` (in-tree, applications) the whole file. Prints one line per environment
variable of every container of every rendered Deployment: `NAME` or `NAME=VALUE`
when the variable has a literal value, `NAME<-secret/key` when it reads a secret.
Exits 1 with the engine's message when the chart does not render.
"""

import sys

import helm_python.errors
from helm_python.chart import Chart, values_from_yaml


def main(chart_dir: str, values_file: str, nested: str) -> int:
    if nested not in ("yes", "no"):
        print("the third argument must be yes or no", file=sys.stderr)
        return 2
    with open(values_file, encoding="utf-8") as f:
        values = values_from_yaml(f.read()) or {}
    if nested == "yes":
        values = values.get("postgres") or {}
    chart = Chart.load(chart_dir)
    try:
        manifests = chart.render(values, name="postgres", namespace="postgres", is_install=True)
    except helm_python.errors.HelmError as e:
        print(f"helm render failed: {e}", file=sys.stderr)
        return 1
    for path in sorted(manifests):
        for document in manifests[path].split("\n---"):
            if not document.strip():
                continue
            manifest = values_from_yaml(document) or {}
            if manifest.get("kind") != "Deployment":
                continue
            spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                for var in container.get("env") or []:
                    name = var.get("name")
                    if "value" in var:
                        print(f"{name}={var['value']}")
                    elif "valueFrom" in var:
                        ref = var["valueFrom"].get("secretKeyRef", {})
                        print(f"{name}<-{ref.get('name')}/{ref.get('key')}")
                    else:
                        print(name)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
