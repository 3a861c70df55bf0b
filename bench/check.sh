#!/usr/bin/env bash
# Runs the offline review benchmark and prints each figure as a ratio to the baseline measured in
# the same run (parsing the request JSON), since absolute times on shared machines are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p rook-kms --bench check -- --warm-up-time 1 --measurement-time "${MEASURE_SECS:-5}" "$@"
python3 - <<'PY'
import json, pathlib
root = pathlib.Path("target/criterion/check")
def est(name):
    return json.loads((root / name / "new" / "estimates.json").read_text())["median"]["point_estimate"]
base = est("baseline_parse_json")
print(f"\nbaseline_parse_json: {base/1000:.1f} µs (median)")
for name in ("review_vault_tls_create", "review_vault_tls_update"):
    t = est(name)
    print(f"{name}: {t/1000:.1f} µs (median) = {t/base:.2f} x baseline")
PY
