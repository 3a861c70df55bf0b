#!/usr/bin/env bash
# Runs every test of the project on a fresh machine. Everything the tests need comes from the
# package registries into ignored folders of the checkout (.tools/); a missing component is a
# failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# insta must compare against the committed snapshots, never write new ones.
export INSTA_UPDATE=no CI="${CI:-true}"

echo "== formatting and lints"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== bundled examples (the README's first command)"
./examples/check.sh >/dev/null

echo "== tools the tests use"
# The TLS-version test drives the openssl CLI against the server.
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
# OpenBao (Vault API), PyKMIP and IBM's keyprotect client for the live-probe tests.
./tests/components/install.sh

echo "== tests"
log=$(mktemp)
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one per test binary, some with 0 tests).
awk '/^test result:/ {p += $4; f += $6} END {print p " passed, " f " failed"}' "$log"
rm -f "$log"
