#!/usr/bin/env bash
# Admission load benchmark: `serve` against the ceiling (same TLS stack, fixed answer, body not read)
# and against a parse-and-echo baseline (parses the AdmissionReview, echoes the uid), each driven
# by oha over HTTPS with keep-alive, 64 concurrent clients for DURATION (default 10s), in the same
# run. Prints requests/s, p50 and p99 for both and the ratios, plus start-up time to ready and idle
# RSS. Traffic goes to 127.0.0.1 only; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-64}
OHA=.tools/bin/oha
if [ ! -x "$OHA" ]; then
  cargo install oha --version 1.16.0 --locked --root .tools
fi
cargo build --quiet --release --bin rook-kms-webhook --example ceiling
cargo run --quiet --release -p rook-kms --example example_secrets -- target/bench/secrets >/dev/null
bin=target/release/rook-kms-webhook
"$bin" certs --out target/bench/certs >/dev/null
body=target/bench/vault-review.json
cat > "$body" <<'JSON'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"11111111-2222-3333-4444-555555555555",
 "kind":{"group":"ceph.rook.io","version":"v1","kind":"CephCluster"},
 "resource":{"group":"ceph.rook.io","version":"v1","resource":"cephclusters"},
 "name":"vault-token","namespace":"rook-ceph","operation":"CREATE","userInfo":{"username":"bench"},
 "object":{"apiVersion":"ceph.rook.io/v1","kind":"CephCluster","metadata":{"name":"vault-token","namespace":"rook-ceph"},
  "spec":{"cephVersion":{"image":"quay.io/ceph/ceph:v19"},"dataDirHostPath":"/var/lib/rook","mon":{"count":3},
   "security":{"kms":{"connectionDetails":{"KMS_PROVIDER":"vault","VAULT_ADDR":"https://vault.vault.svc:8200",
     "VAULT_BACKEND_PATH":"rook","VAULT_SECRET_ENGINE":"kv","VAULT_BACKEND":"v1","VAULT_CACERT":"vault-ca-cert",
     "VAULT_CLIENT_CERT":"vault-client-cert","VAULT_CLIENT_KEY":"vault-client-key"},"tokenSecretName":"rook-vault-token"},
    "keyRotation":{"enabled":true,"schedule":"@weekly"}},
   "storage":{"storageClassDeviceSets":[{"name":"set1","count":3,"encrypted":true,
     "volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":"10Gi"}},"storageClassName":"gp3","volumeMode":"Block","accessModes":["ReadWriteOnce"]}}]}]}}},
 "dryRun":false}}
JSON
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

load() { # load URL OUT.json
  "$OHA" --no-tui --insecure -c "$CONCURRENCY" -z "$DURATION" -m POST -H 'content-type: application/json' \
    -D "$body" --output-format json "$1" > "$2"
}

start=$(date +%s.%N)
"$bin" serve --listen 127.0.0.1:18643 --health-listen 127.0.0.1:18680 \
  --tls-cert target/bench/certs/tls.crt --tls-key target/bench/certs/tls.key \
  --secrets examples/valid --secrets target/bench/secrets >target/bench/serve.log 2>&1 &
pids+=($!); serve_pid=$!
for _ in $(seq 1 500); do
  if curl -fs http://127.0.0.1:18680/readyz >/dev/null 2>&1; then break; fi
  sleep 0.01
done
ready=$(date +%s.%N)
curl -fs http://127.0.0.1:18680/readyz >/dev/null
rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$serve_pid/status)
# The request must really be allowed, or we would be measuring denials.
curl -fs --cacert target/bench/certs/ca.crt -H 'content-type: application/json' --data @"$body" \
  https://localhost:18643/validate | grep -q '"allowed":true'
load https://127.0.0.1:18643/validate target/bench/serve.json
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

cargo run --quiet --release --example ceiling -- 127.0.0.1:18644 target/bench/certs/tls.crt target/bench/certs/tls.key >/dev/null &
pids+=($!)
for _ in $(seq 1 500); do
  if curl -fsk -X POST https://127.0.0.1:18644/validate >/dev/null 2>&1; then break; fi
  sleep 0.01
done
load https://127.0.0.1:18644/validate target/bench/ceiling.json
load https://127.0.0.1:18644/validate-parse target/bench/parse.json

python3 - "$start" "$ready" "$rss_kib" <<'PY'
import json, sys
start, ready, rss = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def read(name):
    d = json.load(open(f"target/bench/{name}.json"))
    s = d["summary"]; p = d["latencyPercentiles"]
    codes = d.get("statusCodeDistribution", {})
    return s["requestsPerSec"], p["p50"] * 1000, p["p99"] * 1000, s["successRate"], codes
serve, ceiling, parse = read("serve"), read("ceiling"), read("parse")
print(f"{'':14} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'success':>8}  status codes")
for name, r in (("serve", serve), ("ceiling", ceiling), ("parse+echo", parse)):
    print(f"{name:14} {r[0]:10.0f} {r[1]:8.2f} {r[2]:8.2f} {r[3]:8.3f}  {r[4]}")
print(f"throughput ratio serve/ceiling: {serve[0] / ceiling[0]:.2f}; serve/parse+echo: {serve[0] / parse[0]:.2f}")
print(f"p99 ratio serve/ceiling: {serve[2] / ceiling[2]:.2f}; serve/parse+echo: {serve[2] / parse[2]:.2f}")
print(f"start-up to ready: {(ready - start) * 1000:.0f} ms; idle RSS: {rss / 1024:.1f} MiB")
PY
