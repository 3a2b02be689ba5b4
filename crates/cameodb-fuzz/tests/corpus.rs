//! Replays every input of the committed fuzz corpora (`fuzz/corpus/<target>/`, seeds plus
//! what the fuzzer found worth keeping) through the targets' bodies: a regression any of them
//! once caught fails here, on stable, in `./test.sh`.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .collect::<Vec<_>>();
    assert!(!entries.is_empty(), "no corpus in {}", dir.display());
    // The parsers are proven on a quarter of tokio's thread stack (see the query crate's
    // hostile tests); the corpus runs on the same.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            for entry in &entries {
                let data = std::fs::read(entry.path()).expect("read corpus file");
                run(&data);
            }
            entries.len()
        })
        .expect("spawn");
    let replayed = handle.join().expect("no input panicked");
    eprintln!("{target}: {replayed} inputs replayed");
}

#[test]
fn query_dsl_corpus() {
    replay("query_dsl", cameodb_fuzz::query_dsl);
}

#[test]
fn lucene_corpus() {
    replay("lucene", cameodb_fuzz::lucene);
}

#[test]
fn bulk_corpus() {
    replay("bulk", cameodb_fuzz::bulk);
}

#[test]
fn mapping_corpus() {
    replay("mapping", cameodb_fuzz::mapping);
}

#[test]
fn date_math_corpus() {
    replay("date_math", cameodb_fuzz::date_math);
}
