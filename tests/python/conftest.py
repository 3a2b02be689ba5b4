"""Shared fixtures of the Python client tests: a real CameoDB server (one node, or with
``CAMEODB_CLUSTER_NODES=N`` a cluster of N nodes on 127.0.0.1..N) started from
``target/debug/cameodb`` (override with ``CAMEODB_BIN``), and clients for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0


def _binary() -> Path:
    b = Path(os.environ.get("CAMEODB_BIN", "target/debug/cameodb"))
    return b if b.is_absolute() else REPO_ROOT / b


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _start(binary: Path, tmp: Path, host: str, cluster_args: list[str]):
    """Starts one node; returns (process, url, log path)."""
    data_dir = tmp / f"data-{host}"
    log_path = tmp / f"server-{host}.log"
    port = _free_port()
    url = f"http://{host}:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data_dir), "--http-addr", f"{host}:{port}", *cluster_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return proc, url, log_path


def _wait_ready(proc, url: str, log_path: Path, path: str = "/", ready=lambda body: True):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"cameodb exited with code {proc.returncode} during startup:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(url + path, timeout=2) as resp:
                if resp.status == 200 and ready(resp.read()):
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"cameodb not ready after {STARTUP_TIMEOUT:.0f}s:\n{_log_tail(log_path)}")
        time.sleep(0.2)


def _call(url: str, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"):
    request = urllib.request.Request(url + path, data=body, method=method, headers={"Content-Type": ctype})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def _grown(urls: list[str]) -> bool:
    """Whether every node sees the last one holding its settled share of the seed index."""
    host = urllib.parse.urlsplit(urls[-1]).hostname
    for url in urls:
        try:
            rows = _call(url, "GET", "/_cat/shards/grow-seed?format=json")
            health = _call(url, "GET", "/_cluster/health")
            count = _call(url, "GET", "/grow-seed/_count")["count"]
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            return False
        placed = any(r.get("ip") == host and r.get("state") == "STARTED" for r in rows)
        if not (placed and health.get("relocating_shards") == 0 and count == 300):
            return False
    return True


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory):
    """One node, or with CAMEODB_CLUSTER_NODES=N a cluster of N nodes on 127.0.0.1..N (the
    client then spreads its requests over all of them). With CAMEODB_GROW=1 the cluster grows
    into N nodes: N-1 start and get an index, then the last joins and takes over its share
    before any test runs."""
    binary = _binary()
    if not binary.is_file():
        pytest.fail(f"CameoDB binary not found at {binary}: run `cargo build` or set CAMEODB_BIN")
    tmp = tmp_path_factory.mktemp("cameodb")
    n = int(os.environ.get("CAMEODB_CLUSTER_NODES", "1"))
    seed = f"127.0.0.1:{_free_port()}"
    grow = n > 2 and os.environ.get("CAMEODB_GROW") == "1"
    nodes = []

    def start(i: int):
        host = f"127.0.0.{i + 1}"
        if n == 1:
            args = ["--cluster-addr", f"{host}:0"]
        elif i == 0:
            args = ["--cluster-addr", seed]
        else:
            args = ["--cluster-addr", f"{host}:{_free_port()}", "--join", seed]
        nodes.append(_start(binary, tmp, host, args))

    def formed():
        for proc, url, log_path in nodes:
            _wait_ready(proc, url, log_path)
        if len(nodes) > 1:
            def all_up(body: bytes) -> bool:
                listed = json.loads(body)
                return len(listed) == len(nodes) and all(node["state"] == "up" for node in listed)

            for proc, url, log_path in nodes:
                _wait_ready(proc, url, log_path, "/_cat/nodes?format=json", all_up)

    try:
        for i in range(n - 1 if grow else n):
            start(i)
        formed()
        if grow:
            first = nodes[0][1]
            _call(first, "PUT", "/grow-seed", json.dumps({"settings": {"number_of_replicas": 1}}).encode())
            lines = []
            for k in range(300):
                lines += [json.dumps({"index": {"_index": "grow-seed", "_id": str(k)}}), json.dumps({"n": k})]
            _call(first, "POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
            start(n - 1)
            formed()
            urls = [url for _, url, _ in nodes]
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not _grown(urls):
                if time.monotonic() > deadline:
                    pytest.fail("the cluster did not grow: the last node never took over its share")
                time.sleep(0.2)
            _call(first, "DELETE", "/grow-seed")
        yield [url for _, url, _ in nodes]
    finally:
        for proc, _, _ in nodes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def es(server_urls):
    client = Elasticsearch(server_urls, request_timeout=120)
    yield client
    client.close()
