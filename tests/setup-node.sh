#!/usr/bin/env bash
# Installs what the Node.js tests need: node and npm (Debian's packages, if the machine lacks
# them) and tests/node's packages from its lock file (@elastic/elasticsearch, elasticdump)
# into tests/node/node_modules. Idempotent; prints nothing on success, only errors.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/node"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-node.sh: node/npm are missing and only root can install them (apt-get install nodejs npm)" >&2
        exit 1
    fi
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup-node.sh: apt-get install nodejs npm failed" >&2
        exit 1
    fi
fi

stamp="$dir/node_modules/.lock.sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-node.sh: npm ci in tests/node failed" >&2
    exit 1
fi
echo "$want" >"$stamp"
