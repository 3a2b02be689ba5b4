//! A hostile client against one real node: requests that used to overflow the stack, panic,
//! wrap numbers around, starve scrolls or hold connections open get a clear 4xx (or 429) in
//! Elasticsearch's error shape, and the node keeps answering everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, ndjson};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("")
}

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or("")
}

/// The node still serves: a search over `index` finds every document.
fn still_answers(server: &Server, index: &str, docs: u64) {
    let (status, body) = server.get(&format!("/{index}/_count"));
    assert_eq!(status, StatusCode::OK, "the node stopped answering: {body}");
    assert_eq!(body["count"], json!(docs));
}

/// An index of `n` documents with text, keyword, date and number fields.
fn seed(server: &Server, index: &str, n: u64) {
    let (status, body) = server.call(
        "PUT",
        &format!("/{index}"),
        Some(json!({"mappings": {"properties": {
            "title": {"type": "text"}, "tag": {"type": "keyword"},
            "day": {"type": "date"}, "n": {"type": "long"}
        }}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(json!({"index": {"_index": index, "_id": i.to_string()}}));
        lines.push(
            json!({"title": format!("night number {i}"), "tag": format!("t{}", i % 7),
            "day": format!("2024-01-{:02}", i % 28 + 1), "n": i}),
        );
    }
    let (status, body) = server.raw(
        "POST",
        "/_bulk?refresh=true",
        "application/x-ndjson",
        ndjson(&lines),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["errors"], json!(false));
}

/// Asserts a 400 whose reason names `limit`.
fn refused(result: (StatusCode, Value), what: &str, limit: &str) {
    let (status, body) = result;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert!(
        reason(&body).contains(limit),
        "{what}: the reason should name {limit}: {body}"
    );
}

#[test]
fn deep_nesting_is_refused_naming_the_limit() {
    let server = Server::start();
    seed(&server, "deep", 50);
    let deep = "(".repeat(2200);
    let depth = "indices.query.bool.max_nested_depth";
    for text in [
        deep.clone(),
        "+(".repeat(2200),
        format!("{}a", "NOT ".repeat(3000)),
    ] {
        for clause in ["query_string", "simple_query_string"] {
            let body = json!({"query": {clause: {"query": text}}});
            refused(
                server.call("POST", "/deep/_search", Some(body.clone())),
                clause,
                depth,
            );
            refused(
                server.call("POST", "/deep/_count", Some(body.clone())),
                "_count",
                depth,
            );
            refused(
                server.call("POST", "/deep/_delete_by_query", Some(body)),
                "_delete_by_query",
                depth,
            );
        }
    }
    let q: String = deep.chars().map(|_| "%28").collect();
    refused(server.get(&format!("/deep/_search?q={q}")), "q=", depth);
    // JSON nesting: past the limit, and past the JSON parser's own (128 levels).
    for levels in [31, 127, 500] {
        let mut query = json!({"match_all": {}});
        for _ in 0..levels.min(126) {
            query = json!({"bool": {"must": [query]}});
        }
        let text = if levels > 126 {
            format!(
                "{}{}",
                r#"{"query":"#.to_string() + &r#"{"bool":{"must":["#.repeat(levels),
                "x"
            )
        } else {
            json!({ "query": query }).to_string()
        };
        let (status, body) = server.raw(
            "POST",
            "/deep/_search",
            "application/json",
            text.into_bytes(),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST, "{levels} levels: {body}");
    }
    // Aggregations nested past their limit.
    let mut aggs = json!({"leaf": {"terms": {"field": "tag"}}});
    for level in 0..20 {
        aggs = json!({ format!("l{level}"): {"terms": {"field": "tag"}, "aggs": aggs} });
    }
    refused(
        server.call(
            "POST",
            "/deep/_search",
            Some(json!({"size": 0, "aggs": aggs})),
        ),
        "aggs",
        "search.max_aggregation_depth",
    );
    still_answers(&server, "deep", 50);
}

#[test]
fn inputs_that_used_to_panic_are_clear_errors() {
    let server = Server::start();
    seed(&server, "dates", 40);
    for bad in [
        "now\u{e9}",
        "now+\u{e9}",
        "now/\u{e9}",
        "now+9999999999y",
        "now-99999999999999999999d",
    ] {
        let query = json!({"query": {"range": {"day": {"gte": bad}}}});
        let (status, body) = server.call("POST", "/dates/_search", Some(query));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(reason(&body).contains("day"), "{bad}: {body}");
    }
    // Beyond the dates the index can hold: a range is clamped, a document is refused.
    let (status, body) = server.call(
        "POST",
        "/dates/_count",
        Some(json!({"query": {"range": {"day": {"lte": "9999-12-31"}}}})),
    );
    assert_eq!((status, body["count"].clone()), (StatusCode::OK, json!(40)));
    let (status, body) = server.call("PUT", "/dates/_doc/far", Some(json!({"day": "9999-12-31"})));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("supported range"), "{body}");
    for name in ["%00x", "a%00", "x%2Fy", &"a".repeat(256), "a%0Ab"] {
        let (status, body) = server.call("PUT", &format!("/{name}"), None);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(error_type(&body), "invalid_index_name_exception", "{name}");
    }
    // HTTP clients resolve `.` and `..` segments themselves: sent as written.
    let addr = server.base.trim_start_matches("http://").to_string();
    for name in ["%2E", "%2E%2E"] {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .write_all(
                format!("PUT /{name} HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
            .expect("write");
        let answer = read_until_closed(&mut stream);
        assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
        assert!(
            answer.contains("invalid_index_name_exception"),
            "{name}: {answer}"
        );
    }
    still_answers(&server, "dates", 40);
}

#[test]
fn numbers_too_large_for_their_unit_are_refused_not_wrapped() {
    let server = Server::start();
    seed(&server, "nums", 20);
    refused(
        server.get("/nums/_search?from=18446744073709551615&size=1"),
        "from",
        "Result window is too large",
    );
    refused(
        server.get("/nums/_search?from=9000&size=1001"),
        "from+size",
        "Result window is too large",
    );
    let (status, body) = server.call(
        "PUT",
        "/interval",
        Some(json!({"settings": {"refresh_interval": "2305843009213693952s"}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("[index.refresh_interval]"), "{body}");
    let (status, _) = server.get("/interval");
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created");
    for (param, value) in [
        ("timeout", "99999999999999999999s"),
        ("scroll", "18446744073709551615d"),
    ] {
        let (status, body) = server.get(&format!("/nums/_search?{param}={value}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        assert!(
            reason(&body).contains(&format!("[{param}]")),
            "{param}: {body}"
        );
    }
    for query in [
        json!({"match": {"title": {"query": "night", "boost": -1}}}),
        json!({"match_phrase": {"title": {"query": "night number", "slop": 99999999999u64}}}),
    ] {
        let (status, body) = server.call("POST", "/nums/_search", Some(json!({"query": query})));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    still_answers(&server, "nums", 20);
}

#[test]
fn every_elasticsearch_time_unit_is_accepted_and_errors_name_the_parameter() {
    let server = Server::start_with(&["--search-max-open-scroll-context", "50"]);
    seed(&server, "times", 30);
    for unit in [
        "90000000nanos",
        "90000000micros",
        "1500ms",
        "30s",
        "5m",
        "1h",
        "1d",
    ] {
        let (status, body) = server.get(&format!("/times/_search?scroll={unit}&size=10"));
        assert_eq!(status, StatusCode::OK, "scroll={unit}: {body}");
        let id = body["_scroll_id"].as_str().expect("scroll id").to_string();
        let (status, page) = server.call(
            "POST",
            "/_search/scroll",
            Some(json!({"scroll": unit, "scroll_id": id})),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["hits"]["hits"].as_array().map(Vec::len), Some(10));
        let (status, _) = server.call("DELETE", "/_search/scroll", Some(json!({"scroll_id": id})));
        assert_eq!(status, StatusCode::OK);
    }
    for (param, value) in [("scroll", "5x"), ("scroll", "1.5h"), ("timeout", "soon")] {
        let (status, body) = server.get(&format!("/times/_search?{param}={value}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}={value}: {body}");
        assert!(
            reason(&body).contains(&format!("[{param}]")),
            "the error should name [{param}]: {body}"
        );
    }
    let (status, body) = server.call(
        "PUT",
        "/hourly",
        Some(json!({"settings": {"refresh_interval": "1h"}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    still_answers(&server, "times", 30);
}

#[test]
fn scroll_contexts_are_limited_at_creation_and_handed_out_ones_keep_working() {
    let server = Server::start_with(&["--search-max-open-scroll-context", "20"]);
    seed(&server, "scrolls", 30);
    let (status, body) = server.get("/scrolls/_search?scroll=9999999m&size=5");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(reason(&body).contains("search.max_keep_alive"), "{body}");
    let mine = server.get("/scrolls/_search?scroll=1m&size=5").1["_scroll_id"]
        .as_str()
        .expect("first scroll")
        .to_string();
    for _ in 1..20 {
        let (status, body) = server.get("/scrolls/_search?scroll=1m&size=5");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = server.get("/scrolls/_search?scroll=1m&size=5");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_type(&body), "too_many_scroll_contexts_exception");
    assert!(reason(&body).contains("search.max_open_scroll_context"));
    // The scroll handed out first still reads every page.
    let mut seen = 5;
    loop {
        let (status, page) = server.call(
            "POST",
            "/_search/scroll",
            Some(json!({"scroll": "1m", "scroll_id": mine})),
        );
        assert_eq!(status, StatusCode::OK, "{page}");
        let hits = page["hits"]["hits"].as_array().map_or(0, Vec::len);
        if hits == 0 {
            break;
        }
        seen += hits;
    }
    assert_eq!(seen, 30);
    // Freed contexts make room again.
    let (status, _) = server.call("DELETE", "/_search/scroll/_all", None);
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.get("/scrolls/_search?scroll=1m&size=5");
    assert_eq!(status, StatusCode::OK, "{body}");
    still_answers(&server, "scrolls", 30);
}

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection was not closed: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn half_sent_requests_and_idle_connections_are_cut_and_connections_are_capped() {
    let server = Server::start_with(&[
        "--http-header-timeout",
        "1s",
        "--http-idle-timeout",
        "2s",
        "--http-body-timeout",
        "1s",
        "--http-max-connections",
        "16",
    ]);
    seed(&server, "conns", 10);
    let addr = server.base.trim_start_matches("http://").to_string();
    let connect = || TcpStream::connect(&addr).expect("connect");
    // Nothing at all, half a header, half a body, a request then silence.
    let mut silent = connect();
    assert_eq!(read_until_closed(&mut silent), "");
    let mut half_header = connect();
    half_header
        .write_all(b"GET /conns/_count HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    assert_eq!(read_until_closed(&mut half_header), "");
    let mut half_body = connect();
    half_body
        .write_all(b"POST /conns/_search HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":")
        .expect("write");
    let answer = read_until_closed(&mut half_body);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("http.body_timeout"), "{answer}");
    let mut idle = connect();
    idle.write_all(b"GET /conns/_count HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let answer = read_until_closed(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Past the cap a connection is answered 503 and closed; the node serves again once the
    // idle ones are cut.
    let hogs: Vec<TcpStream> = (0..16).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect();
    let answer = read_until_closed(&mut over);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("http.max_connections"), "{answer}");
    drop(hogs);
    // The closed connections free their slots as soon as the node reads their end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server
        .client
        .get(format!("{}/conns/_count", server.base))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(std::time::Instant::now() < deadline, "no slot came free");
        std::thread::sleep(Duration::from_millis(100));
    }
    still_answers(&server, "conns", 10);
}
