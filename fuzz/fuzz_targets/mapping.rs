#![no_main]
//! cargo fuzz target: see `cameodb_fuzz::mapping`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cameodb_fuzz::mapping(data));
