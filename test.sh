#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the Elasticsearch YAML conformance
# suite against a real server, and the official Python client against a real server.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --bin cameodb
cargo test --workspace

bash tests/setup-python.sh
.venv/bin/python tests/conformance/run.py --server target/debug/cameodb
CAMEODB_BIN=target/debug/cameodb .venv/bin/python -m pytest -q tests/python
