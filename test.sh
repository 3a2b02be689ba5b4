#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the benchmark suite in smoke mode, the
# Elasticsearch YAML conformance suite (and CameoDB's own YAML tests), the official Python
# client and its companions, and the JavaScript client and elasticdump against a real server.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests need (iptables, for the partition tests).
bash tests/setup-system.sh
cargo build --bin cameodb --bin cameodb-bench
cargo test --workspace

# The benchmark suite's smoke mode: a few thousand documents through every scenario and peer,
# so the suite keeps working. Debug build; it asserts nothing about speed.
target/debug/cameodb-bench --smoke --out target/bench-smoke

bash tests/setup-python.sh
# The Elasticsearch YAML suite and the official Python client, against one node and then
# against a three-node cluster on 127.0.0.1-3 (each test / request through another node).
.venv/bin/python tests/conformance/run.py --server target/debug/cameodb
.venv/bin/python tests/conformance/run.py --server target/debug/cameodb --cluster 3
# And on a cluster that grew into three nodes: two hold an index, the third joins and takes
# over its share before the tests run.
.venv/bin/python tests/conformance/run.py --server target/debug/cameodb --cluster 3 --grow
CAMEODB_BIN=target/debug/cameodb .venv/bin/python -m pytest -q tests/python
CAMEODB_BIN=target/debug/cameodb CAMEODB_CLUSTER_NODES=3 CAMEODB_GROW=1 .venv/bin/python -m pytest -q tests/python

# The official JavaScript client's helpers and an elasticdump round trip, against one node.
bash tests/setup-node.sh
CAMEODB_BIN=target/debug/cameodb node --test tests/node/
