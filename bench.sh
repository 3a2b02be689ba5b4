#!/usr/bin/env bash
# The benchmark suite: builds release binaries and runs cameodb-bench, which starts its own
# cameodb server and measures it next to raw tantivy, SQLite FTS5 and PostgreSQL (when
# installed) on ../shared/data. `./bench.sh --smoke` is the few-thousand-document version.
# Output: target/bench/report.md and report.json. `./bench.sh --help` lists the options.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -p cameodb -p cameodb-bench
exec target/release/cameodb-bench "$@"
