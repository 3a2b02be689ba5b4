#![no_main]
//! cargo fuzz target: see `cameodb_fuzz::query_dsl`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cameodb_fuzz::query_dsl(data));
