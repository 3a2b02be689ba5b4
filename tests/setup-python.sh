#!/usr/bin/env bash
# Create <repo>/.venv (if missing) and install tests/python/requirements.txt into it.
# Idempotent; prints nothing on success, only errors.
# Usage: tests/setup-python.sh   then   .venv/bin/python tests/conformance/run.py ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >/dev/null
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c 'import elasticsearch, pytest, yaml' >/dev/null 2>&1; then
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$req" >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-python.sh: pip install -r $req failed" >&2
    exit 1
fi
echo "$want" >"$stamp"
