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
use crate::tokens::{TokenRanges, token_column};
use tantivy::DocSet;

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
    /// These statistics summed over nodes that each hold `copies` copies' worth of every
    /// document (every holder of a replicated index answered for all it holds): divided back
    /// to one copy's.
    pub fn one_copy_of(&mut self, copies: u64) {
        let copies = copies.max(1);
        self.docs /= copies;
        for n in self.tokens.values_mut().chain(self.doc_freqs.values_mut()) {
            *n /= copies;
        }
    }

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

/// This node's statistics for `query` on one index: over every document it holds, or with
/// `ranges` over the documents in those token ranges only (see [`ranged`]).
pub fn collect(
    store: &Store,
    searcher: &Searcher,
    query: &dyn Query,
    ranges: Option<&TokenRanges>,
) -> Result<IndexStats, SearchError> {
    let keys = FieldKeys::new(store, &store.mapping());
    let mut terms: Vec<Term> = Vec::new();
    query.query_terms(&mut |term, _| terms.push(term.clone()));
    if let Some(ranges) = ranges {
        return ranged(searcher, &keys, &terms, ranges);
    }
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

/// Statistics over the documents whose token is in `ranges`: the live documents and each
/// term's document frequency are counted exactly; a field's token count is the field's total
/// scaled by the share of its length (as tantivy's field norms record it) in the ranges —
/// field norms round long fields, so scaling keeps their rounding from adding up.
fn ranged(
    searcher: &Searcher,
    keys: &FieldKeys,
    terms: &[Term],
    ranges: &TokenRanges,
) -> Result<IndexStats, SearchError> {
    let mut fields: Vec<Field> = terms.iter().map(Term::field).collect();
    fields.sort_unstable();
    fields.dedup();
    let mut docs = 0u64;
    // Per field: (field-norm sum inside the ranges, field-norm sum overall).
    let mut norms: Vec<(u64, u64)> = vec![(0, 0); fields.len()];
    let mut doc_freqs: Vec<u64> = vec![0; terms.len()];
    for segment in searcher.segment_readers() {
        let column = token_column(segment)?;
        let alive = |doc: u32| segment.alive_bitset().is_none_or(|a| a.is_alive(doc));
        let inside = |doc: u32| column.first(doc).is_some_and(|t| ranges.contains(t));
        let readers = fields
            .iter()
            .map(|f| segment.get_fieldnorms_reader(*f))
            .collect::<tantivy::Result<Vec<_>>>()?;
        for doc in 0..segment.max_doc() {
            if !alive(doc) {
                continue;
            }
            let counted = inside(doc);
            docs += u64::from(counted);
            for (reader, sums) in readers.iter().zip(norms.iter_mut()) {
                let norm = u64::from(reader.fieldnorm(doc));
                sums.1 += norm;
                if counted {
                    sums.0 += norm;
                }
            }
        }
        for (term, freq) in terms.iter().zip(doc_freqs.iter_mut()) {
            let index = segment.inverted_index(term.field())?;
            let Some(mut postings) = index
                .read_postings(term, tantivy::schema::IndexRecordOption::Basic)
                .map_err(tantivy::TantivyError::from)?
            else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED {
                *freq += u64::from(alive(doc) && inside(doc));
                doc = postings.advance();
            }
        }
    }
    let mut stats = IndexStats {
        docs,
        ..IndexStats::default()
    };
    for (field, (inside, overall)) in fields.iter().zip(norms) {
        let total = Bm25StatisticsProvider::total_num_tokens(searcher, *field)?;
        let share = if overall == 0 {
            0.0
        } else {
            inside as f64 / overall as f64
        };
        stats
            .tokens
            .insert(keys.field(*field), (total as f64 * share).round() as u64);
    }
    for (term, freq) in terms.iter().zip(doc_freqs) {
        stats.doc_freqs.insert(keys.term(term), freq);
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
