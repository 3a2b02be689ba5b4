#!/usr/bin/env python3
"""Conformance runner for Elasticsearch's YAML REST tests against CameoDB.

Runs the YAML tests in ``<repo>/../shared/conformance/es-clients-tests`` (Elastic's
``elasticsearch-clients-tests``) over HTTP against a CameoDB server, following the
semantics of Elasticsearch's own YAML test runner (``ESClientYamlSuiteTestCase``):

* each file is a YAML stream: optional ``requires`` / ``setup`` / ``teardown`` documents and
  one document per named test; ``setup`` runs before and ``teardown`` after every test;
* steps: ``do`` (with ``catch``, ``headers``, ``ignore``, ``warnings``…), ``match``,
  ``length``, ``is_true``, ``is_false``, ``gt``, ``gte``, ``lt``, ``lte``, ``set``,
  ``contains``, ``close_to``, ``skip`` / ``requires``;
* ``$var`` / ``${var}`` stash substitution, dotted paths (``hits.hits.0._source.foo``,
  ``\\.`` escapes a literal dot), ``/regex/`` values (``re.VERBOSE``, search semantics);
* HEAD APIs (exists, indices.exists, ping…) yield a boolean body: true for 2xx, false for 404,
  and a HEAD 404 is not an error.

Usage::

    python3 tests/conformance/run.py --url http://127.0.0.1:9200
    python3 tests/conformance/run.py --server target/debug/cameodb
    python3 tests/conformance/run.py --list [-v]          # parse only, contact nothing
    python3 tests/conformance/run.py --server target/debug/cameodb --only 'indices/*'

Expected failures live in ``tests/conformance/expected_failures.toml`` (see the comment there).
Output: one ``PASS``/``FAIL``/``XFAIL``/``XPASS``/``SKIP`` line per test, then exactly one
``conformance: N passed, M failed, K skipped`` line (skipped = expected failures + skips).
Exit code 0 iff no unexpected failure.

Standard library plus PyYAML only.
"""

from __future__ import annotations

import argparse
import fnmatch
import http.client
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("run.py needs PyYAML: run tests/setup-python.sh and use .venv/bin/python\n")
    sys.exit(2)

try:
    import tomllib  # Python >= 3.11
except ImportError:  # pragma: no cover
    tomllib = None

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
DEFAULT_TESTS_DIR = REPO_ROOT.parent / "shared" / "conformance" / "es-clients-tests"
# CameoDB's own YAML tests, in the same format, for the APIs the shared suite does not cover;
# their paths are reported under ``cameo/``.
OWN_TESTS_DIR = REPO_ROOT / "tests" / "conformance" / "cameo"
DEFAULT_XFAIL_FILE = HERE / "expected_failures.toml"


# --------------------------------------------------------------------------------------------
# API table: name -> list of (method, path template), most specific first.
#
# Taken from the Elasticsearch 8 REST API spec (rest-api-spec/api/*.json). The first template
# whose {params} are all present in the step's arguments is used; those arguments go into the
# path, every other argument (except ``body`` and ``ignore``) into the query string.
# A method of "GET|POST" means GET without a body, POST with one (the spec allows both).
# --------------------------------------------------------------------------------------------

