//! The breaker with the counting allocator installed, as in the binary: what a thread allocates
//! while entered is charged to the account, limits trip it, and the node gets everything back
//! when accounts end.

use std::alloc::System;
use std::sync::Arc;

use cameodb_memory::{Breaker, CountingAlloc, NodeBudget, check};

#[global_allocator]
static ALLOC: CountingAlloc<System> = CountingAlloc(System);

const MB: u64 = 1 << 20;

#[test]
fn allocations_while_entered_are_charged_and_given_back() {
    let node = NodeBudget::new(1024 * MB);
    let account = node.account("<test>", 512 * MB);
    let outside = vec![0u8; 8 * MB as usize];
    assert_eq!(account.total(), 0, "allocations outside are not counted");
    let inside = account.run(|| vec![1u8; 16 * MB as usize]);
    assert!(account.total() >= 16 * MB as i64, "{}", account.total());
    assert!(node.used() >= 16 * MB);
    account.run(|| drop(inside));
    assert!(account.total() < MB as i64, "{}", account.total());
    drop(outside);
    let held = account.run(|| vec![2u8; 4 * MB as usize]);
    drop(account);
    assert_eq!(node.used(), 0, "a finished request gives its charge back");
    drop(held);
}

#[test]
fn the_request_limit_trips_the_account_and_check_reports_it() {
    let node = NodeBudget::new(1024 * MB);
    let account = node.account("<agg>", 32 * MB);
    let err = account.run(|| {
        let mut kept = Vec::new();
        for _ in 0..64 {
            kept.push(vec![0u8; MB as usize]);
            if let Err(err) = check() {
                return err;
            }
        }
        panic!("never tripped");
    });
    assert_eq!(err.breaker, Breaker::Request);
    assert_eq!(err.label, "<agg>");
    assert!(
        err.to_string()
            .contains("[request] Data too large, data for [<agg>]")
    );
    assert!(err.to_string().contains("indices.breaker.request.limit"));
    assert!(account.check().is_err(), "tripping is sticky");
    assert_eq!(node.trips(), 1);
    assert!(check().is_ok(), "outside the account nothing is tripped");
}

#[test]
fn accounts_together_trip_the_node_limit() {
    let node = NodeBudget::new(48 * MB);
    let first = node.account("<a>", 40 * MB);
    let second = node.account("<b>", 40 * MB);
    let held = first.run(|| vec![0u8; 30 * MB as usize]);
    assert!(first.check().is_ok());
    let err = second
        .run(|| {
            let _more = vec![0u8; 30 * MB as usize];
            check()
        })
        .expect_err("the node is over its limit");
    assert_eq!(err.breaker, Breaker::Node);
    assert!(err.to_string().starts_with("[parent] Data too large"));
    drop(held);
    drop(first);
    drop(second);
    assert_eq!(node.used(), 0);
}

#[test]
fn reservations_are_checked_up_front_and_released() {
    let node = NodeBudget::new(100 * MB);
    let a = node.account("<http_request>", 60 * MB);
    assert!(a.reserve(50 * MB).is_ok());
    assert_eq!(
        a.reserve(20 * MB).map_err(|e| e.breaker),
        Err(Breaker::Request)
    );
    let b = node.account("<http_request>", 60 * MB);
    assert_eq!(
        b.reserve(60 * MB).map_err(|e| e.breaker),
        Err(Breaker::Node)
    );
    assert_eq!(
        node.used(),
        50 * MB,
        "a refused reservation reserves nothing"
    );
    a.release(50 * MB);
    assert!(b.reserve(60 * MB).is_ok());
    drop(b);
    drop(a);
    assert_eq!(node.used(), 0);
}

#[test]
fn nested_accounts_restore_the_outer_one_and_threads_are_separate() {
    let node = NodeBudget::new(1024 * MB);
    let outer = node.account("<outer>", 512 * MB);
    let inner = node.account("<inner>", 512 * MB);
    let (a, b) = outer.run(|| {
        let b = inner.run(|| vec![0u8; 4 * MB as usize]);
        let a = vec![0u8; 2 * MB as usize];
        (a, b)
    });
    assert!(inner.total() >= 4 * MB as i64);
    assert!(
        (2 * MB as i64..4 * MB as i64).contains(&outer.total()),
        "{}",
        outer.total()
    );
    let other = Arc::clone(&outer);
    let c = std::thread::spawn(move || other.run(|| vec![0u8; 8 * MB as usize]))
        .join()
        .expect("thread");
    assert!(outer.total() >= 10 * MB as i64);
    drop((a, b, c));
}

#[test]
fn a_json_parse_stops_at_the_limit() {
    let node = NodeBudget::new(1024 * MB);
    let account = node.account("<http_request>", 16 * MB);
    // 2 bytes of input per element, far more per parsed element.
    let body = format!("[{}1]", "1,".repeat(4 << 20));
    let result = account.run(|| cameodb_memory::json::from_slice(body.as_bytes()));
    match result {
        Err(cameodb_memory::json::JsonError::Breaker(err)) => {
            assert_eq!(err.breaker, Breaker::Request)
        }
        other => panic!("expected the breaker, got {:?}", other.map(|_| "a value")),
    }
    assert!(
        account.total() < 64 * MB as i64,
        "stopped near the limit, not after the whole parse: {}",
        account.total()
    );
    let smaller = format!("[{}1]", "1,".repeat(1 << 20));
    let fine = NodeBudget::new(1024 * MB).account("<http_request>", 512 * MB);
    let value = fine
        .run(|| cameodb_memory::json::from_slice(smaller.as_bytes()))
        .expect("within the limit");
    assert_eq!(value.as_array().map(Vec::len), Some((1 << 20) + 1));
}

#[test]
fn the_node_limit_also_applies_to_the_process_resident_memory() {
    // Far below what any process holds: once sampled, every allocating account trips.
    let node = NodeBudget::new(MB);
    node.watch_process_memory(std::time::Duration::from_millis(5));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while node.resident() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(node.resident() > MB, "sampled {}", node.resident());
    let account = node.account("<test>", 512 * MB);
    let err = account
        .run(|| {
            let _small: Vec<u8> = Vec::with_capacity(64);
            check()
        })
        .expect_err("the process is over the node limit");
    assert_eq!(err.breaker, Breaker::Node);
    assert!(err.wanted >= node.resident() / 2);
    assert_eq!(
        node.account("<test>", 512 * MB)
            .reserve(1)
            .map_err(|e| e.breaker),
        Err(Breaker::Node)
    );
}
