//! Write→search visibility: a document is PUT without refresh, then an `ids` search is polled
//! until it finds it; the lag runs from the acknowledgement to the first hit.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::http::Http;

/// Lag in µs over `samples` documents written to `index`.
pub async fn run(http: &Http, index: &str, samples: usize) -> Result<Histogram<u64>, String> {
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())?;
    for i in 0..samples {
        let id = format!("lag-{i}");
        http.json(
            reqwest::Method::PUT,
            &format!("/{index}/_doc/{id}"),
            json!({"title": "lag probe", "n": i}),
        )
        .await?;
        let acked = Instant::now();
        let query = json!({"size": 0, "query": {"ids": {"values": [id]}}});
        loop {
            let answer = http
                .json(
                    reqwest::Method::POST,
                    &format!("/{index}/_search"),
                    query.clone(),
                )
                .await?;
            if answer["hits"]["total"]["value"].as_u64().unwrap_or(0) > 0 {
                let _ = hist.record((acked.elapsed().as_micros() as u64).max(1));
                break;
            }
            if acked.elapsed() > Duration::from_secs(60) {
                return Err(format!("{id} not searchable after 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Spread the writes over the refresh cycle instead of locking onto its phase.
        tokio::time::sleep(Duration::from_millis(7 + (i as u64 * 13) % 50)).await;
    }
    Ok(hist)
}