API_SPECS: dict[str, list[tuple[str, str]]] = {
    # --- documents
    "index": [("PUT", "/{index}/_doc/{id}"), ("POST", "/{index}/_doc")],
    "create": [("PUT", "/{index}/_create/{id}")],
    "get": [("GET", "/{index}/_doc/{id}")],
    "exists": [("HEAD", "/{index}/_doc/{id}")],
    "get_source": [("GET", "/{index}/_source/{id}")],
    "exists_source": [("HEAD", "/{index}/_source/{id}")],
    "delete": [("DELETE", "/{index}/_doc/{id}")],
    "update": [("POST", "/{index}/_update/{id}")],
    "bulk": [("POST", "/{index}/_bulk"), ("POST", "/_bulk")],
    "mget": [("GET|POST", "/{index}/_mget"), ("GET|POST", "/_mget")],
    "delete_by_query": [("POST", "/{index}/_delete_by_query")],
    "delete_by_query_rethrottle": [("POST", "/_delete_by_query/{task_id}/_rethrottle")],
    "update_by_query": [("POST", "/{index}/_update_by_query")],
    "update_by_query_rethrottle": [("POST", "/_update_by_query/{task_id}/_rethrottle")],
    "reindex": [("POST", "/_reindex")],
    "explain": [("GET|POST", "/{index}/_explain/{id}")],
    "termvectors": [("GET|POST", "/{index}/_termvectors/{id}"), ("GET|POST", "/{index}/_termvectors")],
    # --- search
    "search": [("GET|POST", "/{index}/_search"), ("GET|POST", "/_search")],
    "search_template": [("GET|POST", "/{index}/_search/template"), ("GET|POST", "/_search/template")],
    "render_search_template": [("GET|POST", "/_render/template/{id}"), ("GET|POST", "/_render/template")],
    "count": [("GET|POST", "/{index}/_count"), ("GET|POST", "/_count")],
    "msearch": [("GET|POST", "/{index}/_msearch"), ("GET|POST", "/_msearch")],
    "msearch_template": [("GET|POST", "/{index}/_msearch/template"), ("GET|POST", "/_msearch/template")],
    "scroll": [("GET|POST", "/_search/scroll")],
    "clear_scroll": [("DELETE", "/_search/scroll")],
    "field_caps": [("GET|POST", "/{index}/_field_caps"), ("GET|POST", "/_field_caps")],
    "open_point_in_time": [("POST", "/{index}/_pit")],
    "close_point_in_time": [("DELETE", "/_pit")],
    # --- indices
    "indices.create": [("PUT", "/{index}")],
    "indices.delete": [("DELETE", "/{index}")],
    "indices.exists": [("HEAD", "/{index}")],
    "indices.get": [("GET", "/{index}")],
    "indices.get_mapping": [("GET", "/{index}/_mapping"), ("GET", "/_mapping")],
    "indices.put_mapping": [("PUT", "/{index}/_mapping")],
    "indices.refresh": [("POST", "/{index}/_refresh"), ("POST", "/_refresh")],
    "indices.flush": [("POST", "/{index}/_flush"), ("POST", "/_flush")],
    "indices.get_settings": [
        ("GET", "/{index}/_settings/{name}"),
        ("GET", "/{index}/_settings"),
        ("GET", "/_settings/{name}"),
        ("GET", "/_settings"),
    ],
    "indices.put_settings": [("PUT", "/{index}/_settings"), ("PUT", "/_settings")],
    "indices.stats": [
        ("GET", "/{index}/_stats/{metric}"),
        ("GET", "/{index}/_stats"),
        ("GET", "/_stats/{metric}"),
        ("GET", "/_stats"),
    ],
    "indices.analyze": [("GET|POST", "/{index}/_analyze"), ("GET|POST", "/_analyze")],
    "indices.put_alias": [("PUT", "/{index}/_alias/{name}")],
    "indices.delete_alias": [("DELETE", "/{index}/_alias/{name}")],
    "indices.get_alias": [
        ("GET", "/{index}/_alias/{name}"),
        ("GET", "/_alias/{name}"),
        ("GET", "/{index}/_alias"),
        ("GET", "/_alias"),
    ],
    "indices.exists_alias": [("HEAD", "/{index}/_alias/{name}"), ("HEAD", "/_alias/{name}")],
    "indices.update_aliases": [("POST", "/_aliases")],
    # --- cluster / cat / misc
    "info": [("GET", "/")],
    "ping": [("HEAD", "/")],
    "cluster.health": [("GET", "/_cluster/health/{index}"), ("GET", "/_cluster/health")],
    "cluster.get_settings": [("GET", "/_cluster/settings")],
    "cluster.put_settings": [("PUT", "/_cluster/settings")],
    "cluster.state": [
        ("GET", "/_cluster/state/{metric}/{index}"),
        ("GET", "/_cluster/state/{metric}"),
        ("GET", "/_cluster/state"),
    ],
    "nodes.info": [
        ("GET", "/_nodes/{node_id}/{metric}"),
        ("GET", "/_nodes/{metric}"),
        ("GET", "/_nodes"),
    ],
    "nodes.stats": [("GET", "/_nodes/{node_id}/stats"), ("GET", "/_nodes/stats")],
    "indices.resolve_index": [("GET", "/_resolve/index/{name}")],
    "indices.get_data_stream": [("GET", "/_data_stream/{name}"), ("GET", "/_data_stream")],
    "cat.indices": [("GET", "/_cat/indices/{index}"), ("GET", "/_cat/indices")],
    "cat.count": [("GET", "/_cat/count/{index}"), ("GET", "/_cat/count")],
    "cat.health": [("GET", "/_cat/health")],
    "indices.put_index_template": [("PUT", "/_index_template/{name}")],
    "indices.get_index_template": [("GET", "/_index_template/{name}"), ("GET", "/_index_template")],
    "indices.exists_index_template": [("HEAD", "/_index_template/{name}")],
    "indices.delete_index_template": [("DELETE", "/_index_template/{name}")],
    "cluster.put_component_template": [("PUT", "/_component_template/{name}")],
    "cluster.get_component_template": [("GET", "/_component_template/{name}"), ("GET", "/_component_template")],
    "cluster.delete_component_template": [("DELETE", "/_component_template/{name}")],
    "indices.put_template": [("PUT", "/_template/{name}")],
    "indices.get_template": [("GET", "/_template/{name}"), ("GET", "/_template")],
    "indices.exists_template": [("HEAD", "/_template/{name}")],
    "indices.delete_template": [("DELETE", "/_template/{name}")],
    "cat.templates": [("GET", "/_cat/templates")],
    "indices.validate_query": [("GET|POST", "/{index}/_validate/query"), ("GET|POST", "/_validate/query")],
    "cat.aliases": [("GET", "/_cat/aliases/{name}"), ("GET", "/_cat/aliases")],
    "tasks.get": [("GET", "/_tasks/{task_id}")],
}

# APIs whose list bodies are sent as NDJSON (one JSON document per line).
NDJSON_APIS = {"bulk", "msearch", "msearch_template"}

# APIs whose ``scroll_id`` argument the ES 8 clients move into the body (the path form is
# deprecated).
SCROLL_ID_IN_BODY = {"scroll", "clear_scroll"}

# ``catch`` values -> predicate on the HTTP status.
CATCHES = {
    "bad_request": (lambda s: s == 400, "400"),
    "unauthorized": (lambda s: s == 401, "401"),
    "forbidden": (lambda s: s == 403, "403"),
    "missing": (lambda s: s == 404, "404"),
    "request_timeout": (lambda s: s == 408, "408"),
    "conflict": (lambda s: s == 409, "409"),
    "too_many_requests": (lambda s: s == 429, "429"),
    "unavailable": (lambda s: s == 503, "503"),
    "request": (lambda s: s >= 400, "4xx|5xx"),
}

