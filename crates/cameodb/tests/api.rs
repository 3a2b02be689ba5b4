//! Every endpoint of the single-node API through a real `cameodb` process and real HTTP,
//! including the error cases.

mod common;

use common::{Server, ndjson};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("")
}

fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn root_health_and_compatibility_headers() {
    let server = Server::start();
    let (status, body) = server.get("/");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["version"]["number"]
            .as_str()
            .unwrap()
            .split('.')
            .next(),
        Some("8")
    );
    assert_eq!(body["tagline"], "You Know, for Search");
    let head = server.client.head(&server.base).send().unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["x-elastic-product"], "Elasticsearch");
    let (status, health) = server.get("/_cluster/health");
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("green"))
    );

    // The official clients' compatibility media type works for bodies and answers.
    let response = server
        .client
        .put(format!("{}/compat/_doc/1", server.base))
        .header(
            "content-type",
            "application/vnd.elasticsearch+json; compatible-with=8",
        )
        .header(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=8",
        )
        .body(r#"{"a": 1}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
}

#[test]
fn index_lifecycle_and_mappings() {
    let server = Server::start();
    let body = json!({"settings": {"number_of_shards": 1}, "mappings": {"properties": {"title": {"type": "text"}, "year": {"type": "integer"}}}});
    let (status, created) = server.call("PUT", "/movies", Some(body.clone()));
    assert_eq!(
        (status, created["acknowledged"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, again) = server.call("PUT", "/movies", Some(body));
    assert_eq!(
        (status, error_type(&again)),
        (StatusCode::BAD_REQUEST, "resource_already_exists_exception")
    );
    let (status, bad) = server.call("PUT", "/Bad*Name", None);
    assert_eq!(
        (status, error_type(&bad)),
        (StatusCode::BAD_REQUEST, "invalid_index_name_exception")
    );
    let (status, bad) = server.call("PUT", "/x", Some(json!({"settings": {"bogus": 1}})));
    assert_eq!(
        (status, error_type(&bad)),
        (StatusCode::BAD_REQUEST, "illegal_argument_exception")
    );
    let (status, bad) = server.call(
        "PUT",
        "/y",
        Some(json!({"mappings": {"properties": {"a": {"type": "nope"}}}})),
    );
    assert_eq!(
        (status, error_type(&bad)),
        (StatusCode::BAD_REQUEST, "mapper_parsing_exception")
    );

    assert_eq!(server.call("HEAD", "/movies", None).0, StatusCode::OK);
    assert_eq!(
        server.call("HEAD", "/missing", None).0,
        StatusCode::NOT_FOUND
    );
    let (_, index) = server.get("/movies");
    assert_eq!(
        index["movies"]["mappings"]["properties"]["year"]["type"],
        "integer"
    );
    assert_eq!(
        index["movies"]["settings"]["index"]["number_of_shards"],
        "1"
    );

    let (status, _) = server.call(
        "PUT",
        "/movies/_mapping",
        Some(json!({"properties": {"genre": {"type": "keyword"}}})),
    );
    assert_eq!(status, StatusCode::OK);
    let (status, conflict) = server.call(
        "PUT",
        "/movies/_mapping",
        Some(json!({"properties": {"year": {"type": "text"}}})),
    );
    assert_eq!(
        (status, error_type(&conflict)),
        (StatusCode::BAD_REQUEST, "illegal_argument_exception")
    );
    let (_, mapping) = server.get("/movies/_mapping");
    assert_eq!(
        mapping["movies"]["mappings"]["properties"]["genre"]["type"],
        "keyword"
    );

    // Auto-creation with dynamic mapping on first write.
    server.call(
        "PUT",
        "/auto/_doc/1?refresh=true",
        Some(json!({"name": "x", "n": 3})),
    );
    let (_, mapping) = server.get("/auto/_mapping");
    assert_eq!(
        mapping["auto"]["mappings"]["properties"]["n"]["type"],
        "long"
    );
    assert_eq!(
        mapping["auto"]["mappings"]["properties"]["name"]["fields"]["keyword"]["type"],
        "keyword"
    );

    let (status, cat) = server.get("/_cat/indices?format=json");
    assert_eq!(status, StatusCode::OK);
    let auto = cat
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["index"] == "auto")
        .unwrap();
    assert_eq!(auto["docs.count"], "1");
    let text = server
        .client
        .get(format!("{}/_cat/indices?v", server.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.starts_with("health status index"), "{text}");
    assert!(text.contains(" auto "), "{text}");

    let (status, refreshed) = server.call("POST", "/movies/_refresh", None);
    assert_eq!(
        (status, refreshed["_shards"]["failed"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(server.call("DELETE", "/movies", None).0, StatusCode::OK);
    let (status, gone) = server.call("DELETE", "/movies", None);
    assert_eq!(
        (status, error_type(&gone)),
        (StatusCode::NOT_FOUND, "index_not_found_exception")
    );
    assert_eq!(
        server.call("GET", "/movies/_doc/1", None).0,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn document_crud_versions_and_conflicts() {
    let server = Server::start();
    let (status, put) = server.call(
        "PUT",
        "/books/_doc/1",
        Some(json!({"title": "Dune", "year": 1965})),
    );
    assert_eq!(
        (status, put["result"].as_str(), put["_version"].as_u64()),
        (StatusCode::CREATED, Some("created"), Some(1))
    );
    let (status, put2) = server.call(
        "PUT",
        "/books/_doc/1",
        Some(json!({"title": "Dune", "year": 1966})),
    );
    assert_eq!(
        (status, put2["result"].as_str(), put2["_version"].as_u64()),
        (StatusCode::OK, Some("updated"), Some(2))
    );

    let (status, doc) = server.get("/books/_doc/1");
    assert_eq!(
        (
            status,
            doc["found"].as_bool(),
            doc["_source"]["year"].as_u64()
        ),
        (StatusCode::OK, Some(true), Some(1966))
    );
    assert_eq!(server.call("HEAD", "/books/_doc/1", None).0, StatusCode::OK);
    assert_eq!(
        server.call("HEAD", "/books/_doc/2", None).0,
        StatusCode::NOT_FOUND
    );
    let (status, missing) = server.get("/books/_doc/2");
    assert_eq!(
        (status, missing["found"].as_bool()),
        (StatusCode::NOT_FOUND, Some(false))
    );
    assert_eq!(
        server.get("/books/_source/1").1,
        json!({"title": "Dune", "year": 1966})
    );
    assert_eq!(
        server.get("/books/_doc/1?_source_includes=title").1["_source"],
        json!({"title": "Dune"})
    );

    let (status, conflict) =
        server.call("PUT", "/books/_create/1", Some(json!({"title": "again"})));
    assert_eq!(
        (status, error_type(&conflict)),
        (StatusCode::CONFLICT, "version_conflict_engine_exception")
    );
    let (status, _) = server.call(
        "PUT",
        "/books/_doc/1?op_type=create",
        Some(json!({"title": "again"})),
    );
    assert_eq!(status, StatusCode::CONFLICT);

    let seq = put2["_seq_no"].as_u64().unwrap();
    let (status, _) = server.call(
        "PUT",
        &format!("/books/_doc/1?if_seq_no={}&if_primary_term=1", seq + 10),
        Some(json!({"x": 1})),
    );
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, ok) = server.call(
        "PUT",
        &format!("/books/_doc/1?if_seq_no={seq}&if_primary_term=1"),
        Some(json!({"title": "Dune", "year": 1967})),
    );
    assert_eq!((status, ok["_version"].as_u64()), (StatusCode::OK, Some(3)));
    let (status, _) = server.call(
        "PUT",
        &format!(
            "/books/_doc/1?if_seq_no={}&if_primary_term=2",
            ok["_seq_no"]
        ),
        Some(json!({"x": 1})),
    );
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, auto) = server.call("POST", "/books/_doc", Some(json!({"title": "generated"})));
    assert_eq!(status, StatusCode::CREATED);
    let generated = auto["_id"].as_str().unwrap();
    assert!(generated.len() >= 20);
    assert_eq!(
        server.get(&format!("/books/_doc/{generated}")).1["_source"]["title"],
        "generated"
    );

    // Updates: partial doc, noop, upsert, doc_as_upsert, missing.
    let (status, up) = server.call(
        "POST",
        "/books/_update/1",
        Some(json!({"doc": {"rating": 5}})),
    );
    assert_eq!(
        (status, up["result"].as_str()),
        (StatusCode::OK, Some("updated"))
    );
    assert_eq!(
        server.get("/books/_source/1").1,
        json!({"title": "Dune", "year": 1967, "rating": 5})
    );
    let (_, noop) = server.call(
        "POST",
        "/books/_update/1",
        Some(json!({"doc": {"rating": 5}})),
    );
    assert_eq!(noop["result"], "noop");
    let (status, missing) = server.call("POST", "/books/_update/9", Some(json!({"doc": {"a": 1}})));
    assert_eq!(
        (status, error_type(&missing)),
        (StatusCode::NOT_FOUND, "document_missing_exception")
    );
    let (status, upserted) = server.call(
        "POST",
        "/books/_update/9",
        Some(json!({"doc": {"a": 1}, "upsert": {"a": 0}})),
    );
    assert_eq!(
        (status, upserted["result"].as_str()),
        (StatusCode::CREATED, Some("created"))
    );
    assert_eq!(server.get("/books/_source/9").1, json!({"a": 0}));
    let (_, as_upsert) = server.call(
        "POST",
        "/books/_update/10",
        Some(json!({"doc": {"b": 2}, "doc_as_upsert": true})),
    );
    assert_eq!(as_upsert["result"], "created");
    let (status, script) = server.call(
        "POST",
        "/books/_update/10",
        Some(json!({"script": "ctx._source.b++"})),
    );
    assert_eq!(
        (status, script["result"].as_str()),
        (StatusCode::OK, Some("updated")),
        "{script}"
    );
    assert_eq!(server.get("/books/_source/10").1, json!({"b": 3}));
    let (status, counted) = server.call(
        "POST",
        "/books/_update/11",
        Some(json!({
            "script": {"source": "ctx._source.hits += params.n", "params": {"n": 5}},
            "upsert": {"hits": 1}
        })),
    );
    assert_eq!(
        (status, counted["result"].as_str()),
        (StatusCode::CREATED, Some("created")),
        "{counted}"
    );
    server.call("POST", "/books/_update/11", Some(json!({"script": {"source": "ctx._source.hits += params.n", "params": {"n": 5}}, "upsert": {"hits": 1}})));
    assert_eq!(server.get("/books/_source/11").1, json!({"hits": 6}));
    let (status, _) = server.call(
        "POST",
        "/books/_update/10",
        Some(json!({"script": "ctx._source.b.foo()"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Routing: the routed document is a different key.
    server.call(
        "PUT",
        "/books/_doc/r1?routing=tenant-a",
        Some(json!({"t": 1})),
    );
    assert_eq!(
        server.get("/books/_doc/r1?routing=tenant-a").0,
        StatusCode::OK
    );
    assert_eq!(server.get("/books/_doc/r1").0, StatusCode::NOT_FOUND);

    let (status, del) = server.call("DELETE", "/books/_doc/1", None);
    assert_eq!(
        (status, del["result"].as_str()),
        (StatusCode::OK, Some("deleted"))
    );
    let (status, del) = server.call("DELETE", "/books/_doc/1", None);
    assert_eq!(
        (status, del["result"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );

    // mget by ids and by docs.
    let (_, mget) = server.call("POST", "/books/_mget", Some(json!({"ids": ["9", "1"]})));
    assert_eq!(mget["docs"][0]["found"], true);
    assert_eq!(mget["docs"][1]["found"], false);
    let (_, mget) = server.call(
        "POST",
        "/_mget",
        Some(json!({"docs": [{"_index": "books", "_id": "10"}, {"_index": "nope", "_id": "1"}]})),
    );
    assert_eq!(mget["docs"][0]["_source"], json!({"b": 3}));
    assert_eq!(
        mget["docs"][1]["error"]["type"],
        "index_not_found_exception"
    );
}

#[test]
fn bad_input_gets_clear_errors_and_hurts_nothing() {
    let server = Server::start_with(&["--max-body-bytes", "4096"]);
    server.call(
        "PUT",
        "/t",
        Some(json!({"mappings": {"properties": {"n": {"type": "long"}}}})),
    );
    server.call("PUT", "/t/_doc/ok?refresh=true", Some(json!({"n": 1})));

    let (status, body) = server.raw(
        "PUT",
        "/t/_doc/x",
        "application/json",
        b"{not json".to_vec(),
    );
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "mapper_parsing_exception")
    );
    let (status, body) = server.raw(
        "PUT",
        "/t/_doc/x",
        "application/json",
        b"{\"a\": \"\xff\"}".to_vec(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.call("PUT", "/t/_doc/x", Some(json!({"n": "not a number"})));
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "document_parsing_exception")
    );
    let long_id = "x".repeat(513);
    let (status, body) = server.call("PUT", &format!("/t/_doc/{long_id}"), Some(json!({"n": 1})));
    assert_eq!(
        (status, error_type(&body)),
        (
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception"
        )
    );
    let (status, body) = server.call("PUT", "/t/_doc/x?bogus=1", Some(json!({"n": 1})));
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "illegal_argument_exception")
    );
    let (status, body) = server.raw(
        "PUT",
        "/t/_doc/big",
        "application/json",
        format!("{{\"s\": \"{}\"}}", "a".repeat(10_000)).into_bytes(),
    );
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "content_too_long_exception")
    );
    let (status, body) = server.call(
        "POST",
        "/t/_search",
        Some(json!({"query": {"nonsense": {}}})),
    );
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "parsing_exception")
    );
    let (status, body) = server.call(
        "POST",
        "/t/_search",
        Some(json!({"query": {"match_all": {}}, "from": 9990, "size": 20})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.call("GET", "/_nope", None);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["type"].is_string());
    let (status, body) = server.call("PATCH", "/t/_doc/ok", Some(json!({})));
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["status"], 405);

    // The node is fine and nothing was written by the bad requests.
    let (_, count) = server.get("/t/_count");
    assert_eq!(count["count"], 1);
    assert_eq!(server.get("/t/_doc/ok").0, StatusCode::OK);
}

#[test]
fn bulk_items_succeed_or_fail_alone() {
    let server = Server::start();
    let body = ndjson(&[
        json!({"index": {"_index": "b", "_id": "1"}}),
        json!({"title": "one", "n": 1}),
        json!({"create": {"_index": "b", "_id": "2"}}),
        json!({"title": "two", "n": 2}),
        json!({"index": {"_index": "b", "_id": "3"}}),
        json!({"title": "bad", "n": "three"}),
        json!({"update": {"_index": "b", "_id": "1"}}),
        json!({"doc": {"extra": true}}),
        json!({"delete": {"_index": "b", "_id": "404"}}),
        json!({"create": {"_index": "b", "_id": "1"}}),
        json!({"title": "dup"}),
        json!({"index": {"_index": "b"}}),
        json!({"title": "auto id"}),
    ]);
    let (status, result) = server.raw("POST", "/_bulk?refresh=true", "application/x-ndjson", body);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["errors"], true);
    let items = result["items"].as_array().unwrap();
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| {
            i.as_object().unwrap().values().next().unwrap()["status"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(statuses, [201, 201, 400, 200, 404, 409, 201]);
    assert_eq!(
        items[2]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    assert_eq!(items[4]["delete"]["result"], "not_found");
    let (_, count) = server.get("/b/_count");
    assert_eq!(count["count"], 3);
    assert_eq!(
        server.get("/b/_source/1").1,
        json!({"title": "one", "n": 1, "extra": true})
    );

    // A malformed action line fails the request as a whole; a bad source only its item.
    let (status, body) = server.raw(
        "POST",
        "/b/_bulk",
        "application/x-ndjson",
        b"{not json}\n{}\n".to_vec(),
    );
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "illegal_argument_exception")
    );
    let (status, body) = server.raw(
        "POST",
        "/b/_bulk",
        "application/x-ndjson",
        b"{\"index\":{\"_id\":\"9\"}}\n{broken\n".to_vec(),
    );
    assert_eq!(
        (status, body["errors"].as_bool()),
        (StatusCode::OK, Some(true))
    );
}

#[test]
fn search_queries_sorting_paging_and_source_filtering() {
    let server = Server::start();
    server.call(
        "PUT",
        "/lib",
        Some(json!({"mappings": {"properties": {
            "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
            "genre": {"type": "keyword"}, "year": {"type": "integer"}, "price": {"type": "double"},
            "published": {"type": "date"}, "available": {"type": "boolean"}
        }}})),
    );
    let docs = [
        (
            "1",
            json!({"title": "Dune", "genre": "scifi", "year": 1965, "price": 9.5, "published": "1965-08-01", "available": true}),
        ),
        (
            "2",
            json!({"title": "Dune Messiah", "genre": "scifi", "year": 1969, "price": 8.0, "published": "1969-10-15", "available": false}),
        ),
        (
            "3",
            json!({"title": "Emma", "genre": "classic", "year": 1815, "price": 5.25, "published": "1815-12-23", "available": true}),
        ),
        (
            "4",
            json!({"title": "The Left Hand of Darkness", "genre": "scifi", "year": 1969, "price": 12.0, "published": "1969-03-01", "available": true}),
        ),
    ];
    let mut lines = Vec::new();
    for (id, doc) in &docs {
        lines.push(json!({"index": {"_index": "lib", "_id": id}}));
        lines.push(doc.clone());
    }
    let (status, _) = server.raw(
        "POST",
        "/_bulk?refresh=wait_for",
        "application/x-ndjson",
        ndjson(&lines),
    );
    assert_eq!(status, StatusCode::OK);

    let search = |q: Value| {
        let (status, body) = server.call("POST", "/lib/_search", Some(q));
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    assert_eq!(
        search(json!({"query": {"match_all": {}}}))["hits"]["total"]["value"],
        4
    );
    assert_eq!(
        ids(&search(json!({"query": {"match": {"title": "dune"}}}))),
        ["1", "2"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"match": {"title": {"query": "dune messiah", "operator": "and"}}}})
        )),
        ["2"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"term": {"genre": "classic"}}}))),
        ["3"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"term": {"title.raw": "Dune"}}}))),
        ["1"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"terms": {"year": [1815, 1965]}}}))),
        ["1", "3"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"range": {"year": {"gte": 1960, "lt": 1969}}}})
        )),
        ["1"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"range": {"price": {"gt": 8.0}}}}))),
        ["1", "4"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"range": {"published": {"gte": "1969-01-01", "lte": "1969-06-30"}}}})
        )),
        ["4"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"term": {"available": false}}}))),
        ["2"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"ids": {"values": ["3", "4", "99"]}}})
        )),
        ["3", "4"]
    );
    assert_eq!(
        ids(&search(json!({"query": {"bool": {
            "must": [{"term": {"genre": "scifi"}}],
            "filter": [{"range": {"year": {"gte": 1969}}}],
            "must_not": [{"match": {"title": "messiah"}}]
        }}}))),
        ["4"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"bool": {"should": [{"term": {"genre": "classic"}}, {"term": {"year": 1965}}]}}})
        )),
        ["1", "3"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"bool": {"must_not": [{"term": {"genre": "scifi"}}]}}})
        )),
        ["3"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"query_string": {"query": "title:dune AND year:1969"}}})
        )),
        ["2"]
    );
    assert_eq!(
        ids(&search(
            json!({"query": {"query_string": {"query": "emma OR darkness", "default_field": "title"}}})
        )),
        ["3", "4"]
    );

    let (_, q) = server.get("/lib/_search?q=messiah");
    assert_eq!(ids(&q), ["2"]);
    let (_, q) = server.get("/lib/_search?q=genre:classic");
    assert_eq!(ids(&q), ["3"]);

    let sorted = search(json!({"sort": [{"year": "desc"}], "size": 2}));
    let order: Vec<&str> = sorted["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 2);
    assert!(order.iter().all(|id| *id == "2" || *id == "4"), "{order:?}");
    assert_eq!(sorted["hits"]["hits"][0]["sort"][0], 1969);
    let by_price = search(json!({"sort": [{"price": {"order": "asc"}}], "from": 1, "size": 2}));
    let order: Vec<&str> = by_price["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["2", "1"]);
    let by_genre = search(json!({"sort": ["genre"], "size": 1}));
    assert_eq!(by_genre["hits"]["hits"][0]["_id"], "3");
    let (status, text_sort) = server.call("POST", "/lib/_search", Some(json!({"sort": ["title"]})));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text_sort}");

    let filtered =
        search(json!({"query": {"ids": {"values": ["1"]}}, "_source": ["title", "year"]}));
    assert_eq!(
        filtered["hits"]["hits"][0]["_source"],
        json!({"title": "Dune", "year": 1965})
    );
    let none = search(json!({"query": {"ids": {"values": ["1"]}}, "_source": false}));
    assert!(none["hits"]["hits"][0].get("_source").is_none());

    let (_, count) = server.call(
        "POST",
        "/lib/_count",
        Some(json!({"query": {"term": {"genre": "scifi"}}})),
    );
    assert_eq!(count["count"], 3);
    let (_, all) = server.get("/_search?q=emma");
    assert_eq!(ids(&all), ["3"]);
}

