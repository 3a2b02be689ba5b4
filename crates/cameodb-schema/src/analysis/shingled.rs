//! The analyzers of a `search_as_you_type` field's subfields: the root field's analyzer with
//! shingles of one size (`<field>._2gram`, `._3gram`, …) or with shingles and edge n-grams
//! (`<field>._index_prefix`). They are named after the root analyzer, so the mapping stays
//! the only place that says which a subfield uses.

use super::Analysis;
use super::filters::TokenFilterSpec;
use super::pipeline::Pipeline;
use super::tokenizers::{MAX_TOKEN_LENGTH, TokenizerSpec};

/// Start of a subfield analyzer's name: `cameo_sayt:<kind>:<root analyzer>`.
pub const PREFIX: &str = "cameo_sayt:";

/// Longest edge n-gram of `_index_prefix` (Elasticsearch's).
const MAX_PREFIX_GRAM: usize = 20;

/// The analyzer of shingles of `size` words over `root`.
pub fn shingles_of(size: u8, root: &str) -> String {
    format!("{PREFIX}{size}:{root}")
}

/// The analyzer of the words and shingles up to `max` words over `root` (what a query on
/// `_index_prefix` is analyzed with).
pub fn up_to(max: u8, root: &str) -> String {
    format!("{PREFIX}upto{max}:{root}")
}

/// The analyzer of edge n-grams of shingles up to `max` words over `root`.
pub fn prefixes_of(max: u8, root: &str) -> String {
    format!("{PREFIX}prefix{max}:{root}")
}

impl Analysis {
    /// The pipeline a `cameo_sayt:` name stands for, if its root analyzer is one this index
    /// has as a pipeline.
    pub(crate) fn shingled(&self, name: &str) -> Option<Pipeline> {
        let (kind, root) = name.strip_prefix(PREFIX)?.split_once(':')?;
        let mut pipeline = match self.analyzers.get(root) {
            Some(pipeline) => pipeline.clone(),
            None if root == "standard" => Pipeline {
                char_filters: Vec::new(),
                tokenizer: TokenizerSpec::Standard {
                    max_len: MAX_TOKEN_LENGTH,
                },
                filters: vec![TokenFilterSpec::Lowercase],
            },
            None => super::builtin::language_pipeline(root, None)?,
        };
        let shingle = |min, max, output_unigrams| TokenFilterSpec::Shingle {
            min,
            max,
            output_unigrams,
            separator: " ".into(),
        };
        if let Some(max) = kind.strip_prefix("upto") {
            pipeline.filters.push(shingle(2, max.parse().ok()?, true));
            return Some(pipeline);
        }
        match kind.strip_prefix("prefix") {
            Some(max) => {
                let max: usize = max.parse().ok()?;
                pipeline.filters.push(shingle(2, max, true));
                pipeline.filters.push(TokenFilterSpec::Grams {
                    min: 1,
                    max: MAX_PREFIX_GRAM,
                    edge: true,
                    preserve_original: false,
                });
            }
            None => {
                let size: usize = kind.parse().ok()?;
                pipeline.filters.push(shingle(size, size, false));
            }
        }
        Some(pipeline)
    }
}
