"""End-to-end test of CameoDB with the official `elasticsearch` Python client (8.x).

A session fixture starts ``target/debug/cameodb serve --data-dir <tmp> --http-addr
127.0.0.1:<free port>`` (override the binary with ``CAMEODB_BIN``), waits until ``GET /``
answers 200, and stops the server at the end. With ``CAMEODB_CLUSTER_NODES=3`` it starts a
three-node cluster on 127.0.0.1-3 instead and the client round-robins over every node.

The tests load the first 10,000 documents of ``../shared/data/wiki-vital.jsonl.gz`` into an
index ``wiki`` with ``helpers.bulk`` and exercise count, match search, get, update and delete.
They run in file order and share the index.

Run:  tests/setup-python.sh && .venv/bin/python -m pytest tests/python -q

Note for the server: the 8.x client refuses a server whose 2xx responses lack the header
``X-Elastic-Product: Elasticsearch`` (UnsupportedProductError), and it sends
``Accept``/``Content-Type: application/vnd.elasticsearch+json; compatible-with=8`` (and
``application/vnd.elasticsearch+x-ndjson; compatible-with=8`` for _bulk).
"""

from __future__ import annotations

import collections
import gzip
import json
import re
from pathlib import Path

import pytest
from elasticsearch import NotFoundError, helpers

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = REPO_ROOT.parent / "shared" / "data" / "wiki-vital.jsonl.gz"
N_DOCS = 10_000
INDEX = "wiki"


@pytest.fixture(scope="session")
def docs() -> list[dict]:
    assert DATA_FILE.is_file(), f"data file missing: {DATA_FILE}"
    out = []
    with gzip.open(DATA_FILE, "rt", encoding="utf-8") as fh:
        for line in fh:
            if len(out) == N_DOCS:
                break
            out.append(json.loads(line))
    assert len(out) == N_DOCS
    return out


@pytest.fixture(scope="session")
def wiki(es, docs):
    """Create the index and bulk-load the documents; yields the index name."""
    es.indices.create(
        index=INDEX,
        mappings={
            "properties": {
                "id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "title": {"type": "text"},
                "body": {"type": "text"},
            }
        },
    )
    ok, errors = helpers.bulk(
        es,
        ({"_index": INDEX, "_id": d["id"], "_source": d} for d in docs),
        chunk_size=1000,
    )
    assert ok == N_DOCS, errors
    es.indices.refresh(index=INDEX)
    return INDEX


def _tokens(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", text.lower()) if w]


def _unique_title_word(docs: list[dict]) -> tuple[dict, str]:
    """A doc and a plain word of its title that no other loaded title contains."""
    df = collections.Counter(w for d in docs for w in set(_tokens(d["title"])))
    for d in docs:
        for w in d["title"].split():
            if w.isascii() and w.isalpha() and len(w) >= 5 and df[w.lower()] == 1:
                return d, w
    raise AssertionError("no title has a unique word")


# The tests below run in file order and share the loaded index.


def test_count(es, wiki):
    assert es.count(index=wiki)["count"] == N_DOCS


def test_search_title_word(es, wiki, docs):
    doc, word = _unique_title_word(docs)
    resp = es.search(index=wiki, query={"match": {"title": word}}, size=10)
    ids = [h["_id"] for h in resp["hits"]["hits"]]
    assert doc["id"] in ids, f"search title:{word!r} should find {doc['id']} ({doc['title']!r}), got {ids}"
    assert resp["hits"]["total"]["value"] >= 1


def test_get_update_delete(es, wiki, docs):
    doc = docs[42]
    doc_id = doc["id"]

    got = es.get(index=wiki, id=doc_id)
    assert got["found"] is True
    assert got["_id"] == doc_id
    assert got["_source"] == doc

    partial = {"title": doc["title"] + " (updated)", "extra": 7}
    upd = es.update(index=wiki, id=doc_id, doc=partial)
    assert upd["result"] == "updated"
    got = es.get(index=wiki, id=doc_id)
    assert got["_source"] == {**doc, **partial}

    deleted = es.delete(index=wiki, id=doc_id)
    assert deleted["result"] == "deleted"
    with pytest.raises(NotFoundError):
        es.get(index=wiki, id=doc_id)
    es.indices.refresh(index=wiki)
    assert es.count(index=wiki)["count"] == N_DOCS - 1


def test_scan_aggregations_and_search_after(es, wiki, docs):
    """helpers.scan (scroll + clear_scroll), a terms aggregation and search_after paging."""
    scanned = {h["_id"] for h in helpers.scan(es, index=wiki, query={"query": {"match_all": {}}}, size=700)}
    assert len(scanned) == N_DOCS - 1
    assert docs[42]["id"] not in scanned

    resp = es.search(index=wiki, size=0, aggs={"sources": {"terms": {"field": "source", "size": 3}}})
    counts = collections.Counter(d["source"] for i, d in enumerate(docs) if i != 42)
    buckets = {b["key"]: b["doc_count"] for b in resp["aggregations"]["sources"]["buckets"]}
    for key, count in buckets.items():
        assert counts[key] == count

    seen, after = [], None
    while True:
        kwargs = {"search_after": after} if after else {}
        page = es.search(index=wiki, size=2500, sort=[{"id": "asc"}], source=False, **kwargs)
        hits = page["hits"]["hits"]
        if not hits:
            break
        seen.extend(h["_id"] for h in hits)
        after = hits[-1]["sort"]
    assert seen == sorted(scanned)
