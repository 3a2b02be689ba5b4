"""opensearch-py against a real CameoDB server: its point-in-time API and its scan and
reindex helpers."""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers


@pytest.fixture(scope="module")
def client(server_urls):
    hosts = [{"host": url.split("//")[1].split(":")[0], "port": int(url.rsplit(":", 1)[1])} for url in server_urls]
    os_client = OpenSearch(hosts=hosts, timeout=120)
    actions = ({"_index": "os-books", "_id": str(n), "_source": {"n": n, "title": f"book {n}"}} for n in range(300))
    ok, errors = os_helpers.bulk(os_client, actions, refresh=True)
    assert ok == 300 and not errors
    yield os_client
    os_client.indices.delete(index="os-books,os-copy", ignore_unavailable=True)
    os_client.close()


def test_point_in_time_pages_a_stable_view(client):
    pit = client.create_pit(index="os-books", params={"keep_alive": "1m"})
    pit_id = pit["pit_id"]
    # Written after the point in time opened: not in its pages.
    client.index(index="os-books", id="late", body={"n": 1000}, refresh=True)
    seen, after = [], None
    while True:
        body = {"size": 70, "pit": {"id": pit_id, "keep_alive": "1m"}, "sort": [{"n": "asc"}]}
        if after is not None:
            body["search_after"] = after
        page = client.search(body=body)["hits"]["hits"]
        if not page:
            break
        seen.extend(hit["_source"]["n"] for hit in page)
        after = page[-1]["sort"]
    assert seen == list(range(300))
    closed = client.delete_pit(body={"pit_id": [pit_id]})
    assert closed["pits"][0]["successful"] is True
    client.delete(index="os-books", id="late", refresh=True)


def test_scan_and_reindex_helpers(client):
    assert sum(1 for _ in os_helpers.scan(client, index="os-books", size=50)) == 300
    os_helpers.reindex(client, "os-books", "os-copy")
    client.indices.refresh(index="os-copy")
    assert client.count(index="os-copy")["count"] == 300
    assert client.get(index="os-copy", id="42")["_source"] == {"n": 42, "title": "book 42"}
