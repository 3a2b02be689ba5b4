//! The fixed tantivy schema every store uses.
//!
//! The schema never changes after an index is created: mappings route each JSON path to one of
//! these fields instead. Text fields get a dedicated slot field (own length norms, own analyzer
//! registered at open under the slot's tokenizer name) until slots run out; everything exact —
//! keywords, numbers, booleans, dates — goes into one fast JSON field keyed by path.

use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, JsonObjectOptions, NumericOptions, Schema,
    TextFieldIndexing, TextOptions,
};

/// Number of dedicated text fields. Text fields mapped beyond this share the overflow field.
pub const TEXT_SLOTS: usize = 32;
/// Tokenizer of the overflow text field.
pub const OVERFLOW_TOKENIZER: &str = "cameo_overflow";
/// Tantivy's built-in tokenizer that keeps a string as one token.
const RAW: &str = "raw";

/// Name of the document id field: indexed for `ids` queries, fast for reading ids of hits.
pub const ID_FIELD: &str = "_id";
/// Name of the field holding the encoded document key (see the storage crate): the unique term deletes target.
pub const KEY_FIELD: &str = "_key";
/// Name of the ring token field: fast, for token-range filters in the cluster.
pub const TOKEN_FIELD: &str = "_token";
/// Name of the field holding the sequence number of the write that produced the indexed
/// version: fast, so a hit's source is read from that exact version (snapshot reads).
pub const SEQ_FIELD: &str = "_seq";
/// Name of the field listing every path a document has a value for (for `exists`).
pub const FIELD_NAMES_FIELD: &str = "_field_names";
/// Name of the overflow JSON text field.
pub const TEXT_FIELD: &str = "_text";
/// Name of the fast JSON field holding keywords, numbers, booleans and dates by path.
pub const EXACT_FIELD: &str = "_exact";

/// Tokenizer name of text slot `slot`.
pub fn slot_tokenizer(slot: usize) -> String {
    format!("cameo_slot{slot}")
}

/// Tokenizer name of text slot `slot` at search time (its `search_analyzer`, or else the
/// same analyzer as at index time).
pub fn slot_search_tokenizer(slot: usize) -> String {
    format!("cameo_slot{slot}_search")
}

/// Handles to the schema's fields.
#[derive(Clone, Debug)]
pub struct Fields {
    /// See [`ID_FIELD`].
    pub id: Field,
    /// See [`KEY_FIELD`].
    pub key: Field,
    /// See [`TOKEN_FIELD`].
    pub token: Field,
    /// See [`SEQ_FIELD`].
    pub seq: Field,
    /// See [`FIELD_NAMES_FIELD`].
    pub field_names: Field,
    /// See [`TEXT_FIELD`].
    pub text: Field,
    /// See [`EXACT_FIELD`].
    pub exact: Field,
    /// The dedicated text fields, indexed by slot number.
    pub slots: Vec<Field>,
}

fn raw_text(fast: bool) -> TextOptions {
    let options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(RAW)
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    );
    if fast { options.set_fast(RAW) } else { options }
}

fn analyzed(tokenizer: &str) -> TextFieldIndexing {
    TextFieldIndexing::default()
        .set_tokenizer(tokenizer)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions)
}

/// Builds the schema and returns it with its field handles.
pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let id = builder.add_text_field(ID_FIELD, raw_text(true));
    let key = builder.add_bytes_field(KEY_FIELD, BytesOptions::default().set_indexed());
    let token = builder.add_u64_field(
        TOKEN_FIELD,
        NumericOptions::default().set_indexed().set_fast(),
    );
    let seq = builder.add_u64_field(SEQ_FIELD, NumericOptions::default().set_fast());
    let field_names = builder.add_text_field(FIELD_NAMES_FIELD, raw_text(false));
    let text = builder.add_json_field(
        TEXT_FIELD,
        JsonObjectOptions::default()
            .set_indexing_options(analyzed(OVERFLOW_TOKENIZER))
            .set_expand_dots_enabled(),
    );
    let exact = builder.add_json_field(
        EXACT_FIELD,
        JsonObjectOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(RAW)
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::Basic),
            )
            .set_fast(RAW)
            .set_expand_dots_enabled(),
    );
    let slots = (0..TEXT_SLOTS)
        .map(|slot| {
            let options =
                TextOptions::default().set_indexing_options(analyzed(&slot_tokenizer(slot)));
            builder.add_text_field(&format!("_slot{slot}"), options)
        })
        .collect();
    let fields = Fields {
        id,
        key,
        token,
        seq,
        field_names,
        text,
        exact,
        slots,
    };
    (builder.build(), fields)
}

impl Fields {
    /// The text field for a mapped text field's slot (the overflow field when it has none).
    pub fn text_field(&self, slot: Option<u16>) -> Option<Field> {
        slot.and_then(|s| self.slots.get(usize::from(s)).copied())
    }
}
