//! Aggregations, filters and sorting on the real movies corpus (`../shared/data/movies.jsonl.gz`),
//! loaded through `_bulk` with dynamic mapping. Every expected value is computed here from the
//! same file.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use common::{Server, ndjson};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn movies() -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/movies.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect()
}

fn load(server: &Server, docs: &[Value]) {
    for chunk in docs.chunks(2000) {
        let mut lines = Vec::new();
        for doc in chunk {
            lines.push(json!({"index": {"_index": "movies", "_id": doc["id"]}}));
            lines.push(doc.clone());
        }
        let (status, body) = server.raw("POST", "/_bulk", "application/x-ndjson", ndjson(&lines));
        assert_eq!(
            (status, body["errors"].as_bool()),
            (StatusCode::OK, Some(false)),
            "{}",
            body["items"][0]
        );
    }
    server.call("POST", "/movies/_refresh", None);
}

fn search(server: &Server, body: Value) -> Value {
    let (status, result) = server.call("POST", "/movies/_search", Some(body));
    assert_eq!(status, StatusCode::OK, "{result}");
    result
}

fn strings(doc: &Value, field: &str) -> Vec<String> {
    doc[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn aggregations_filters_and_sorts_match_values_computed_from_the_file() {
    let docs = movies();
    let server = Server::start();
    load(&server, &docs);
    assert_eq!(
        search(&server, json!({"size": 0, "track_total_hits": true}))["hits"]["total"]["value"],
        docs.len()
    );

    // terms on a multi-valued keyword sub-field.
    let mut genres: BTreeMap<String, u64> = BTreeMap::new();
    for doc in &docs {
        for g in strings(doc, "Genre") {
            *genres.entry(g).or_default() += 1;
        }
    }
    let result = search(
        &server,
        json!({"size": 0, "aggs": {"genres": {"terms": {"field": "Genre.keyword", "size": 5}}}}),
    );
    let buckets = result["aggregations"]["genres"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), 5);
    let mut by_count: Vec<u64> = genres.values().copied().collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    for (bucket, expected_rank_count) in buckets.iter().zip(&by_count) {
        let key = bucket["key"].as_str().unwrap();
        assert_eq!(
            bucket["doc_count"].as_u64(),
            Some(genres[key]),
            "genre {key}"
        );
        assert_eq!(
            bucket["doc_count"].as_u64(),
            Some(*expected_rank_count),
            "top-5 order"
        );
    }

    // stats, histogram and range on numbers.
    let years: Vec<i64> = docs.iter().map(|d| d["Year"].as_i64().unwrap()).collect();
    let result = search(
        &server,
        json!({"size": 0, "aggs": {
            "year": {"stats": {"field": "Year"}},
            "decades": {"histogram": {"field": "Year", "interval": 10}},
            "oscars": {"range": {"field": "Oscars", "ranges": [{"to": 1}, {"from": 1, "to": 5}, {"from": 5}]}}
        }}),
    );
    let stats = &result["aggregations"]["year"];
    assert_eq!(stats["count"].as_u64(), Some(years.len() as u64));
    assert_eq!(stats["min"].as_f64(), years.iter().min().map(|v| *v as f64));
    assert_eq!(stats["max"].as_f64(), years.iter().max().map(|v| *v as f64));
    assert_eq!(
        stats["sum"].as_f64(),
        Some(years.iter().sum::<i64>() as f64)
    );
    let mut decades: BTreeMap<i64, u64> = BTreeMap::new();
    for y in &years {
        *decades.entry(y - y.rem_euclid(10)).or_default() += 1;
    }
    for bucket in result["aggregations"]["decades"]["buckets"]
        .as_array()
        .unwrap()
    {
        let key = bucket["key"].as_f64().unwrap() as i64;
        assert_eq!(
            bucket["doc_count"].as_u64(),
            Some(decades.get(&key).copied().unwrap_or(0)),
            "decade {key}"
        );
    }
    let oscars: Vec<i64> = docs.iter().map(|d| d["Oscars"].as_i64().unwrap()).collect();
    let ranges = result["aggregations"]["oscars"]["buckets"]
        .as_array()
        .unwrap();
    let expected = [
        oscars.iter().filter(|o| **o < 1).count(),
        oscars.iter().filter(|o| (1..5).contains(*o)).count(),
        oscars.iter().filter(|o| **o >= 5).count(),
    ];
    for (bucket, want) in ranges.iter().zip(expected) {
        assert_eq!(bucket["doc_count"].as_u64(), Some(want as u64), "{bucket}");
    }

    // date_histogram with a fixed 30-day interval (calendar intervals are refused, naming them).
    let mut released: BTreeMap<i64, u64> = BTreeMap::new();
    for doc in &docs {
        let day = days_from_civil(doc["Released"].as_str().unwrap());
        *released
            .entry(day.div_euclid(30) * 30 * 86_400_000)
            .or_default() += 1;
    }
    let result = search(
        &server,
        json!({"size": 0, "aggs": {"released": {"date_histogram": {"field": "Released", "fixed_interval": "30d", "min_doc_count": 1}}}}),
    );
    let mut seen = 0;
    for bucket in result["aggregations"]["released"]["buckets"]
        .as_array()
        .unwrap()
    {
        let key = bucket["key"].as_f64().unwrap() as i64;
        assert_eq!(
            bucket["doc_count"].as_u64(),
            released.get(&key).copied(),
            "bucket {key}"
        );
        seen += bucket["doc_count"].as_u64().unwrap();
    }
    assert_eq!(seen, docs.len() as u64);
    // Calendar years: every year from the first to the last, empty ones included, each
    // counting the movies released in it.
    let mut per_year: BTreeMap<i64, u64> = BTreeMap::new();
    for doc in &docs {
        let year = &doc["Released"].as_str().unwrap()[..4];
        let start = days_from_civil(&format!("{year}-01-01")) * 86_400_000;
        *per_year.entry(start).or_default() += 1;
    }
    let result = search(
        &server,
        json!({"size": 0, "aggs": {"r": {"date_histogram": {"field": "Released", "calendar_interval": "year"}}}}),
    );
    let buckets = result["aggregations"]["r"]["buckets"].as_array().unwrap();
    let (first, last) = (
        per_year.keys().next().copied().unwrap(),
        per_year.keys().last().copied().unwrap(),
    );
    assert_eq!(buckets[0]["key"].as_i64(), Some(first));
    assert_eq!(buckets[buckets.len() - 1]["key"].as_i64(), Some(last));
    for bucket in buckets {
        let key = bucket["key"].as_i64().unwrap();
        assert_eq!(
            bucket["doc_count"].as_u64(),
            Some(per_year.get(&key).copied().unwrap_or(0)),
            "year {key}"
        );
    }

    // Calendar days and weeks (weeks start on Monday) are fixed lengths in UTC.
    let mut weeks: BTreeMap<i64, u64> = BTreeMap::new();
    for doc in &docs {
        let day = days_from_civil(doc["Released"].as_str().unwrap());
        // 1970-01-05 was the first Monday after the epoch.
        let monday = day - (day - 4).rem_euclid(7);
        *weeks.entry(monday * 86_400_000).or_default() += 1;
    }
    let result = search(
        &server,
        json!({"size": 0, "aggs": {"weeks": {"date_histogram": {"field": "Released", "calendar_interval": "week", "min_doc_count": 1}}}}),
    );
    let buckets = result["aggregations"]["weeks"]["buckets"]
        .as_array()
        .unwrap();
    assert_eq!(buckets.len(), weeks.len());
    for bucket in buckets {
        let key = bucket["key"].as_f64().unwrap() as i64;
        assert_eq!(
            bucket["doc_count"].as_u64(),
            weeks.get(&key).copied(),
            "week {key}"
        );
    }

    // Sub-aggregations and percentiles: average Year per top genre, Year median.
    let result = search(
        &server,
        json!({"size": 0, "aggs": {
            "genres": {"terms": {"field": "Genre.keyword", "size": 3}, "aggs": {"year": {"avg": {"field": "Year"}}}},
            "median": {"percentiles": {"field": "Year", "percents": [50]}}
        }}),
    );
    for bucket in result["aggregations"]["genres"]["buckets"]
        .as_array()
        .unwrap()
    {
        let genre = bucket["key"].as_str().unwrap();
        let in_genre: Vec<i64> = docs
            .iter()
            .filter(|d| strings(d, "Genre").iter().any(|g| g == genre))
            .map(|d| d["Year"].as_i64().unwrap())
            .collect();
        let want = in_genre.iter().sum::<i64>() as f64 / in_genre.len() as f64;
        let got = bucket["year"]["value"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{genre}: {got} vs {want}");
    }
    let mut sorted = years.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2] as f64;
    let got = result["aggregations"]["median"]["values"]["50.0"]
        .as_f64()
        .unwrap();
    // tantivy's percentiles use DDSketch: 1% relative accuracy (Elasticsearch's TDigest is
    // tighter on such data; this is the documented bound, not a tuned tolerance).
    assert!(
        (got - median).abs() <= 0.01 * median,
        "median {got} vs {median}"
    );

    // A filtered aggregation: dramas only, average runtime of those that have one.
    let dramas: Vec<&Value> = docs
        .iter()
        .filter(|d| strings(d, "Genre").iter().any(|g| g == "Drama"))
        .collect();
    let runtimes: Vec<f64> = dramas
        .iter()
        .filter_map(|d| d["Runtime"].as_f64())
        .collect();
    let result = search(
        &server,
        json!({"size": 0, "track_total_hits": true, "query": {"term": {"Genre.keyword": "Drama"}}, "aggs": {
            "runtime": {"avg": {"field": "Runtime"}},
            "directors": {"cardinality": {"field": "Director.keyword"}}
        }}),
    );
    assert_eq!(
        result["hits"]["total"]["value"].as_u64(),
        Some(dramas.len() as u64)
    );
    let avg = result["aggregations"]["runtime"]["value"].as_f64().unwrap();
    let want = runtimes.iter().sum::<f64>() / runtimes.len() as f64;
    assert!(
        (avg - want).abs() < 1e-6 * want,
        "avg runtime {avg} vs {want}"
    );
    let directors: HashSet<String> = dramas.iter().flat_map(|d| strings(d, "Director")).collect();
    let estimate = result["aggregations"]["directors"]["value"]
        .as_f64()
        .unwrap();
    assert!(
        (estimate - directors.len() as f64).abs() <= 0.05 * directors.len() as f64,
        "cardinality {estimate} vs {}",
        directors.len()
    );

    // Filters and sorting.
    let in_2000s = years.iter().filter(|y| (2000..2010).contains(*y)).count();
    let result = search(
        &server,
        json!({"size": 0, "track_total_hits": true, "query": {"range": {"Year": {"gte": 2000, "lt": 2010}}}}),
    );
    assert_eq!(
        result["hits"]["total"]["value"].as_u64(),
        Some(in_2000s as u64)
    );
    let newest = search(
        &server,
        json!({"size": 3, "sort": [{"Year": "desc"}], "_source": ["Year"]}),
    );
    let max_year = *years.iter().max().unwrap();
    for hit in newest["hits"]["hits"].as_array().unwrap() {
        assert_eq!(hit["_source"]["Year"].as_i64(), Some(max_year));
    }

    // Aggregating a text field is refused, naming the field.
    let (status, refused) = server.call(
        "POST",
        "/movies/_search",
        Some(json!({"size": 0, "aggs": {"t": {"terms": {"field": "Title"}}}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("Title")
    );
    let (status, _) = server.call(
        "POST",
        "/movies/_search",
        Some(json!({"aggs": {"x": {"geohash_grid": {"field": "Year"}}}})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Days since 1970-01-01 of a `yyyy-mm-dd` date (proleptic Gregorian).
fn days_from_civil(date: &str) -> i64 {
    let y: i64 = date[..4].parse().unwrap();
    let m: i64 = date[5..7].parse().unwrap();
    let d: i64 = date[8..10].parse().unwrap();
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