#[test]
fn refresh_wait_for_makes_a_write_visible_and_persistence_survives_restart() {
    let mut server = Server::start();
    let (status, _) = server.call(
        "PUT",
        "/books/_doc/1?refresh=wait_for",
        Some(json!({"title": "Dune"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    let (_, found) = server.get("/books/_search?q=dune");
    assert_eq!(found["hits"]["total"]["value"], 1);
    server.call("PUT", "/books/_doc/2", Some(json!({"title": "Emma"})));
    server.restart();
    assert_eq!(server.get("/books/_source/2").1, json!({"title": "Emma"}));
    let (_, found) = server.get("/books/_search?q=emma");
    assert_eq!(found["hits"]["total"]["value"], 1);
    let (_, mapping) = server.get("/books/_mapping");
    assert_eq!(
        mapping["books"]["mappings"]["properties"]["title"]["type"],
        "text"
    );
}

#[test]
fn a_saturated_index_answers_429_and_its_neighbours_do_not_notice() {
    let server = Server::start_with(&["--max-in-flight-per-index", "1"]);
    server.call(
        "PUT",
        "/slow",
        Some(json!({"settings": {"refresh_interval": "-1"}})),
    );
    // With one slot per index, the node's own background work (the metadata sync reads each
    // index's mapping every 500 ms) can hold an index's slot for a moment: requests to `fast`
    // retry a 429 a few times; what must never happen is `slow` keeping `fast` busy.
    let fast = |method: &str, path: &str, body: Option<Value>| {
        for _ in 0..50 {
            let (status, answer) = server.call(method, path, body.clone());
            if status != StatusCode::TOO_MANY_REQUESTS {
                return (status, answer);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{path} stayed busy");
    };
    assert_eq!(
        fast("PUT", "/fast/_doc/1", Some(json!({"a": 1}))).0,
        StatusCode::CREATED
    );
    // With refresh off, refresh=wait_for holds its request (and the index's only slot) until the
    // server goes away. Our own polling GET can take the slot first; the write is then refused
    // (429) and sent again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (rejected, blocked) = 'saturate: loop {
        let (client, base) = (server.client.clone(), server.base.clone());
        let blocked = std::thread::spawn(move || {
            client
                .put(format!("{base}/slow/_doc/0?refresh=wait_for"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .map(|r| r.status())
        });
        loop {
            assert!(std::time::Instant::now() < deadline, "never saturated");
            let (status, body) = server.get("/slow/_doc/0");
            if status == StatusCode::TOO_MANY_REQUESTS {
                break 'saturate (body, blocked);
            }
            if blocked.is_finished() {
                let answered = blocked
                    .join()
                    .expect("writer thread")
                    .expect("write answered");
                assert_eq!(
                    answered,
                    StatusCode::TOO_MANY_REQUESTS,
                    "the wait_for request returned early"
                );
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    assert_eq!(error_type(&rejected), "es_rejected_execution_exception");
    assert_eq!(fast("GET", "/fast/_doc/1", None).0, StatusCode::OK);
    drop(server);
    let _ = blocked.join();
}

#[test]
fn pretty_parameter_indents_json() {
    let server = Server::start();
    let text = server
        .client
        .get(format!("{}/?pretty", server.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("\n  \"tagline\""), "{text}");
    let compact = server
        .client
        .get(format!("{}/", server.base))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!compact.contains('\n'));
}

#[test]
fn options_this_node_cannot_honour_are_refused_not_ignored() {
    let server = Server::start();
    let line = ndjson(&[
        json!({"index": {"_index": "o", "_id": "1"}}),
        json!({"a": 1}),
    ]);
    let (status, _) = server.raw(
        "POST",
        "/_bulk?pipeline=p",
        "application/x-ndjson",
        line.clone(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server.raw(
        "POST",
        "/_bulk?require_alias=true",
        "application/x-ndjson",
        line,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let odd = ndjson(&[
        json!({"index": {"_index": "o", "_id": "1", "pipeline": "p"}}),
        json!({"a": 1}),
    ]);
    let (status, body) = server.raw("POST", "/_bulk", "application/x-ndjson", odd);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("pipeline")
    );
    // `o` is no alias: 404, as Elasticsearch answers.
    let (status, _) = server.call("PUT", "/o/_doc/1?require_alias=true", Some(json!({"a": 1})));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.call(
        "POST",
        "/o/_update/1?_source=true",
        Some(json!({"doc": {"a": 2}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get("/o/_doc/1").0,
        StatusCode::NOT_FOUND,
        "nothing was written"
    );
}
