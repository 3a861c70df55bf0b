#!/usr/bin/env bash
# The main job on the bundled examples, no cluster needed: make fresh TLS Secrets for the
# examples (examples/generated/, ignored by git), then run `rook-kms-webhook check` on the valid,
# broken and update examples. Exits non-zero if a verdict is not the expected one.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bin rook-kms-webhook
cargo run --quiet --release -p rook-kms --example example_secrets -- examples/generated
bin=target/release/rook-kms-webhook
expect() { # expect STATUS ARGS...: run check, show its output, compare the exit status
  local want=$1; shift
  echo "\$ rook-kms-webhook check $*"
  set +e; "$bin" check "$@"; local got=$?; set -e
  echo "(exit $got)"; echo
  if [ "$got" != "$want" ]; then echo "expected exit $want, got $got" >&2; exit 1; fi
}
expect 0 --secrets examples/generated examples/valid
expect 1 --secrets examples/generated examples/broken
expect 1 --old examples/update/old.yaml examples/update/new.yaml
echo "All bundled examples gave their expected verdicts."
