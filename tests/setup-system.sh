#!/usr/bin/env bash
# Installs the Debian packages the tests need that a fresh machine may lack: iptables, for the
# partition tests (tests/faults.rs), which cut nodes apart with loopback packet filtering.
# Idempotent; needs root (as the partition tests themselves do).
set -euo pipefail

if command -v iptables >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system.sh: iptables is missing and only root can install it (apt-get install iptables)" >&2
    exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup-system.sh: apt-get install iptables failed" >&2
    exit 1
fi
