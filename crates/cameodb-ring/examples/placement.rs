//! The scaling simulation of placement (SCALING.md): rings of 10, 100 and 1,000 members, a join
//! and a leave at each size, with three copies of every token.
//!
//! `cargo run --release -p cameodb-ring --example placement [-- sizes...]` prints a markdown
//! table: the share of all copies a join / leave streams next to the ideal, the fullest and
//! emptiest member's share as a multiple of the even share, how many peers each member shares
//! ranges with, and what computing the placement costs.

use std::time::Instant;

use cameodb_ring::Ring;
use cameodb_ring::sim::{balance, moved_fraction};

const RF: usize = 3;

fn members(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i:04}")).collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1000]
    } else {
        sizes
    };
    println!(
        "| members | ranges (RF {RF}) | join moves | ideal | leave moves | ideal | fullest member | emptiest member | peers per member | ring + ranges |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let ids = members(n);
        let started = Instant::now();
        let ring = Ring::new(&ids);
        let ranges = ring.replica_ranges(RF).len();
        let placement = started.elapsed();
        let mut grown = ids.clone();
        grown.push("joiner".into());
        let joined = Ring::new(&grown);
        // The member that leaves is one in the middle of the id order: any is alike.
        let shrunk: Vec<&String> = ids.iter().filter(|m| **m != ids[n / 2]).collect();
        let left = Ring::new(shrunk);
        let join = moved_fraction(&ring, &joined, RF);
        let leave = moved_fraction(&ring, &left, RF);
        let spread = balance(&ring, RF);
        println!(
            "| {n} | {ranges} | {:.2} % | {:.2} % | {:.2} % | {:.2} % | {:.3} × | {:.3} × | {}–{} | {:.0} ms |",
            join * 100.0,
            100.0 / (n + 1) as f64,
            leave * 100.0,
            100.0 / n as f64,
            spread.worst,
            spread.least,
            spread.min_peers,
            spread.max_peers,
            placement.as_secs_f64() * 1000.0,
        );
    }
}
