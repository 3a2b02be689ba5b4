#![no_main]
//! cargo fuzz target: see `cameodb_fuzz::bulk`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cameodb_fuzz::bulk(data));