# Features of ES's YAML runner this runner implements (for ``skip: {features: …}`` and
# ``requires: {test_runner_features: …}``).
SUPPORTED_FEATURES = {
    "headers",
    "warnings",
    "warnings_regex",
    "allowed_warnings",
    "allowed_warnings_regex",
    "contains",
    "close_to",
    "stash_in_path",
    "stash_in_key",
    "stash_path_replace",
    "catch_unauthorized",
    "default_shards",
    "node_selector",
    "arbitrary_key",
}

ASSERTIONS = {"match", "length", "is_true", "is_false", "gt", "gte", "lt", "lte", "set",
              "contains", "close_to"}


class TestFailure(Exception):
    """An assertion or request that did not behave as the test expects."""


class TestSkip(Exception):
    """The test (or file) asks to be skipped."""


class SpecError(Exception):
    """The YAML cannot be run by this runner (unknown API, malformed step…)."""


# --------------------------------------------------------------------------------------------
# YAML loading
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises: no timestamps, only true/false are booleans
    (ES reads these files with Jackson, which keeps ``2020-01-01`` and ``yes`` as strings)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers
          if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class TestFile:
    def __init__(self, rel: str, path: Path):
        self.rel = rel
        self.path = path
        self.requires: dict = {}
        self.setup: list = []
        self.teardown: list = []
        self.tests: list[tuple[str, list]] = []
        self.skip_reason: str | None = None


def load_test_file(path: Path, rel: str) -> TestFile:
    tf = TestFile(rel, path)
    with open(path, encoding="utf-8") as fh:
        docs = list(yaml.load_all(fh, Loader=_Loader))
    seen = set()
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise SpecError(f"{rel}: top-level document is a {type(doc).__name__}, not a mapping")
        for name, body in doc.items():
            name = str(name)
            if name == "requires":
                tf.requires = body or {}
            elif name == "setup":
                tf.setup = _steps(rel, name, body)
            elif name == "teardown":
                tf.teardown = _steps(rel, name, body)
            else:
                if name in seen:
                    raise SpecError(f"{rel}: duplicate test name {name!r}")
                seen.add(name)
                tf.tests.append((name, _steps(rel, name, body)))
    tf.skip_reason = _file_requires_skip(tf.requires)
    # A skip inside setup applies to the whole file.
    if tf.skip_reason is None:
        for step in tf.setup:
            reason = _skip_step_reason(step)
            if reason:
                tf.skip_reason = reason
                break
    return tf


def _steps(rel: str, name: str, body) -> list:
    if body is None:
        return []
    if not isinstance(body, list):
        raise SpecError(f"{rel} :: {name}: expected a list of steps, got {type(body).__name__}")
    for step in body:
        validate_step(step, f"{rel} :: {name}")
    return body


def validate_step(step, where: str) -> None:
    if not isinstance(step, dict) or len(step) != 1:
        raise SpecError(f"{where}: a step must be a mapping with exactly one key: {step!r}")
    (kind, arg), = step.items()
    if kind == "do":
        if not isinstance(arg, dict):
            raise SpecError(f"{where}: 'do' needs a mapping")
        apis = [k for k in arg if k not in ("catch", "headers", "warnings", "warnings_regex",
                                            "allowed_warnings", "allowed_warnings_regex",
                                            "node_selector")]
        if len(apis) != 1:
            raise SpecError(f"{where}: 'do' must name exactly one API, got {apis}")
        api = apis[0]
        if api not in API_SPECS:
            raise SpecError(f"{where}: unknown API {api!r} (add it to API_SPECS in run.py)")
        args = arg[api]
        if args is not None and not isinstance(args, dict):
            raise SpecError(f"{where}: arguments of {api} must be a mapping")
        # Check a path template can be chosen with these arguments.
        build_request(api, dict(args or {}))
    elif kind in ASSERTIONS:
        if not isinstance(arg, dict) or not arg:
            # is_true/is_false take a bare path string
            if kind in ("is_true", "is_false") and (isinstance(arg, str) or arg is None):
                return
            raise SpecError(f"{where}: {kind} needs a mapping, got {arg!r}")
    elif kind in ("skip", "requires"):
        pass
    else:
        raise SpecError(f"{where}: unsupported step {kind!r}")


def _file_requires_skip(req: dict) -> str | None:
    if not isinstance(req, dict):
        return None
    # elasticsearch-clients-tests format: {serverless: bool, stack: bool}. We are a stack server.
    if req.get("stack") is False:
        return "requires.stack is false (serverless-only test)"
    return _features_skip(req.get("test_runner_features"))


def _features_skip(features) -> str | None:
    if features is None:
        return None
    if isinstance(features, str):
        features = [features]
    missing = [f for f in features if f not in SUPPORTED_FEATURES]
    if missing:
        return f"needs unsupported runner feature(s) {missing}"
    return None


def _skip_step_reason(step: dict) -> str | None:
    (kind, arg), = step.items()
    if kind == "skip" and isinstance(arg, dict):
        reason = _features_skip(arg.get("features"))
        if reason:
            return reason
        version = str(arg.get("version", "")).strip()
        if version == "all":
            return f"skip version: all ({arg.get('reason', 'no reason given')})"
        # Version ranges refer to Elasticsearch releases; CameoDB targets ES 8 semantics and
        # runs them. cluster_features / known_issues likewise are ignored.
    elif kind == "requires" and isinstance(arg, dict):
        return _features_skip(arg.get("test_runner_features"))
    return None


