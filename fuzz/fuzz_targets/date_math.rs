#![no_main]
//! cargo fuzz target: see `cameodb_fuzz::date_math`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cameodb_fuzz::date_math(data));
