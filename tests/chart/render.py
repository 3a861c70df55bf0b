#!/usr/bin/env python3
"""Renders and lints the chart with the real Helm v4 engine (helm-python-sdk), for tests/chart.rs.

usage: render.py CHART_DIR KUBE_VERSION < values.json
prints JSON: {"manifests": {template: yaml}, "lint": {...}} or {"error": "..."} (exit 0 either way,
so that the caller can assert on refusals).
"""

import json
import sys

import helm_python as hp


def main():
    chart_dir, kube_version = sys.argv[1], sys.argv[2]
    values = json.load(sys.stdin)
    try:
        chart = hp.Chart.load(chart_dir)
        rendered = chart.render(values, name="rkw", namespace="rook-kms", is_install=True)
        lint = hp.lint(chart_dir, values, strict=True, namespace="rook-kms", kube_version=kube_version)
    except hp.HelmError as e:
        print(json.dumps({"error": str(e)}))
        return
    manifests = {k: v for k, v in rendered.items() if not k.endswith("NOTES.txt") and v.strip()}
    notes = next((v for k, v in rendered.items() if k.endswith("NOTES.txt")), "")
    print(json.dumps({"manifests": manifests, "notes": notes, "lint": lint}))


if __name__ == "__main__":
    main()
