//! Cluster-wide term statistics, so a search over several nodes scores exactly like one node
//! holding every document (Elasticsearch's `dfs_query_then_fetch`): a first round gathers each
//! node's document count, per-field token counts and the document frequency of every query
//! term; the sums are handed to every node's scorer in the second round.
//!
//! Statistics are keyed by mapped path, not by tantivy field: text slots are assigned in the
//! order a node first saw each field, so slot 3 may be `title` on one node and `plot` on another.

use std::collections::{BTreeMap, HashMap};

use cameodb_schema::mapping::Mapping;
use cameodb_storage::Store;
use serde::{Deserialize, Serialize};
use tantivy::query::{Bm25StatisticsProvider, Query};
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

use crate::error::SearchError;

/// One index's statistics, summed over the nodes that answered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IndexStats {
    /// Documents (tantivy's `max_doc` sum, as its own scorer counts them).
    pub docs: u64,
    /// Tokens per field key.
    pub tokens: BTreeMap<String, u64>,
    /// Document frequency per term key.
    pub doc_freqs: BTreeMap<String, u64>,
}

impl IndexStats {
    /// Adds another node's statistics.
    pub fn add(&mut self, other: &IndexStats) {
        self.docs += other.docs;
        for (key, n) in &other.tokens {
            *self.tokens.entry(key.clone()).or_default() += n;
        }
        for (key, n) in &other.doc_freqs {
            *self.doc_freqs.entry(key.clone()).or_default() += n;
        }
    }
}

/// Statistics per index name.
pub type ClusterStats = BTreeMap<String, IndexStats>;

/// Names fields the same way on every node.
pub struct FieldKeys {
    /// Path of each text slot on this node.
    slots: HashMap<Field, String>,
    /// Schema name of every other field.
    names: HashMap<Field, String>,
}

impl FieldKeys {
    /// The keys of `store`'s fields under `mapping`.
    pub fn new(store: &Store, mapping: &Mapping) -> FieldKeys {
        let fields = store.fields();
        let mut slots = HashMap::new();
        let mut slot_field = |slot: Option<u16>, path: String| {
            if let Some(field) = slot.and_then(|s| fields.slots.get(usize::from(s))) {
                slots.insert(*field, path);
            }
        };
        for (path, field) in &mapping.properties {
            slot_field(field.slot, path.clone());
            for (sub, multi) in &field.fields {
                slot_field(multi.slot, format!("{path}.{sub}"));
            }
        }
        let schema = store.index().schema();
        let names = schema
            .fields()
            .map(|(field, entry)| (field, entry.name().to_string()))
            .collect();
        FieldKeys { slots, names }
    }

    /// The key of `field`.
    pub fn field(&self, field: Field) -> String {
        match self.slots.get(&field) {
            Some(path) => format!("slot:{path}"),
            None => self.names.get(&field).cloned().unwrap_or_default(),
        }
    }

    /// The key of `term`.
    pub fn term(&self, term: &Term) -> String {
        let mut key = self.field(term.field());
        key.push('\u{1}');
        for byte in term.serialized_value_bytes() {
            key.push_str(&format!("{byte:02x}"));
        }
        key
    }
}

/// This node's statistics for `query` on one index.
pub fn collect(
    store: &Store,
    searcher: &Searcher,
    query: &dyn Query,
) -> Result<IndexStats, SearchError> {
    let keys = FieldKeys::new(store, &store.mapping());
    let mut terms: Vec<Term> = Vec::new();
    query.query_terms(&mut |term, _| terms.push(term.clone()));
    let mut stats = IndexStats {
        docs: Bm25StatisticsProvider::total_num_docs(searcher)?,
        ..IndexStats::default()
    };
    for term in &terms {
        let field_key = keys.field(term.field());
        if let std::collections::btree_map::Entry::Vacant(slot) = stats.tokens.entry(field_key) {
            slot.insert(Bm25StatisticsProvider::total_num_tokens(
                searcher,
                term.field(),
            )?);
        }
        stats
            .doc_freqs
            .insert(keys.term(term), searcher.doc_freq(term)?);
    }
    Ok(stats)
}

/// Scores with cluster-wide statistics, falling back to this node's for anything the first
/// round did not see.
pub struct GlobalScoring<'a> {
    /// The summed statistics.
    pub stats: &'a IndexStats,
    /// This node's searcher.
    pub local: &'a Searcher,
    /// Field naming.
    pub keys: FieldKeys,
}

impl Bm25StatisticsProvider for GlobalScoring<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        match self.stats.tokens.get(&self.keys.field(field)) {
            Some(n) => Ok(*n),
            None => Bm25StatisticsProvider::total_num_tokens(self.local, field),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        let local = Bm25StatisticsProvider::total_num_docs(self.local)?;
        Ok(self.stats.docs.max(local))
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        let freq = match self.stats.doc_freqs.get(&self.keys.term(term)) {
            Some(n) => *n,
            None => self.local.doc_freq(term)?,
        };
        // tantivy requires doc_freq <= docs; documents may have arrived between the rounds.
        Ok(freq.min(self.total_num_docs()?))
    }
}
