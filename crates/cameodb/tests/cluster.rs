//! A leaderless cluster of three real `cameodb` processes on 127.0.0.1, .2 and .3: membership
//! converges through gossip, documents land on their ring owners, every node routes, searches
//! through any node answer exactly like one node holding every document, and a killed node is
//! reported, fails its writes loudly, and comes back with its data.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::cluster::{
    Trio, all_up, bulk, join_node, local_docs, movies, node_id, seed_node, states, wait_until,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Hits as (score, id) ordered by score then id, so ties that two topologies may order
/// differently compare equal; sort values stand in for scores when sorting by fields.
fn ranked(result: &Value) -> Vec<(String, String)> {
    let mut hits: Vec<(String, String)> = result["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            let key = match &h["sort"] {
                Value::Null => format!("{:.6}", h["_score"].as_f64().unwrap_or(f64::NAN)),
                sort => sort.to_string(),
            };
            (key, h["_id"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    // Keep the rank order of distinct keys; only sort within equal keys.
    let mut out = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let mut j = i;
        while j < hits.len() && hits[j].0 == hits[i].0 {
            j += 1;
        }
        hits[i..j].sort();
        out.extend_from_slice(&hits[i..j]);
        i = j;
    }
    out
}

/// Equal rankings: the same keys in the same order, the same ids for every key — except the
/// last key of a full page, whose tie group the page cuts: which of the tied documents make
/// the page depends on tie-breaking, which differs between topologies (as in Elasticsearch).
fn same_ranking(got: &[(String, String)], expected: &[(String, String)], query: &Value) {
    assert_eq!(got.len(), expected.len(), "hit count of {query}");
    let keys = |hits: &[(String, String)]| hits.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
    assert_eq!(keys(got), keys(expected), "scores or sort keys of {query}");
    let last = expected.last().map(|h| h.0.clone());
    let whole = |hits: &[(String, String)]| {
        hits.iter()
            .filter(|h| Some(&h.0) != last.as_ref())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(whole(got), whole(expected), "hits of {query}");
}

#[test]
fn three_nodes_converge_route_and_answer_like_one() {
    let trio = Trio::start();
    let nodes: Vec<&Server> = trio.nodes.iter().collect();
    let took = wait_until(Duration::from_secs(5), "3 nodes up everywhere", || {
        all_up(&nodes, 3)
    });
    eprintln!("converged {took:?} after the last node answered");
    let ids: Vec<String> = nodes.iter().map(|s| node_id(s)).collect();
    for node in &nodes {
        let (_, ring) = node.get("/_cameo/ring");
        let members: Vec<&str> = ring["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(members, expected, "every node sees the same members");
        assert_eq!(ring["vnodes_per_member"], json!(256));
        let (_, health) = node.get("/_cluster/health");
        assert_eq!(
            (
                health["status"].as_str(),
                health["number_of_nodes"].as_u64()
            ),
            (Some("green"), Some(3))
        );
    }

    // Writes through A, reads and searches through B and C.
    let (status, body) = nodes[0].call(
        "PUT",
        "/notes",
        // One copy of each document: this test is about routing to owners.
        Some(json!({"settings": {"number_of_replicas": 0},
            "mappings": {"properties": {"text": {"type": "text"}, "n": {"type": "long"}}}})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    for n in 0..30 {
        let (status, body) = nodes[0].call(
            "PUT",
            &format!("/notes/_doc/note-{n}?refresh=true"),
            Some(json!({"text": format!("note number {n} about rivers"), "n": n})),
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let auto = nodes[1].call(
        "POST",
        "/notes/_doc?refresh=true",
        Some(json!({"text": "auto id", "n": 99})),
    );
    assert_eq!(auto.0, StatusCode::CREATED, "{}", auto.1);
    let auto_id = auto.1["_id"].as_str().expect("generated id").to_string();
    for node in &nodes[1..] {
        for n in [0, 7, 29] {
            let (status, doc) = node.get(&format!("/notes/_doc/note-{n}"));
            assert_eq!(status, StatusCode::OK, "{doc}");
            assert_eq!(doc["_source"]["n"], json!(n));
        }
        assert_eq!(
            node.get(&format!("/notes/_doc/{auto_id}")).0,
            StatusCode::OK
        );
        let (_, found) = node.call(
            "POST",
            "/notes/_search",
            Some(json!({"query": {"match": {"text": "rivers"}}, "size": 50})),
        );
        assert_eq!(found["hits"]["total"]["value"], json!(30), "{found}");
        assert_eq!(found["_shards"]["total"], json!(3));
        assert_eq!(found["_shards"]["failed"], json!(0));
        let (_, count) = node.get("/notes/_count");
        assert_eq!(count["count"], json!(31));
        let (_, mget) = node.call(
            "POST",
            "/notes/_mget",
            Some(json!({"ids": ["note-3", "note-4", "nope", "note-5"]})),
        );
        let found: Vec<bool> = mget["docs"]
            .as_array()
            .expect("docs")
            .iter()
            .map(|d| d["found"] == json!(true))
            .collect();
        assert_eq!(found, vec![true, true, false, true], "{mget}");
    }
    // A routing key sends documents to its owner and a routed search only to that owner.
    for n in 0..5 {
        let (status, body) = nodes[1].call(
            "PUT",
            &format!("/notes/_doc/routed-{n}?routing=user-7&refresh=true"),
            Some(json!({"text": "routed rivers"})),
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, routed) = nodes[2].call(
        "POST",
        "/notes/_search?routing=user-7",
        Some(json!({"query": {"match": {"text": "routed"}}})),
    );
    assert_eq!(
        (
            routed["hits"]["total"]["value"].as_u64(),
            routed["_shards"]["total"].as_u64()
        ),
        (Some(5), Some(1)),
        "{routed}"
    );
    assert_eq!(
        nodes[0].get("/notes/_doc/routed-2?routing=user-7").0,
        StatusCode::OK
    );
    let (_, routed_count) = nodes[0].call(
        "POST",
        "/notes/_count?routing=user-7",
        Some(json!({"query": {"match": {"text": "routed"}}})),
    );
    assert_eq!(
        (
            routed_count["count"].as_u64(),
            routed_count["_shards"]["total"].as_u64()
        ),
        (Some(5), Some(1)),
        "{routed_count}"
    );
    for n in 0..5 {
        nodes[0].call(
            "DELETE",
            &format!("/notes/_doc/routed-{n}?routing=user-7&refresh=true"),
            None,
        );
    }

    // Bad input through a cluster node fails whole, in Elasticsearch's shape, writing nothing.
    let before = nodes[1].get("/notes/_count").1["count"].clone();
    let bad_bulk =
        b"{\"index\":{\"_index\":\"notes\",\"_id\":\"x1\"}}\n{\"text\":\"a\"}\n{not json\n{}\n"
            .to_vec();
    let (status, body) = nodes[1].raw("POST", "/_bulk", "application/x-ndjson", bad_bulk);
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("illegal_argument_exception")),
        "{body}"
    );
    let (status, body) = nodes[1].raw(
        "POST",
        "/_bulk?refresh=soon",
        "application/x-ndjson",
        b"{\"delete\":{\"_index\":\"notes\",\"_id\":\"note-1\"}}\n".to_vec(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let long_id = "x".repeat(600);
    let (status, body) = nodes[2].call(
        "PUT",
        &format!("/notes/_doc/{long_id}"),
        Some(json!({"text": "y"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = nodes[0].call(
        "POST",
        "/notes/_search",
        Some(json!({"query": {"no_such_query": {}}})),
    );
    assert_eq!(
        (status, body["status"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(400)),
        "{body}"
    );
    let (status, body) = nodes[0].call(
        "POST",
        "/notes/_mget",
        Some(json!({"docs": [{"_index": "notes"}]})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    nodes[0].call("POST", "/notes/_refresh", None);
    assert_eq!(
        nodes[1].get("/notes/_count").1["count"],
        before,
        "nothing written"
    );

    // Index metadata reaches every node: the explicit mapping at once, a dynamic field added
    // by a write on its owner through gossip, and a deletion everywhere.
    nodes[2].call(
        "PUT",
        "/notes/_doc/tagged?refresh=true",
        Some(json!({"text": "x", "tag": "new-field"})),
    );
    wait_until(Duration::from_secs(5), "dynamic mapping everywhere", || {
        nodes.iter().all(|node| {
            let (_, mapping) = node.get("/notes/_mapping");
            mapping["notes"]["mappings"]["properties"]["tag"]["type"] == json!("text")
                && mapping["notes"]["mappings"]["properties"]["n"]["type"] == json!("long")
        })
    });
    nodes[1].call("DELETE", "/notes/_doc/tagged?refresh=true", None);
    nodes[0].call("PUT", "/scratch", None);
    for node in &nodes {
        assert_eq!(node.get("/scratch").0, StatusCode::OK);
    }
    assert_eq!(nodes[1].call("DELETE", "/scratch", None).0, StatusCode::OK);
    wait_until(Duration::from_secs(5), "deleted everywhere", || {
        nodes
            .iter()
            .all(|node| node.get("/scratch").0 == StatusCode::NOT_FOUND)
    });

    // Two nodes create one index at the same moment with different mappings: the index's
    // metadata owner serialises the two, so exactly one succeeds (the other gets Elasticsearch's
    // resource_already_exists_exception) and every node ends up with the winner's index.
    let outcomes = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            nodes[0].call(
                "PUT",
                "/race",
                Some(json!({"mappings": {"properties": {"a": {"type": "keyword"}}}})),
            )
        });
        let b = scope.spawn(|| {
            nodes[1].call(
                "PUT",
                "/race",
                Some(json!({"mappings": {"properties": {"a": {"type": "long"}}}})),
            )
        });
        [a.join().expect("thread"), b.join().expect("thread")]
    });
    let winners: Vec<usize> = (0..2)
        .filter(|i| outcomes[*i].0 == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let loser = &outcomes[1 - winners[0]].1;
    assert_eq!(
        loser["error"]["type"],
        json!("resource_already_exists_exception"),
        "{loser}"
    );
    let winning_type = if winners[0] == 0 { "keyword" } else { "long" };
    wait_until(Duration::from_secs(5), "one index everywhere", || {
        let uuids: Vec<Value> = nodes
            .iter()
            .map(|node| node.get("/race").1["race"]["settings"]["index"]["uuid"].clone())
            .collect();
        let same_mapping = nodes.iter().all(|node| {
            node.get("/race/_mapping").1["race"]["mappings"]["properties"]["a"]["type"]
                == json!(winning_type)
        });
        uuids[0].is_string() && uuids.iter().all(|u| *u == uuids[0]) && same_mapping
    });

    // A field mapped dynamically by a write on one node holds on every node: a later document
    // that maps it differently on another node fails there, as on a single node.
    let (_, ring) = nodes[0].get("/_cameo/ring");
    let owner_of = |id: &str| {
        let token = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
        ring["ranges"]
            .as_array()
            .expect("ranges")
            .iter()
            .find(|r| r["start"].as_u64() <= Some(token) && Some(token) <= r["end"].as_u64())
            .map(|r| r["owner"].as_str().unwrap_or_default().to_string())
            .expect("a range holds every token")
    };
    let first = "typed-0".to_string();
    let second = (1..100)
        .map(|n| format!("typed-{n}"))
        .find(|id| owner_of(id) != owner_of(&first))
        .expect("an id on another node");
    let (status, body) = nodes[0].call(
        "PUT",
        &format!("/notes/_doc/{first}"),
        Some(json!({"level": 5})),
    );
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = nodes[0].call(
        "PUT",
        &format!("/notes/_doc/{second}"),
        Some(json!({"level": "high"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for node in &nodes {
        let (_, mapping) = node.get("/notes/_mapping");
        assert_eq!(
            mapping["notes"]["mappings"]["properties"]["level"]["type"],
            json!("long"),
            "{mapping}"
        );
    }
    nodes[0].call("DELETE", &format!("/notes/_doc/{first}?refresh=true"), None);

    let spread: Vec<u64> = nodes.iter().map(|s| local_docs(s, "notes")).collect();
    assert_eq!(
        spread.iter().sum::<u64>(),
        31,
        "each document is on exactly one node: {spread:?}"
    );
    assert!(
        spread.iter().all(|n| *n > 0),
        "documents spread over every node: {spread:?}"
    );

    // The same documents in one standalone node answer every search the same, with one, two
    // or three copies of each document in the cluster (with two, each search asks two nodes
    // for part of their ranges; with three, one node holds everything and answers alone).
    let single = Server::start();
    let docs = movies(1500);
    bulk(&single, "movies", &docs);
    for replicas in 0..3 {
        let index = format!("movies-r{replicas}");
        let settings = json!({"settings": {"number_of_replicas": replicas}});
        let (status, body) = nodes[0].call("PUT", &format!("/{index}"), Some(settings));
        assert_eq!(status, StatusCode::OK, "{body}");
        bulk(nodes[0], &index, &docs);
        answers_like_one(&nodes, &single, &index);
    }
}

/// Every query of a fixed set answers on `index` through each of `nodes` as on `single`'s
/// `movies`, which holds the same documents.
fn answers_like_one(nodes: &[&Server], single: &Server, index: &str) {
    let queries = [
        json!({"query": {"match": {"Title": "love story"}}, "size": 100}),
        json!({"query": {"match": {"Cast": "John"}}, "size": 30, "from": 10}),
        json!({"query": {"bool": {"must": {"match": {"Title": "the"}}, "filter": {"range": {"Year": {"gte": 1990}}}}}, "size": 50}),
        json!({"query": {"query_string": {"query": "war OR peace"}}, "size": 40}),
        json!({"query": {"match_all": {}}, "sort": [{"Year": "desc"}, {"id.keyword": "asc"}], "size": 25, "from": 5}),
        json!({"query": {"match": {"Genre": "Drama"}}, "sort": [{"Runtime": "asc"}, {"id.keyword": "asc"}], "size": 20,
               "search_after": [100.0, "movie-1"]}),
        json!({"size": 0, "aggs": {
            "genres": {"terms": {"field": "Genre.keyword", "size": 5}},
            "years": {"histogram": {"field": "Year", "interval": 10}},
            "runtime": {"avg": {"field": "Runtime"}},
            "oscars": {"max": {"field": "Oscars"}},
        }}),
    ];
    for query in &queries {
        let (status, expected) = single.call("POST", "/movies/_search", Some(query.clone()));
        assert_eq!(status, StatusCode::OK, "{expected}");
        for node in nodes {
            let (status, got) =
                node.call("POST", &format!("/{index}/_search"), Some(query.clone()));
            assert_eq!(status, StatusCode::OK, "{got}");
            assert_eq!(
                got["hits"]["total"], expected["hits"]["total"],
                "total of {query} on {index}"
            );
            same_ranking(&ranked(&got), &ranked(&expected), query);
            assert_eq!(
                got["aggregations"], expected["aggregations"],
                "aggregations of {query}"
            );
        }
    }
    for query in [
        json!({"query": {"match": {"Title": "night"}}}),
        json!({"query": {"range": {"Year": {"lt": 1970}}}}),
    ] {
        let (_, expected) = single.call("POST", "/movies/_count", Some(query.clone()));
        for node in nodes {
            let (_, got) = node.call("POST", &format!("/{index}/_count"), Some(query.clone()));
            assert_eq!(
                got["count"], expected["count"],
                "count of {query} on {index}"
            );
        }
    }
}

#[test]
fn bulk_through_one_node_spreads_evenly() {
    let trio = Trio::start();
    let nodes: Vec<&Server> = trio.nodes.iter().collect();
    wait_until(Duration::from_secs(5), "3 nodes up", || all_up(&nodes, 3));
    let docs: Vec<Value> = (0..10_000)
        .map(|n| json!({"id": format!("doc-{n}"), "n": n, "text": format!("document {n}")}))
        .collect();
    let one_copy = json!({"settings": {"number_of_replicas": 0}});
    assert_eq!(
        nodes[1].call("PUT", "/spread", Some(one_copy)).0,
        StatusCode::OK
    );
    bulk(nodes[1], "spread", &docs);
    let counts: Vec<u64> = nodes.iter().map(|s| local_docs(s, "spread")).collect();
    assert_eq!(counts.iter().sum::<u64>(), 10_000, "{counts:?}");
    for count in &counts {
        let share = *count as f64 / 10_000.0;
        assert!((share - 1.0 / 3.0).abs() <= 0.10, "shares {counts:?}");
    }
    eprintln!("10k docs spread as {counts:?}");
    for node in &nodes {
        assert_eq!(node.get("/spread/_count").1["count"], json!(10_000));
        let (_, cat) = node.get("/_cat/indices/spread?format=json");
        assert_eq!(cat[0]["docs.count"], json!("10000"), "{cat}");
    }
}

#[test]
fn a_killed_node_is_reported_fails_its_writes_and_comes_back() {
    let mut trio = Trio::start();
    {
        let nodes: Vec<&Server> = trio.nodes.iter().collect();
        wait_until(Duration::from_secs(5), "3 nodes up", || all_up(&nodes, 3));
    }
    let docs: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("k-{n}"), "text": "kill test"}))
        .collect();
    // One copy of each document: what a dead node holds is then unavailable (the replicated
    // case is `tests/replication.rs`).
    let one_copy = json!({"settings": {"number_of_replicas": 0}});
    assert_eq!(
        trio.nodes[0].call("PUT", "/kills", Some(one_copy)).0,
        StatusCode::OK
    );
    bulk(&trio.nodes[0], "kills", &docs);
    let victim_id = node_id(&trio.nodes[2]);
    let victim_docs = local_docs(&trio.nodes[2], "kills");
    assert!(victim_docs > 0);

    // A node that stops answering (SIGSTOP) is answered without once the search's timeout
    // passes: partial results, never a hang.
    let pid = trio.nodes[2].pid().expect("running").to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
    };
    signal("-STOP");
    let asked = Instant::now();
    let (status, partial) = trio.nodes[0].call(
        "POST",
        "/kills/_search",
        Some(json!({"query": {"match": {"text": "kill"}}, "size": 0, "timeout": "1s"})),
    );
    let waited = asked.elapsed();
    signal("-CONT");
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(partial["_shards"]["failed"], json!(1), "{partial}");
    assert_eq!(partial["hits"]["total"]["value"], json!(300 - victim_docs));
    assert!(
        waited < Duration::from_secs(20),
        "answered after {waited:?}"
    );
    eprintln!("search with a stopped node answered after {waited:?}");
    {
        let nodes: Vec<&Server> = trio.nodes.iter().collect();
        wait_until(Duration::from_secs(10), "the stopped node is back", || {
            all_up(&nodes, 3)
        });
    }
    trio.nodes[2].kill();
    let took = {
        let survivors: Vec<&Server> = trio.nodes[..2].iter().collect();
        wait_until(
            Duration::from_secs(10),
            "the killed node marked down",
            || {
                survivors
                    .iter()
                    .all(|s| states(s).get(&victim_id).map(String::as_str) == Some("down"))
            },
        )
    };
    eprintln!("marked down after {took:?}");
    let (_, health) = trio.nodes[0].get("/_cluster/health");
    assert_eq!(health["status"], json!("red"));

    let (status, partial) = trio.nodes[1].call(
        "POST",
        "/kills/_search",
        Some(json!({"query": {"match": {"text": "kill"}}, "size": 0})),
    );
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!(partial["_shards"]["failed"], json!(1), "{partial}");
    assert_eq!(partial["_shards"]["failures"][0]["node"], json!(victim_id));
    assert_eq!(
        partial["hits"]["total"]["value"],
        json!(300 - victim_docs),
        "{partial}"
    );

    // A scroll opened while it is down reports it on every page and reads the rest.
    let (_, mut page) = trio.nodes[1].call(
        "POST",
        "/kills/_search?scroll=1m",
        Some(json!({"size": 70, "query": {"match_all": {}}})),
    );
    let mut scrolled = 0;
    while let Some(hits) = page["hits"]["hits"].as_array().filter(|h| !h.is_empty()) {
        scrolled += hits.len() as u64;
        assert_eq!(page["_shards"]["failed"], json!(1), "{}", page["_shards"]);
        let id = page["_scroll_id"].as_str().expect("scroll id").to_string();
        page = trio.nodes[0]
            .call(
                "POST",
                "/_search/scroll",
                Some(json!({"scroll_id": id, "scroll": "1m"})),
            )
            .1;
    }
    assert_eq!(scrolled, 300 - victim_docs);

    // Writes owned by the dead node fail with a 503 that names it; the others succeed.
    let mut refused = 0;
    for n in 0..60 {
        let (status, body) = trio.nodes[0].call(
            "PUT",
            &format!("/kills/_doc/new-{n}"),
            Some(json!({"text": "late"})),
        );
        match status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                let reason = body["error"]["reason"].as_str().unwrap_or_default();
                assert!(reason.contains(&victim_id), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused > 0, "some of 60 ids belong to the dead node");

    trio.nodes[2].kill_and_restart();
    let nodes: Vec<&Server> = trio.nodes.iter().collect();
    wait_until(Duration::from_secs(10), "the node rejoins", || {
        all_up(&nodes, 3)
    });
    assert_eq!(node_id(nodes[2]), victim_id, "same identity after restart");
    assert_eq!(
        local_docs(nodes[2], "kills"),
        victim_docs,
        "its data is back"
    );
    for node in &nodes {
        let (_, all) = node.call(
            "POST",
            "/kills/_search",
            Some(json!({"query": {"match": {"text": "kill"}}, "size": 0})),
        );
        assert_eq!(all["hits"]["total"]["value"], json!(300), "{all}");
        assert_eq!(all["_shards"]["failed"], json!(0));
    }
}

#[test]
fn a_node_joining_later_takes_over_its_share_of_existing_documents() {
    let (a, seed) = seed_node();
    let b = join_node("127.0.0.2", &seed);
    wait_until(Duration::from_secs(5), "2 nodes up", || {
        all_up(&[&a, &b], 2)
    });
    let docs: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("early-{n}"), "v": 1}))
        .collect();
    bulk(&a, "early", &docs);

    let c = join_node("127.0.0.3", &seed);
    let nodes = [&a, &b, &c];
    wait_until(Duration::from_secs(5), "3 nodes up", || all_up(&nodes, 3));
    // Until the newcomer has streamed its ranges, reads keep to the old copies; writes go to
    // both. Every read meanwhile sees every document, and every acknowledged write lands.
    let mut written = 0usize;
    let mut rounds = 0usize;
    let placed_on_c = |node: &Server| {
        let (_, rows) = node.get("/_cat/shards/early?format=json");
        rows.as_array().is_some_and(|rows| {
            rows.iter()
                .any(|r| r["ip"] == json!("127.0.0.3") && r["state"] != json!("INITIALIZING"))
        })
    };
    let started = Instant::now();
    while !nodes.iter().all(|n| placed_on_c(n)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the newcomer never took over its ranges"
        );
        let node = nodes[rounds % 3];
        rounds += 1;
        let (status, body) = node.call(
            "PUT",
            &format!("/early/_doc/during-{written}"),
            Some(json!({"v": written})),
        );
        assert_eq!(status, StatusCode::CREATED, "{body}");
        written += 1;
        for reader in nodes {
            let (status, count) = reader.get("/early/_count");
            // The index may not have reached the newcomer yet.
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{count}");
            let n = count["count"].as_u64().unwrap_or(0) as usize;
            assert!(n >= 300, "a read missed documents during the move: {count}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for node in nodes {
        node.call("POST", "/early/_refresh", None);
    }
    for node in nodes {
        assert_eq!(node.get("/early/_count").1["count"], json!(300 + written));
    }
    for n in (0..300).step_by(7) {
        let (status, doc) = c.get(&format!("/early/_doc/early-{n}"));
        assert_eq!(status, StatusCode::OK, "early-{n}: {doc}");
    }
    for n in 0..written {
        for node in nodes {
            let (status, doc) = node.get(&format!("/early/_doc/during-{n}"));
            assert_eq!(status, StatusCode::OK, "during-{n}: {doc}");
        }
    }
    // Two copies of each document over three members: the newcomer holds about two thirds.
    let held = local_docs(&c, "early") as f64 / (300 + written) as f64;
    assert!(
        (0.4..0.95).contains(&held),
        "the newcomer holds {held} of the documents"
    );
    // A rewrite updates the document where it now is.
    let (status, body) = c.call(
        "PUT",
        "/early/_doc/early-3?refresh=true",
        Some(json!({"v": 2})),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"], json!("updated"));

    // An index created now is spread over all three.
    let later: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("late-{n}")}))
        .collect();
    bulk(&c, "late", &later);
    for node in nodes {
        assert!(local_docs(node, "late") > 0);
    }
}