def discover(tests_dir: Path, only: list[str] | None, prefix: str = "") -> list[tuple[str, Path]]:
    files = sorted(p for p in tests_dir.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    out = []
    for p in files:
        rel = prefix + p.relative_to(tests_dir).as_posix()
        if only and not any(_glob_match(rel, pat) for pat in only):
            continue
        out.append((rel, p))
    return out


def _glob_match(rel: str, pat: str) -> bool:
    pat = pat.strip()
    return (fnmatch.fnmatchcase(rel, pat)
            or fnmatch.fnmatchcase(rel, pat + ".yml")
            or rel.startswith(pat.rstrip("/") + "/"))


# --------------------------------------------------------------------------------------------
# Stash and object paths
# --------------------------------------------------------------------------------------------

_INTERP = re.compile(r"\$\{([^}]+)\}")


class Stash:
    def __init__(self):
        self.values: dict = {}

    def clear(self):
        self.values.clear()

    def put(self, key: str, value):
        self.values[key] = value

    def lookup(self, name: str):
        if name in self.values:
            return self.values[name]
        # ES allows $body.path / ${body.path}-style lookups into stashed objects.
        head, _, rest = name.partition(".")
        if rest and head in self.values:
            found, value = evaluate_path(self.values[head], rest, None)
            if found:
                return value
        raise TestFailure(f"stash has no value for ${name} (known: {sorted(self.values)})")

    def resolve(self, value):
        """Replace $var / ${var} recursively in strings, lists and mappings (keys too)."""
        if isinstance(value, str):
            if value.startswith("$") and not value.startswith("${") and len(value) > 1:
                return self.lookup(value[1:])
            if "${" in value:
                # as in ES: ${var} interpolation always yields a string
                return _INTERP.sub(lambda m: _java_str(self.lookup(m.group(1))), value)
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, dict):
            return {(self.resolve(k) if isinstance(k, str) else k): self.resolve(v)
                    for k, v in value.items()}
        return value


def split_path(path: str) -> list[str]:
    if path in ("", "$body"):
        return []
    parts = re.split(r"(?<!\\)\.", path)
    return [p.replace("\\.", ".") for p in parts]


def evaluate_path(obj, path: str, stash: Stash | None):
    """Return (found, value) for a dotted path; components that are $vars are resolved."""
    cur = obj
    for part in split_path(path):
        if stash is not None and part.startswith("$"):
            part = _java_str(stash.lookup(part[1:]))
        if isinstance(cur, dict):
            if part == "_arbitrary_key_":
                if not cur:
                    return False, None
                cur = next(iter(cur.keys()))
                continue
            if part not in cur:
                return False, None
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                idx = int(part)
            except ValueError:
                return False, None
            if idx < 0 or idx >= len(cur):
                return False, None
            cur = cur[idx]
        else:
            return False, None
    return True, cur


