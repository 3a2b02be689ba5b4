//! `_msearch` and scroll through a real server.

mod common;

use std::collections::BTreeSet;

use common::{Server, ndjson};
use reqwest::StatusCode;
use serde_json::json;

fn load(server: &Server, n: usize) {
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(json!({"index": {"_index": "s", "_id": i.to_string()}}));
        lines.push(json!({"n": i, "even": i % 2 == 0}));
    }
    let (status, body) = server.raw(
        "POST",
        "/_bulk?refresh=true",
        "application/x-ndjson",
        ndjson(&lines),
    );
    assert_eq!(
        (status, body["errors"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

#[test]
fn scroll_reads_every_document_once_from_a_snapshot() {
    let server = Server::start();
    load(&server, 95);
    let (status, first) = server.call(
        "POST",
        "/s/_search?scroll=1m",
        Some(json!({"size": 20, "sort": [{"n": "asc"}]})),
    );
    assert_eq!(status, StatusCode::OK);
    let id = first["_scroll_id"].as_str().unwrap().to_string();
    // Written after the scroll opened: not part of its snapshot.
    server.call("PUT", "/s/_doc/late?refresh=true", Some(json!({"n": 1000})));

    let mut seen: Vec<u64> = first["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_source"]["n"].as_u64().unwrap())
        .collect();
    loop {
        let (status, page) = server.call(
            "POST",
            "/_search/scroll",
            Some(json!({"scroll": "1m", "scroll_id": id})),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["_scroll_id"], id);
        assert_eq!(
            page["hits"]["total"]["value"], 95,
            "the total is the snapshot's"
        );
        let hits = page["hits"]["hits"].as_array().unwrap();
        if hits.is_empty() {
            break;
        }
        seen.extend(hits.iter().map(|h| h["_source"]["n"].as_u64().unwrap()));
    }
    assert_eq!(
        seen,
        (0..95).collect::<Vec<u64>>(),
        "in order, each once, nothing from after the snapshot"
    );

    let (status, cleared) =
        server.call("DELETE", "/_search/scroll", Some(json!({"scroll_id": id})));
    assert_eq!(
        (status, cleared["num_freed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, gone) = server.call("POST", "/_search/scroll", Some(json!({"scroll_id": id})));
    assert_eq!(
        (status, gone["error"]["type"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("search_context_missing_exception")
        )
    );
}

#[test]
fn msearch_answers_each_search_on_its_own() {
    let server = Server::start();
    load(&server, 10);
    let body = ndjson(&[
        json!({}),
        json!({"query": {"term": {"even": true}}, "size": 0}),
        json!({"index": "missing"}),
        json!({"query": {"match_all": {}}}),
        json!({"index": "s"}),
        json!({"query": {"ids": {"values": ["3"]}}}),
        json!({}),
        json!({"query": {"bogus": {}}}),
    ]);
    let (status, result) = server.raw("POST", "/s/_msearch", "application/x-ndjson", body);
    assert_eq!(status, StatusCode::OK);
    let responses = result["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 4);
    assert_eq!(responses[0]["hits"]["total"]["value"], 5);
    assert_eq!(
        (
            responses[1]["status"].as_u64(),
            responses[1]["error"]["type"].as_str()
        ),
        (Some(404), Some("index_not_found_exception"))
    );
    let ids: BTreeSet<&str> = responses[2]["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["3"]));
    assert_eq!(responses[3]["status"], 400);
}

#[test]
fn delete_and_update_by_query() {
    let server = Server::start();
    load(&server, 10);
    let (status, deleted) = server.call(
        "POST",
        "/s/_delete_by_query?refresh=true",
        Some(json!({"query": {"term": {"even": true}}})),
    );
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        (
            deleted["deleted"].as_u64(),
            deleted["total"].as_u64(),
            deleted["version_conflicts"].as_u64()
        ),
        (Some(5), Some(5), Some(0))
    );
    assert_eq!(server.get("/s/_count").1["count"], 5);
    assert_eq!(server.get("/s/_doc/2").0, StatusCode::NOT_FOUND);

    let (status, updated) = server.call(
        "POST",
        "/s/_update_by_query?refresh=true",
        Some(json!({"query": {"range": {"n": {"gte": 7}}}, "doc": {"flag": "late"}})),
    );
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["updated"].as_u64(), Some(2));
    assert_eq!(
        server.get("/s/_source/9").1,
        json!({"n": 9, "even": false, "flag": "late"})
    );
    let (_, count) = server.call(
        "POST",
        "/s/_count",
        Some(json!({"query": {"term": {"flag.keyword": "late"}}})),
    );
    assert_eq!(count["count"], 2);

    // Without a doc every match is re-indexed as it is: versions move, sources stay.
    let (_, reindexed) = server.call("POST", "/s/_update_by_query", None);
    assert_eq!(reindexed["updated"].as_u64(), Some(5));
    assert_eq!(server.get("/s/_doc/1").1["_version"], 2);
    assert_eq!(server.get("/s/_source/1").1, json!({"n": 1, "even": false}));

    let (status, scripted) = server.call("POST", "/s/_update_by_query?refresh=true", Some(json!({
        "query": {"ids": {"values": ["1", "3"]}},
        "script": {"source": "ctx._source.n += params.step; ctx._source.seen = true", "params": {"step": 100}}
    })));
    assert_eq!(
        (status, scripted["updated"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{scripted}"
    );
    assert_eq!(
        server.get("/s/_source/3").1,
        json!({"n": 103, "even": false, "seen": true})
    );
    let (status, body) = server.call(
        "POST",
        "/s/_update_by_query",
        Some(json!({"script": {"source": "ctx._source.remove('n')"}})),
    );
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("script_exception")),
        "{body}"
    );
    let (status, _) = server.call(
        "POST",
        "/missing/_delete_by_query",
        Some(json!({"query": {"match_all": {}}})),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn multi_key_sort_missing_values_search_after_and_total_tracking() {
    let server = Server::start();
    server.call(
        "PUT",
        "/m",
        Some(
            json!({"mappings": {"properties": {"g": {"type": "keyword"}, "n": {"type": "long"}}}}),
        ),
    );
    let docs = [
        ("1", json!({"g": "b", "n": 3})),
        ("2", json!({"g": "a", "n": 5})),
        ("3", json!({"g": "b", "n": 1})),
        ("4", json!({"g": "a"})),
        ("5", json!({"n": 2})),
        ("6", json!({"g": "c", "n": 5})),
    ];
    let mut lines = Vec::new();
    for (id, doc) in &docs {
        lines.push(json!({"index": {"_index": "m", "_id": id}}));
        lines.push(doc.clone());
    }
    server.raw(
        "POST",
        "/_bulk?refresh=true",
        "application/x-ndjson",
        ndjson(&lines),
    );
    let order = |body: &serde_json::Value| -> Vec<String> {
        body["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_id"].as_str().unwrap().to_string())
            .collect()
    };
    let sort = json!([{"g": "asc"}, {"n": {"order": "desc"}}]);
    let (_, all) = server.call("POST", "/m/_search", Some(json!({"sort": sort})));
    assert_eq!(
        order(&all),
        ["2", "4", "1", "3", "6", "5"],
        "missing values last in both directions"
    );
    assert_eq!(all["hits"]["hits"][0]["sort"], json!(["a", 5]));
    assert_eq!(all["hits"]["hits"][1]["sort"], json!(["a", null]));
    let (_, first) = server.call(
        "POST",
        "/m/_search",
        Some(json!({"sort": [{"g": {"order": "asc", "missing": "_first"}}, "n"]})),
    );
    assert_eq!(order(&first)[0], "5");

    // search_after pages through the same order without overlap.
    let mut pages = Vec::new();
    let mut after: Option<serde_json::Value> = None;
    loop {
        let mut body = json!({"size": 2, "sort": sort});
        if let Some(cursor) = &after {
            body["search_after"] = cursor.clone();
        }
        let (status, page) = server.call("POST", "/m/_search", Some(body));
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids = order(&page);
        if ids.is_empty() {
            break;
        }
        after = Some(page["hits"]["hits"].as_array().unwrap().last().unwrap()["sort"].clone());
        pages.extend(ids);
    }
    assert_eq!(pages, order(&all));

    let (_, capped) = server.call(
        "POST",
        "/m/_search",
        Some(json!({"track_total_hits": 4, "size": 0})),
    );
    assert_eq!(
        capped["hits"]["total"],
        json!({"value": 4, "relation": "gte"})
    );
    let (_, off) = server.call(
        "POST",
        "/m/_search",
        Some(json!({"track_total_hits": false})),
    );
    assert!(off["hits"].get("total").is_none());
    let (status, _) = server.call(
        "POST",
        "/m/_search",
        Some(json!({"from": 2, "search_after": [1], "sort": ["n"]})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn highlight_and_fields() {
    let server = Server::start();
    server.call("PUT", "/h", Some(json!({"mappings": {"properties": {"body": {"type": "text"}, "tags": {"type": "keyword"}, "n": {"type": "long"}}}})));
    server.call("PUT", "/h/_doc/1?refresh=true", Some(json!({
        "body": "The quick brown fox jumps over the lazy dog. Foxes are quick and clever animals.",
        "tags": ["wild", "mammal"], "n": 7
    })));
    let (status, result) = server.call("POST", "/h/_search", Some(json!({
        "query": {"match": {"body": "fox"}},
        "highlight": {"pre_tags": ["["], "post_tags": ["]"], "fields": {"body": {"fragment_size": 30}}},
        "fields": ["tags", "n"]
    })));
    assert_eq!(status, StatusCode::OK, "{result}");
    let hit = &result["hits"]["hits"][0];
    let fragment = hit["highlight"]["body"][0].as_str().unwrap();
    assert!(fragment.contains("[fox]"), "{fragment}");
    assert!(fragment.len() <= 40, "{fragment}");
    assert_eq!(hit["fields"], json!({"tags": ["wild", "mammal"], "n": [7]}));
    let (_, whole) = server.call(
        "POST",
        "/h/_search",
        Some(json!({
            "query": {"match": {"body": "quick"}},
            "highlight": {"fields": {"body": {"number_of_fragments": 0}}}
        })),
    );
    let whole = whole["hits"]["hits"][0]["highlight"]["body"][0]
        .as_str()
        .unwrap();
    assert_eq!(
        whole,
        "The <em>quick</em> brown fox jumps over the lazy dog. Foxes are <em>quick</em> and clever animals."
    );
    let (status, _) = server.call(
        "POST",
        "/h/_search",
        Some(json!({"highlight": {"fields": {"body": {}}, "boundary_scanner": "word"}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn typed_keys_and_unavailable_indexes() {
    let server = Server::start();
    load(&server, 6);
    let (_, typed) = server.call(
        "POST",
        "/s/_search?typed_keys=true",
        Some(json!({"size": 0, "aggs": {
            "by_parity": {"terms": {"field": "even"}, "aggs": {"avg_n": {"avg": {"field": "n"}}}},
            "ns": {"terms": {"field": "n"}},
            "p": {"percentiles": {"field": "n"}}
        }})),
    );
    let aggs = typed["aggregations"].as_object().unwrap();
    assert!(aggs.contains_key("lterms#ns"), "{typed}");
    assert!(aggs.contains_key("tdigest_percentiles#p"), "{typed}");
    let parity = aggs
        .iter()
        .find(|(k, _)| k.ends_with("#by_parity"))
        .expect("typed parity")
        .1;
    assert!(parity["buckets"][0].get("avg#avg_n").is_some(), "{parity}");

    let (status, _) = server.get("/s,missing/_search");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, found) = server.get("/s,missing/_search?ignore_unavailable=true");
    assert_eq!(
        (status, found["hits"]["total"]["value"].as_u64()),
        (StatusCode::OK, Some(6))
    );
    let (status, _) = server.get("/nothing*/_search?allow_no_indices=false");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get("/nothing*/_search");
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn a_scroll_returns_its_snapshot_whatever_is_written_meanwhile() {
    let server = Server::start();
    load(&server, 2000);
    // Written before the scroll opens but perhaps not refreshed yet: the scroll shows them
    // or not, as its snapshot has them, but never half.
    server.call("DELETE", "/s/_doc/1999", None);
    server.call("POST", "/s/_update/1998", Some(json!({"doc": {"n": -1}})));
    let (status, first) = server.call(
        "POST",
        "/s/_search?scroll=1m",
        Some(json!({"size": 500, "version": true})),
    );
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = first["_scroll_id"].as_str().unwrap().to_string();
    let total = first["hits"]["total"]["value"].as_u64().unwrap();
    let mut pages = vec![first["hits"]["hits"].as_array().unwrap().clone()];
    // Three documents already returned are deleted, three not yet returned are changed.
    let returned: Vec<String> = pages[0][..3]
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect();
    for id in &returned {
        let (status, _) = server.call("DELETE", &format!("/s/_doc/{id}?refresh=true"), None);
        assert_eq!(status, StatusCode::OK);
    }
    for id in ["1500", "1501", "1502"] {
        server.call(
            "POST",
            &format!("/s/_update/{id}?refresh=true"),
            Some(json!({"doc": {"n": -1}})),
        );
    }
    loop {
        let (status, page) = server.call(
            "POST",
            "/_search/scroll",
            Some(json!({"scroll": "1m", "scroll_id": id})),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        let hits = page["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        pages.push(hits);
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    let returned_total: usize = sizes.iter().sum();
    assert_eq!(returned_total as u64, total, "pages {sizes:?}");
    assert!(total == 2000 || total == 1999, "{total}");
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 500),
        "no page is short: {sizes:?}"
    );
    let mut ids = BTreeSet::new();
    for hit in pages.iter().flatten() {
        let id = hit["_id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "{id} returned twice");
        let n: i64 = id.parse().unwrap();
        let source_n = hit["_source"]["n"].as_i64().unwrap();
        // The document as the snapshot matched it: its original body (or, for 1998, the
        // update made before the scroll opened, if the snapshot has it).
        match (id, source_n) {
            ("1998", -1) => assert_eq!(hit["_version"], 2, "{hit}"),
            (_, source_n) => {
                assert_eq!(source_n, n, "{hit}");
                assert_eq!(hit["_version"], 1, "{hit}");
            }
        }
    }
}
