//! Raw tantivy in-process: CameoDB's own schema and JSON conversion, every core indexing, no
//! durability, one commit at the end. The upper bound for ingest.

use std::path::Path;
use std::time::Instant;

use cameodb_schema::fields as schema;
use cameodb_schema::mapping::Mapping;
use cameodb_storage::to_index_doc;
use cameodb_storage::{DocId, DocKey, Source, StoreConfig};
use tantivy::{Index, IndexWriter, TantivyDocument};

use super::Load;
use crate::corpus::Corpus;

pub fn bulk(corpus: &Corpus, dir: &Path) -> Result<Load, String> {
    bulk_mapped(corpus, dir, Mapping::default())
}

/// As [`bulk`], starting from `mapping` (an explicit one: the text-mapping rows).
pub fn bulk_mapped(corpus: &Corpus, dir: &Path, mut mapping: Mapping) -> Result<Load, String> {
    let (schema, fields) = schema::build();
    let index = Index::create_in_dir(dir, schema).map_err(|e| e.to_string())?;
    cameodb_schema::register_analyzers(
        index.tokenizers(),
        &mapping,
        &cameodb_schema::Analysis::default(),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget = StoreConfig::default()
        .writer_memory_bytes
        .max(cores * 15_000_000);
    let mut writer: IndexWriter<TantivyDocument> = index
        .writer_with_num_threads(cores, budget)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    for doc in &corpus.docs {
        let source = Source::from_slice(doc.raw.as_bytes()).map_err(|e| e.to_string())?;
        let key = DocKey::new(DocId::new(&doc.id).map_err(|e| e.to_string())?, None)
            .map_err(|e| e.to_string())?;
        let (converted, updated) = to_index_doc(
            &mapping,
            &key,
            source.as_map(),
            &cameodb_schema::Analysis::default(),
            &fields,
        )
        .map_err(|e| e.to_string())?;
        if let Some(updated) = updated {
            mapping = updated;
        }
        writer
            .add_document(converted.into_document())
            .map_err(|e| e.to_string())?;
    }
    writer.commit().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    Ok(Load {
        docs: corpus.docs.len(),
        bytes: corpus.bytes(),
        elapsed,
        disk: crate::server::disk_usage(dir),
    })
}