def _java_str(v) -> str:
    """String form as ES's Java runner would see it (Object.toString for JSON values)."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _is_regex(v) -> bool:
    return isinstance(v, str) and len(v) > 2 and v.startswith("/") and v.rstrip().endswith("/")


def _regex_of(v: str) -> re.Pattern:
    return re.compile(v.strip()[1:-1], re.VERBOSE)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def deep_equal(expected, actual) -> bool:
    if _is_num(expected) and _is_num(actual):
        return float(expected) == float(actual)
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and expected.keys() == actual.keys()
                and all(deep_equal(expected[k], actual[k]) for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(deep_equal(e, a) for e, a in zip(expected, actual)))
    if type(expected) is not type(actual):
        return False
    return expected == actual


def _short(v, limit=300) -> str:
    s = json.dumps(v, ensure_ascii=False, default=str) if not isinstance(v, str) else repr(v)
    return s if len(s) <= limit else s[:limit] + "…"


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def _param_str(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(_param_str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, separators=(",", ":"))
    if v is None:
        return ""
    return str(v)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def build_request(api: str, args: dict):
    """Return (method, path_with_query, body_bytes_or_None, ignore_statuses)."""
    args = dict(args)
    body = args.pop("body", None)
    ignore = args.pop("ignore", None)
    ignore_set = set()
    if ignore is not None:
        for s in (ignore if isinstance(ignore, list) else [ignore]):
            ignore_set.add(int(s))
    if api in SCROLL_ID_IN_BODY and "scroll_id" in args:
        sid = args.pop("scroll_id")
        if body is None:
            body = {"scroll_id": sid}
        elif isinstance(body, dict):
            body = {**body, "scroll_id": sid}
    chosen = None
    for method, template in API_SPECS[api]:
        names = _PLACEHOLDER.findall(template)
        if all(n in args and args[n] is not None for n in names):
            chosen = (method, template, names)
            break
    if chosen is None:
        wanted = " or ".join(t for _, t in API_SPECS[api])
        raise SpecError(f"{api}: arguments {sorted(args)} fit no path ({wanted})")
    method, template, names = chosen
    path = template
    for n in names:
        path = path.replace("{" + n + "}", urllib.parse.quote(_param_str(args.pop(n)), safe=",*"))
    query = [(k, _param_str(v)) for k, v in args.items()]
    if query:
        path += "?" + urllib.parse.urlencode(query)

    data = None
    if body is not None:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif isinstance(body, list) and api in NDJSON_APIS:
            lines = [x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in body]
            data = ("\n".join(line.rstrip("\n") for line in lines) + "\n").encode("utf-8")
        else:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    if method == "GET|POST":
        method = "POST" if data is not None else "GET"
    return method, path, data, ignore_set


class Response:
    def __init__(self, method: str, status: int, headers: dict, raw: bytes):
        self.method = method
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", errors="replace")
        if method == "HEAD":
            # ES runner: an API without a body returns true on 2xx, false on 404 (or other error)
            self.body = status < 400
        elif not raw.strip():
            self.body = None
        else:
            try:
                self.body = json.loads(self.text)
            except ValueError:
                self.body = self.text


class HttpClient:
    def __init__(self, base_url: str, timeout: float):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", ""):
            raise SystemExit(f"only http:// URLs are supported, got {base_url}")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 9200
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, data: bytes | None, headers: dict | None = None) -> Response:
        hdrs = {"Content-Type": "application/json", "Accept": "application/json"}
        if headers:
            hdrs.update({str(k): _param_str(v) for k, v in headers.items()})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, self.prefix + path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return Response(method, resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
        except (OSError, http.client.HTTPException) as e:
            raise TestFailure(f"{method} {path}: transport error: {e.__class__.__name__}: {e}") from None
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------


class Executor:
    def __init__(self, client: HttpClient, verbose: bool):
        self.client = client
        self.verbose = verbose
        self.stash = Stash()
        self.last: Response | None = None
        self.trace: list[str] = []

    def reset(self):
        self.stash.clear()
        self.last = None
        self.trace = []

    def run_steps(self, steps: list, section: str):
        for i, step in enumerate(steps):
            (kind, arg), = step.items()
            try:
                self.run_step(kind, arg)
            except TestFailure as e:
                raise TestFailure(f"{section} step {i + 1} ({kind}): {e}") from None

    def run_step(self, kind: str, arg):
        if kind == "do":
            self.do(arg)
        elif kind in ("skip", "requires"):
            reason = _skip_step_reason({kind: arg})
            if reason:
                raise TestSkip(reason)
        elif kind in ("is_true", "is_false"):
            path = arg if isinstance(arg, str) else ("" if arg is None else str(arg))
            self.assert_truth(kind, path)
        elif kind == "set":
            for path, name in arg.items():
                found, value = self._eval(path)
                if not found:
                    raise TestFailure(f"set: field [{path}] not found in response {self._body_short()}")
                self.stash.put(str(name), value)
        else:
            for path, expected in arg.items():
                getattr(self, "assert_" + kind)(str(path), expected)

    # -- do
    def do(self, spec: dict):
        spec = dict(spec)
        catch = spec.pop("catch", None)
        headers = self.stash.resolve(spec.pop("headers", None) or {})
        for k in ("warnings", "warnings_regex", "allowed_warnings", "allowed_warnings_regex",
                  "node_selector"):
            spec.pop(k, None)
        (api, args), = spec.items()
        args = self.stash.resolve(dict(args or {}))
        method, path, data, ignore = build_request(api, args)
        resp = self.client.request(method, path, data, headers)
        self.last = resp
        self.stash.put("body", resp.body)
        self.trace.append(f"{method} {path}"
                          + (f" {_short(data.decode('utf-8', 'replace'), 200)}" if data else "")
                          + f" -> {resp.status} {_short(resp.text, 300)}")
        if catch is not None:
            self._check_catch(api, catch, resp)
            return
        if resp.status >= 400 and resp.status not in ignore and not (method == "HEAD" and resp.status == 404):
            raise TestFailure(f"{api}: {method} {path} returned {resp.status}: {_short(resp.text, 400)}")

    def _check_catch(self, api: str, catch, resp: Response):
        catch = str(catch)
        if catch in CATCHES:
            pred, label = CATCHES[catch]
            if not pred(resp.status):
                raise TestFailure(f"{api}: expected catch {catch} ({label}) but got {resp.status}: "
                                  f"{_short(resp.text, 300)}")
            return
        if _is_regex(catch):
            if resp.status < 400:
                raise TestFailure(f"{api}: expected an error matching {catch} but got {resp.status}")
            rx = _regex_of(catch)
            candidates = [resp.text]
            if isinstance(resp.body, dict) and "error" in resp.body:
                candidates.append(_java_str(resp.body["error"]))
            if not any(rx.search(c) for c in candidates):
                raise TestFailure(f"{api}: error body does not match {catch}: {_short(resp.text, 300)}")
            return
        if catch == "param":
            raise TestFailure(f"{api}: catch: param (a client-side parameter error) is not supported")
        raise TestFailure(f"{api}: unknown catch value {catch!r}")

    # -- assertions
    def _body_short(self):
        return _short(self.last.body if self.last else None, 300)

    def _eval(self, path):
        path = str(path) if path is not None else ""
        if self.last is None:
            raise TestFailure(f"no response to evaluate [{path}] against")
        if path.startswith("$") and not path.startswith("$body") and "." not in path:
            # a stashed value used as the whole path
            path = _java_str(self.stash.lookup(path[1:]))
        if path.startswith("$body."):
            path = path[len("$body."):]
        return evaluate_path(self.last.body, path, self.stash)

    def _actual(self, kind, path):
        found, value = self._eval(path)
        if not found:
            raise TestFailure(f"{kind}: field [{path}] not found in response {self._body_short()}")
        return value

    def assert_truth(self, kind: str, path: str):
        found, value = self._eval(path)
        s = _java_str(value) if found and value is not None else None
        falsy = s is None or s.lower() == "false" or s in ("0", "")
        if kind == "is_true" and falsy:
            raise TestFailure(f"is_true: field [{path}] is {_short(value) if found else 'missing'}; "
                              f"response {self._body_short()}")
        if kind == "is_false" and not falsy:
            raise TestFailure(f"is_false: field [{path}] is {_short(value)}")

    def assert_match(self, path: str, expected):
        expected = self.stash.resolve(expected)
        found, actual = self._eval(path)
        if expected is None:
            if found and actual is not None:
                raise TestFailure(f"match: field [{path}] expected null but was {_short(actual)}")
            return
        if not found:
            raise TestFailure(f"match: field [{path}] not found (expected {_short(expected)}) in "
                              f"response {self._body_short()}")
        if _is_regex(expected):
            if not isinstance(actual, str):
                raise TestFailure(f"match: field [{path}] expected a string matching {expected} "
                                  f"but was {_short(actual)}")
            if not _regex_of(expected).search(actual):
                raise TestFailure(f"match: field [{path}] = {_short(actual)} does not match {expected}")
            return
        if not deep_equal(expected, actual):
            raise TestFailure(f"match: field [{path}] expected {_short(expected)} but was {_short(actual)}")

    def assert_length(self, path: str, expected):
        expected = self.stash.resolve(expected)
        actual = self._actual("length", path)
        if not isinstance(actual, (list, dict, str)):
            raise TestFailure(f"length: field [{path}] is {_short(actual)}, not a list/object/string")
        if len(actual) != int(expected):
            raise TestFailure(f"length: field [{path}] has length {len(actual)}, expected {expected}")

    def _compare(self, kind, path, expected, ok):
        expected = self.stash.resolve(expected)
        actual = self._actual(kind, path)
        if _is_num(expected) and _is_num(actual):
            good = ok(float(actual), float(expected))
        elif isinstance(expected, str) and isinstance(actual, str):
            good = ok(actual, expected)
        else:
            raise TestFailure(f"{kind}: field [{path}] = {_short(actual)} is not comparable with "
                              f"{_short(expected)}")
        if not good:
            raise TestFailure(f"{kind}: field [{path}] = {_short(actual)}, expected {kind} {_short(expected)}")

    def assert_gt(self, path, expected):
        self._compare("gt", path, expected, lambda a, e: a > e)

    def assert_gte(self, path, expected):
        self._compare("gte", path, expected, lambda a, e: a >= e)

    def assert_lt(self, path, expected):
        self._compare("lt", path, expected, lambda a, e: a < e)

    def assert_lte(self, path, expected):
        self._compare("lte", path, expected, lambda a, e: a <= e)

    def assert_contains(self, path, expected):
        expected = self.stash.resolve(expected)
        actual = self._actual("contains", path)
        if isinstance(actual, list):
            if isinstance(expected, dict):
                ok = any(isinstance(a, dict) and all(k in a and deep_equal(v, a[k]) for k, v in expected.items())
                         for a in actual)
            else:
                ok = any(deep_equal(expected, a) for a in actual)
        elif isinstance(actual, str):
            ok = str(expected) in actual
        else:
            ok = False
        if not ok:
            raise TestFailure(f"contains: field [{path}] = {_short(actual)} does not contain {_short(expected)}")

    def assert_close_to(self, path, expected):
        expected = self.stash.resolve(expected)
        actual = self._actual("close_to", path)
        value, error = float(expected["value"]), float(expected["error"])
        if not _is_num(actual) or math.fabs(float(actual) - value) > error:
            raise TestFailure(f"close_to: field [{path}] = {_short(actual)} not within {error} of {value}")


# --------------------------------------------------------------------------------------------
# Expected failures
# --------------------------------------------------------------------------------------------


def load_expected_failures(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    if path.suffix == ".toml":
        if tomllib is None:
            raise SystemExit("expected_failures.toml needs Python >= 3.11 (tomllib)")
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    else:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a table of \"key\" = \"reason\"")
    out = {}
    for k, v in data.items():
        if not isinstance(v, str):
            raise SystemExit(f"{path}: value for {k!r} must be a reason string")
        out[" :: ".join(part.strip() for part in str(k).split("::", 1))] = v
    return out


def expected_reason(xfail: dict[str, str], rel: str, name: str, used: set) -> str | None:
    key = f"{rel} :: {name}"
    if key in xfail:
        used.add(key)
        return xfail[key]
    for k, reason in xfail.items():
        if " :: " not in k and (k == rel or fnmatch.fnmatchcase(rel, k)):
            used.add(k)
            return reason
    return None


# --------------------------------------------------------------------------------------------
# Server management
# --------------------------------------------------------------------------------------------


def wait_for_cluster(servers, timeout: float):
    """Waits until every node lists every node as up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = 0
        for s in servers:
            try:
                r = HttpClient(s.url, 2.0).request("GET", "/_cat/nodes?format=json", None)
                nodes = json.loads(r.text) if r.status == 200 else []
                if len(nodes) == len(servers) and all(n.get("state") == "up" for n in nodes):
                    ready += 1
            except (TestFailure, ValueError, TypeError):
                pass
        if ready == len(servers):
            return
        time.sleep(0.2)
    raise SystemExit(f"cluster of {len(servers)} did not form within {timeout:.0f}s")


