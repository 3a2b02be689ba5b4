#![no_main]
//! cargo fuzz target: see `cameodb_fuzz::lucene`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cameodb_fuzz::lucene(data));
