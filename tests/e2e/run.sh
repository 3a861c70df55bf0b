#!/usr/bin/env bash
# End-to-end check against a real cluster (cannot run on the development machines: no
# kube-apiserver there). Needs KUBECONFIG pointing at a test cluster, helm (v3.14+ or v4), kubectl,
# the Rook CRDs installed (CephCluster), and an image of this repository pushed somewhere the
# cluster can pull (IMAGE=registry/rook-kms-webhook:tag).
#
#   IMAGE=ghcr.io/me/rook-kms-webhook:dev ./tests/e2e/run.sh
#
# It installs the chart into namespace rook-kms-e2e, waits for the webhook, then applies the bundled
# examples with --dry-run=server (nothing is stored) and checks the verdicts: every example in
# examples/valid is admitted, every one in examples/broken is denied. It uninstalls at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KUBECONFIG:?set KUBECONFIG to a test cluster}"
: "${IMAGE:?set IMAGE to a pullable image of this repository (repository:tag)}"
NS=${NS:-rook-kms-e2e}
CEPH_NS=${CEPH_NS:-rook-ceph}
RELEASE=${RELEASE:-rkw-e2e}
kubectl get crd cephclusters.ceph.rook.io >/dev/null || { echo "the Rook CRDs are not installed" >&2; exit 1; }
./examples/check.sh >/dev/null || true   # makes examples/generated (the TLS Secrets)

cleanup() {
  helm uninstall "$RELEASE" -n "$NS" >/dev/null 2>&1 || true
  kubectl delete -n "$CEPH_NS" -f examples/generated --ignore-not-found >/dev/null 2>&1 || true
}
trap cleanup EXIT

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl create namespace "$CEPH_NS" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install "$RELEASE" charts/rook-kms-webhook -n "$NS" --wait --timeout 5m \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set webhook.probe.mode=off
kubectl -n "$NS" rollout status deploy/"$RELEASE"-rook-kms-webhook --timeout=3m

# The example Secrets the rules read (never stored by a dry run, so apply them for real).
for f in examples/valid/*.yaml examples/broken/*.yaml examples/generated/*.yaml; do
  yq 'select(.kind == "Secret")' "$f" 2>/dev/null | kubectl apply -n "$CEPH_NS" -f - >/dev/null 2>&1 || true
done

fail=0
for f in examples/valid/*.yaml; do
  if kubectl apply --dry-run=server -n "$CEPH_NS" -f "$f" >/dev/null 2>/tmp/e2e.err; then
    echo "ok       admitted  $f"
  else
    echo "FAIL     denied    $f: $(head -c 300 /tmp/e2e.err)"; fail=1
  fi
done
for f in examples/broken/*.yaml; do
  if kubectl apply --dry-run=server -n "$CEPH_NS" -f "$f" >/dev/null 2>/tmp/e2e.err; then
    echo "FAIL     admitted  $f"; fail=1
  elif grep -q "denied the request" /tmp/e2e.err; then
    echo "ok       denied    $f"
  else
    echo "FAIL     error     $f: $(head -c 300 /tmp/e2e.err)"; fail=1
  fi
done
exit "$fail"