def grow_cluster(servers, last, timeout: float):
    """Grows the cluster by its last node: the nodes before it get an index, the last one
    joins and takes over its share (a placement change), and the suite then runs on a cluster
    that grew rather than one that formed at once. The seed index is deleted again."""
    first = HttpClient(servers[0].url, 10.0)
    r = first.request("PUT", "/grow-seed", json.dumps({"settings": {"number_of_replicas": 1}}).encode())
    if r.status != 200:
        raise SystemExit(f"grow: creating the seed index failed: {r.text}")
    lines = []
    for n in range(300):
        lines.append(json.dumps({"index": {"_index": "grow-seed", "_id": str(n)}}))
        lines.append(json.dumps({"n": n}))
    r = first.request("POST", "/_bulk?refresh=true", ("\n".join(lines) + "\n").encode(),
                      {"Content-Type": "application/x-ndjson"})
    if r.status != 200 or json.loads(r.text).get("errors"):
        raise SystemExit(f"grow: loading the seed index failed: {r.text[:300]}")
    last.start()
    servers.append(last)
    wait_for_cluster(servers, timeout)
    host = urllib.parse.urlsplit(last.url).hostname
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        settled = 0
        for s in servers:
            try:
                c = HttpClient(s.url, 5.0)
                rows = json.loads(c.request("GET", "/_cat/shards/grow-seed?format=json", None).text)
                health = json.loads(c.request("GET", "/_cluster/health", None).text)
                count = json.loads(c.request("GET", "/grow-seed/_count", None).text).get("count")
                placed = any(row.get("ip") == host and row.get("state") == "STARTED" for row in rows)
                if placed and health.get("relocating_shards") == 0 and count == 300:
                    settled += 1
            except (TestFailure, ValueError, TypeError, AttributeError):
                pass
        if settled == len(servers):
            first.request("DELETE", "/grow-seed", None)
            return
        time.sleep(0.2)
    raise SystemExit(f"grow: the new node did not take over its share within {timeout:.0f}s")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, startup_timeout: float, host: str = "127.0.0.1",
                 cluster_addr: str | None = None, join: str | None = None):
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.tmp = tempfile.mkdtemp(prefix="cameodb-conformance-")
        self.data_dir = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.host = host
        # A standalone server takes any free cluster port; a cluster node gets a fixed one.
        self.cluster_args = ["--cluster-addr", cluster_addr or f"{host}:0"]
        if join:
            self.cluster_args += ["--join", join]
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self):
        self.log = open(self.log_path, "wb")
        cmd = [self.binary, "serve", "--data-dir", self.data_dir, "--http-addr", f"{self.host}:{self.port}",
               *self.cluster_args]
        try:
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise SystemExit(f"cannot start {self.binary}: {e}")
        deadline = time.monotonic() + self.startup_timeout
        client = HttpClient(self.url, timeout=2.0)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with code {self.proc.returncode} during startup\n{self.log_tail()}")
            try:
                if client.request("GET", "/", None).status == 200:
                    return
            except TestFailure:
                pass
            time.sleep(0.2)
        raise SystemExit(f"server not ready (GET / != 200) after {self.startup_timeout:.0f}s\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40) -> str:
        try:
            if self.log:
                self.log.flush()
            with open(self.log_path, "rb") as fh:
                lines = fh.read().decode("utf-8", "replace").splitlines()[-n:]
            return "--- server log (tail) ---\n" + "\n".join(lines)
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.log:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def one_line(s: str, limit=600) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[:limit] + "…"


def list_mode(files, verbose: bool) -> int:
    errors = 0
    total = 0
    for rel, path in files:
        try:
            tf = load_test_file(path, rel)
        except (SpecError, yaml.YAMLError) as e:
            print(f"ERROR {rel}: {one_line(e)}")
            errors += 1
            continue
        for name, steps in tf.tests:
            total += 1
            skip = tf.skip_reason or next((r for r in map(_skip_step_reason, steps) if r), None)
            print(f"{'SKIP' if skip else 'TEST'} {rel} :: {name}" + (f": {skip}" if skip else ""))
            if verbose:
                for section, ss in (("setup", tf.setup), ("test", steps), ("teardown", tf.teardown)):
                    for step in ss:
                        (kind, arg), = step.items()
                        if kind == "do":
                            spec = {k: v for k, v in arg.items() if k not in ("catch", "headers", "warnings",
                                                                               "warnings_regex", "allowed_warnings",
                                                                               "allowed_warnings_regex", "node_selector")}
                            (api, args), = spec.items()
                            method, p, data, _ = build_request(api, dict(args or {}))
                            extra = f" catch={arg['catch']}" if "catch" in arg else ""
                            body = f" body={one_line(data.decode(), 120)}" if data else ""
                            print(f"    {section:8} do {api}: {method} {p}{extra}{body}")
                        else:
                            print(f"    {section:8} {kind}: {one_line(json.dumps(arg, default=str), 120)}")
    print(f"listed {total} tests in {len(files)} files, {errors} files with errors")
    return 1 if errors else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("CAMEODB_URL", "http://127.0.0.1:9200"),
                    help="server to test (default $CAMEODB_URL or http://127.0.0.1:9200)")
    ap.add_argument("--server", metavar="BINARY",
                    help="start BINARY serve --data-dir <tmp> --http-addr 127.0.0.1:<port> and test it")
    ap.add_argument("--cluster", type=int, default=1, metavar="N",
                    help="with --server: start N nodes on 127.0.0.1..N as one cluster; each test talks "
                         "to the next node in turn")
    ap.add_argument("--grow", action="store_true",
                    help="with --cluster N: start N-1 nodes, give them an index, then grow the "
                         "cluster by the N-th (it streams its share) before the tests run")
    ap.add_argument("--tests-dir", type=Path, action="append",
                    help="a directory of YAML tests; repeatable (default: the shared suite and "
                         "tests/conformance/cameo)")
    ap.add_argument("--expected-failures", type=Path, default=DEFAULT_XFAIL_FILE)
    ap.add_argument("--only", action="append", metavar="GLOB",
                    help="run only files whose path (relative to the tests dir) matches; repeatable")
    ap.add_argument("--list", action="store_true", help="parse every file and list the tests; contact nothing")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    ap.add_argument("--startup-timeout", type=float, default=60.0)
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print the request trace of failing tests (with --list: the steps)")
    args = ap.parse_args(argv)

    dirs = args.tests_dir or [DEFAULT_TESTS_DIR, OWN_TESTS_DIR]
    files = []
    for tests_dir in dirs:
        if not tests_dir.is_dir():
            print(f"tests dir not found: {tests_dir}", file=sys.stderr)
            return 2
        prefix = "cameo/" if tests_dir.resolve() == OWN_TESTS_DIR.resolve() else ""
        files += discover(tests_dir, args.only, prefix)
    if not files:
        print(f"no test files match {args.only}", file=sys.stderr)
        return 2
    if args.list:
        return list_mode(files, args.verbose)

    xfail = load_expected_failures(args.expected_failures)
    used: set[str] = set()

    servers: list[Server] = []
    urls = [args.url]
    if args.server:
        seed = f"127.0.0.1:{free_port()}"
        for i in range(max(1, args.cluster)):
            if args.cluster > 1:
                host = f"127.0.0.{i + 1}"
                servers.append(Server(args.server, args.startup_timeout, host,
                                      cluster_addr=seed if i == 0 else f"{host}:{free_port()}",
                                      join=None if i == 0 else seed))
            else:
                servers.append(Server(args.server, args.startup_timeout))
        last = servers.pop() if args.grow and args.cluster > 2 else None
        try:
            for s in servers:
                s.start()
            if args.cluster > 1:
                wait_for_cluster(servers, args.startup_timeout)
            if last is not None:
                grow_cluster(servers, last, args.startup_timeout)
        except SystemExit:
            for s in servers + ([last] if last is not None and last not in servers else []):
                s.stop()
            raise
        urls = [s.url for s in servers]
    clients = [HttpClient(u, args.timeout) for u in urls]
    ex = Executor(clients[0], args.verbose)
    test_number = 0
    passed = failed = skipped = 0
    server_dead_reported = False

    def report(status, rel, name, reason=None):
        line = f"{status} {rel} :: {name}"
        if reason:
            line += f": {one_line(reason)}"
        print(line, flush=True)

    try:
        for rel, path in files:
            try:
                tf = load_test_file(path, rel)
            except (SpecError, yaml.YAMLError) as e:
                reason = expected_reason(xfail, rel, "<file>", used)
                if reason:
                    report("XFAIL", rel, "<file>", f"{one_line(e)} (expected: {reason})")
                    skipped += 1
                else:
                    report("FAIL", rel, "<file>", f"cannot load: {e}")
                    failed += 1
                continue
            for name, steps in tf.tests:
                reason = expected_reason(xfail, rel, name, used)
                if tf.skip_reason:
                    report("SKIP", rel, name, tf.skip_reason)
                    skipped += 1
                    continue
                ex.reset()
                ex.client = clients[test_number % len(clients)]
                server = servers[test_number % len(servers)] if servers else None
                test_number += 1
                error = None
                skip = None
                try:
                    ex.run_steps(tf.setup, "setup")
                    ex.run_steps(steps, "test")
                except TestSkip as e:
                    skip = str(e)
                except (TestFailure, SpecError) as e:
                    error = str(e)
                except Exception as e:  # a runner bug or odd response; report, don't crash
                    error = f"runner error: {e.__class__.__name__}: {e}"
                # teardown always runs (its own stash state carries on, as in ES)
                try:
                    ex.run_steps(tf.teardown, "teardown")
                except TestSkip:
                    pass
                except (TestFailure, SpecError) as e:
                    if error is None and skip is None:
                        error = str(e)
                except Exception as e:
                    if error is None and skip is None:
                        error = f"runner error in teardown: {e.__class__.__name__}: {e}"
                if server and not server.alive() and not server_dead_reported:
                    server_dead_reported = True
                    print(f"ERROR server exited with code {server.proc.returncode}\n{server.log_tail()}",
                          flush=True)
                if skip is not None:
                    report("SKIP", rel, name, skip)
                    skipped += 1
                elif error is None:
                    if reason:
                        report("XPASS", rel, name, f"passed but listed as expected failure: {reason}")
                    else:
                        report("PASS", rel, name)
                    passed += 1
                elif reason:
                    report("XFAIL", rel, name, f"{error} (expected: {reason})")
                    skipped += 1
                else:
                    report("FAIL", rel, name, error)
                    if args.verbose and ex.trace:
                        for t in ex.trace:
                            print(f"    {one_line(t, 800)}")
                    failed += 1
    finally:
        for s in servers:
            s.stop()

    if not args.only:
        for k in sorted(set(xfail) - used):
            print(f"WARN expected_failures entry matches no test: {k}")
    print(f"conformance: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
