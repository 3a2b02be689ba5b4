//! Text analysis: the built-in analyzers by their Elasticsearch names, and an index's own
//! analyzers, tokenizers, token filters, char filters and normalizers from
//! `settings.analysis`, registered per text slot.

mod builtin;
mod char_filters;
mod filters;
mod languages;
mod mapped;
mod params;
mod pipeline;
pub mod shingled;
mod synonyms;
mod tokenizers;
mod word_parts;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenizerManager};

pub use builtin::{ANALYZERS, analyzer, is_builtin};
use char_filters::CharFilter;
use filters::TokenFilterSpec;
use params::{Params, invalid};
pub use pipeline::Pipeline;
use tokenizers::TokenizerSpec;
pub use tokenizers::{
    AnalysisLimits, MAX_EDGE_GRAM, MAX_NGRAM_DIFF, MAX_SHINGLE_DIFF, MAX_TOKEN_LENGTH,
};

use crate::error::Result;
use crate::fields::{OVERFLOW_TOKENIZER, TEXT_SLOTS, slot_search_tokenizer, slot_tokenizer};
use crate::mapping::{FieldMapping, FieldType, Mapping};

/// Most components (analyzers, tokenizers, filters, char filters, normalizers together) one
/// index may define.
pub const MAX_COMPONENTS: usize = 1000;
/// Most filters (or char filters) one analyzer may chain.
pub const MAX_CHAIN: usize = 64;

/// Filters a normalizer may use: those that work on a whole value character by character
/// (Elasticsearch's rule — a normalizer yields exactly one token).
const NORMALIZER_FILTERS: &[&str] = &["lowercase", "uppercase", "asciifolding", "elision", "trim"];

/// An index's analysis settings, checked and ready to build analyzers from.
#[derive(Clone, Default)]
pub struct Analysis {
    /// Analyzers by name, built.
    analyzers: BTreeMap<String, Pipeline>,
    /// Normalizers by name, built (a keyword tokenizer and character-level filters).
    normalizers: BTreeMap<String, Pipeline>,
    /// The definitions, to build one-off analyzers for `_analyze` that name them.
    defs: Arc<Defs>,
    /// The index's bounds on components, for one-off ones too.
    limits: AnalysisLimits,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("analyzers", &self.analyzers.keys().collect::<Vec<_>>())
            .field("normalizers", &self.normalizers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The component definitions of `settings.analysis`, by kind and name.
#[derive(Default)]
struct Defs {
    tokenizer: Map<String, Value>,
    filter: Map<String, Value>,
    char_filter: Map<String, Value>,
}

/// How `_analyze` names an analysis chain: an analyzer, a normalizer, or ad-hoc components.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeChain {
    pub analyzer: Option<String>,
    pub normalizer: Option<String>,
    pub tokenizer: Option<Value>,
    pub filters: Vec<Value>,
    pub char_filters: Vec<Value>,
}

/// One section of `settings.analysis` (`filter`, `analyzer`, …), empty when absent.
fn section(analysis: &Map<String, Value>, key: &str) -> Result<Map<String, Value>> {
    match analysis.get(key) {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(other) => Err(invalid(format!(
            "[index.analysis.{key}] must be an object, got [{other}]"
        ))),
    }
}

impl Analysis {
    /// Parses and checks `settings.analysis` (`{"analyzer": {...}, "filter": {...}, ...}`):
    /// every definition is built once, so a bad one is refused before the index exists.
    pub fn from_es_json(json: &Value, limits: AnalysisLimits) -> Result<Analysis> {
        let object = json
            .as_object()
            .ok_or_else(|| invalid(format!("[index.analysis] must be an object, got [{json}]")))?;
        if let Some(key) = object.keys().find(|k| {
            ![
                "analyzer",
                "tokenizer",
                "filter",
                "char_filter",
                "normalizer",
            ]
            .contains(&k.as_str())
        }) {
            return Err(invalid(format!(
                "unknown setting [index.analysis.{key}] please check that any required plugins are installed, or check the breaking changes documentation for removed settings"
            )));
        }
        let defs = Defs {
            tokenizer: section(object, "tokenizer")?,
            filter: section(object, "filter")?,
            char_filter: section(object, "char_filter")?,
        };
        let analyzer_defs = section(object, "analyzer")?;
        let normalizer_defs = section(object, "normalizer")?;
        let count = defs.tokenizer.len()
            + defs.filter.len()
            + defs.char_filter.len()
            + analyzer_defs.len()
            + normalizer_defs.len();
        if count > MAX_COMPONENTS {
            return Err(invalid(format!(
                "[index.analysis] defines {count} components, more than the limit of [{MAX_COMPONENTS}]"
            )));
        }
        let mut analysis = Analysis {
            defs: Arc::new(defs),
            limits,
            ..Analysis::default()
        };
        // Every component must build on its own, used or not (as Elasticsearch checks them).
        for (name, def) in &analysis.defs.tokenizer {
            TokenizerSpec::define(name, def, &limits)?;
        }
        for (name, def) in &analysis.defs.char_filter {
            CharFilter::define(name, def)?;
        }
        for (name, def) in &analysis.defs.filter {
            TokenFilterSpec::define(
                name,
                def,
                &mut |rule| rule.split_whitespace().map(str::to_string).collect(),
                &limits,
            )?;
        }
        for (name, def) in &analyzer_defs {
            let built = analysis.define_analyzer(name, def)?;
            analysis.analyzers.insert(name.clone(), built);
        }
        for (name, def) in &normalizer_defs {
            let built = analysis.define_normalizer(name, def)?;
            analysis.normalizers.insert(name.clone(), built);
        }
        Ok(analysis)
    }

    /// True when `name` is an analyzer this index can use (its own or a built-in one).
    pub fn has_analyzer(&self, name: &str) -> bool {
        self.analyzers.contains_key(name) || is_builtin(name) || self.shingled(name).is_some()
    }

    /// True when `name` is a normalizer this index can use.
    pub fn has_normalizer(&self, name: &str) -> bool {
        self.normalizers.contains_key(name) || name == "lowercase"
    }

    /// The analyzer called `name`, if this index has it.
    pub fn analyzer(&self, name: &str) -> Option<TextAnalyzer> {
        match self.analyzers.get(name) {
            Some(pipeline) => Some(TextAnalyzer::from(pipeline.clone())),
            None if name.starts_with(shingled::PREFIX) => {
                self.shingled(name).map(TextAnalyzer::from)
            }
            None => is_builtin(name).then(|| analyzer(name)),
        }
    }

    /// The normalizer called `name`, if this index has it.
    pub fn normalizer(&self, name: &str) -> Option<TextAnalyzer> {
        if let Some(pipeline) = self.normalizers.get(name) {
            return Some(TextAnalyzer::from(pipeline.clone()));
        }
        (name == "lowercase").then(|| {
            TextAnalyzer::from(Pipeline {
                char_filters: Vec::new(),
                tokenizer: TokenizerSpec::Keyword,
                filters: vec![TokenFilterSpec::Lowercase],
            })
        })
    }

    /// Checks that every analyzer and normalizer `mapping` names exists here.
    pub fn check(&self, mapping: &Mapping) -> Result<()> {
        for (path, field) in &mapping.properties {
            self.check_field(path, field)?;
            for (name, sub) in &field.fields {
                self.check_field(&format!("{path}.{name}"), sub)?;
            }
        }
        Ok(())
    }

    fn check_field(&self, path: &str, field: &FieldMapping) -> Result<()> {
        for name in [&field.analyzer, &field.search_analyzer]
            .into_iter()
            .flatten()
        {
            if !self.has_analyzer(name) {
                return Err(crate::SchemaError::InvalidMapping {
                    reason: format!("analyzer [{name}] has not been configured in mappings"),
                });
            }
        }
        if field.field_type == FieldType::Text && field.slot.is_none() && field.analyzer.is_some() {
            return Err(crate::SchemaError::InvalidMapping {
                reason: format!(
                    "field [{path}] cannot have its own analyzer: the index already has [{TEXT_SLOTS}] text fields with their own analysis, the most one index holds"
                ),
            });
        }
        if let Some(name) = &field.normalizer
            && !self.has_normalizer(name)
        {
            return Err(crate::SchemaError::InvalidMapping {
                reason: format!("normalizer [{name}] not found for field [{path}]"),
            });
        }
        Ok(())
    }

    /// The tokens `text` yields through `chain` (the `_analyze` API).
    pub fn analyze(&self, chain: &AnalyzeChain, text: &str) -> Result<Vec<Token>> {
        let mut analyzer = if let Some(name) = &chain.analyzer {
            self.analyzer(name)
                .ok_or_else(|| invalid(format!("failed to find analyzer [{name}]")))?
        } else if let Some(name) = &chain.normalizer {
            self.normalizer(name)
                .ok_or_else(|| invalid(format!("failed to find normalizer [{name}]")))?
        } else if chain.tokenizer.is_some()
            || !chain.filters.is_empty()
            || !chain.char_filters.is_empty()
        {
            let tokenizer = chain
                .tokenizer
                .clone()
                .unwrap_or_else(|| Value::String("keyword".into()));
            TextAnalyzer::from(self.build(
                "_analyze",
                &tokenizer,
                &chain.char_filters,
                &chain.filters,
            )?)
        } else {
            analyzer("standard")
        };
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().clone());
        }
        Ok(out)
    }

    fn define_analyzer(&self, name: &str, def: &Value) -> Result<Pipeline> {
        let object = def
            .as_object()
            .ok_or_else(|| invalid(format!("analyzer [{name}] must be an object")))?;
        let params = Params::new(format!("analyzer [{name}]"), object);
        let kind = params.string("type")?;
        let what = params.what().to_string();
        let pipeline = match kind.as_deref() {
            None | Some("custom") => {
                let tokenizer = params.raw("tokenizer").cloned().ok_or_else(|| {
                    invalid(format!(
                        "analyzer [{name}] must specify either an analyzer type, or a tokenizer"
                    ))
                })?;
                let filters = list_param(&params, "filter")?;
                let char_filters = list_param(&params, "char_filter")?;
                params.usize_or("position_increment_gap", 100, usize::MAX)?;
                self.build(name, &tokenizer, &char_filters, &filters)?
            }
            Some(kind) => {
                let built = builtin::configured(kind, &params)?.ok_or_else(|| {
                    invalid(format!("Unknown analyzer type [{kind}] for [{name}]"))
                })?;
                params.usize_or("position_increment_gap", 100, usize::MAX)?;
                built
            }
        };
        params
            .finish()
            .map_err(|e| invalid(format!("{e} ({what})")))?;
        Ok(pipeline)
    }

    fn define_normalizer(&self, name: &str, def: &Value) -> Result<Pipeline> {
        let object = def
            .as_object()
            .ok_or_else(|| invalid(format!("normalizer [{name}] must be an object")))?;
        let params = Params::new(format!("normalizer [{name}]"), object);
        if let Some(kind) = params.string("type")?
            && kind != "custom"
        {
            return Err(invalid(format!(
                "Unknown normalizer type [{kind}] for [{name}]"
            )));
        }
        let filters = list_param(&params, "filter")?;
        let char_filters = list_param(&params, "char_filter")?;
        params.finish()?;
        for filter in &filters {
            let kind = match filter {
                Value::String(s) => self
                    .defs
                    .filter
                    .get(s)
                    .and_then(|d| d.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or(s)
                    .to_string(),
                other => other
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            if !NORMALIZER_FILTERS.contains(&kind.as_str()) {
                return Err(invalid(format!(
                    "Custom normalizer [{name}] may not use filter [{kind}]: only {} are allowed",
                    NORMALIZER_FILTERS.join(", ")
                )));
            }
        }
        self.build(
            name,
            &Value::String("keyword".into()),
            &char_filters,
            &filters,
        )
    }

    /// A pipeline from a tokenizer and filter lists, each a name (the index's own definitions
    /// first, then the built-in ones) or an inline definition.
    fn build(
        &self,
        name: &str,
        tokenizer: &Value,
        char_filters: &[Value],
        filters: &[Value],
    ) -> Result<Pipeline> {
        if filters.len() > MAX_CHAIN || char_filters.len() > MAX_CHAIN {
            return Err(invalid(format!(
                "analyzer [{name}] chains more than [{MAX_CHAIN}] filters"
            )));
        }
        let tokenizer = match tokenizer {
            Value::String(t) => match self.defs.tokenizer.get(t) {
                Some(def) => TokenizerSpec::define(t, def, &self.limits)?,
                None => TokenizerSpec::builtin(t).ok_or_else(|| {
                    invalid(format!(
                        "failed to find tokenizer under name [{t}] for analyzer [{name}]"
                    ))
                })?,
            },
            def @ Value::Object(_) => {
                TokenizerSpec::define("_anonymous_tokenizer", def, &self.limits)?
            }
            other => {
                return Err(invalid(format!(
                    "tokenizer of analyzer [{name}] must be a name or an object, got [{other}]"
                )));
            }
        };
        let mut pipeline = Pipeline {
            char_filters: Vec::new(),
            tokenizer,
            filters: Vec::new(),
        };
        for filter in char_filters {
            let built = match filter {
                Value::String(f) => match self.defs.char_filter.get(f) {
                    Some(def) => CharFilter::define(f, def)?,
                    None => CharFilter::builtin(f).ok_or_else(|| {
                        invalid(format!(
                            "failed to find char_filter under name [{f}] for analyzer [{name}]"
                        ))
                    })?,
                },
                def => CharFilter::define("_anonymous_char_filter", def)?,
            };
            pipeline.char_filters.push(built);
        }
        for filter in filters {
            // Synonym rules are analyzed by the chain so far (without char filters).
            let mut before = Pipeline {
                char_filters: Vec::new(),
                tokenizer: pipeline.tokenizer.clone(),
                filters: pipeline.filters.clone(),
            };
            let mut analyze_rule = |rule: &str| -> Vec<String> {
                before.tokens(rule).into_iter().map(|t| t.text).collect()
            };
            let built = match filter {
                Value::String(f) => match self.defs.filter.get(f) {
                    Some(def) => TokenFilterSpec::define(f, def, &mut analyze_rule, &self.limits)?,
                    None => TokenFilterSpec::builtin(f).ok_or_else(|| {
                        invalid(format!(
                            "failed to find filter under name [{f}] for analyzer [{name}]"
                        ))
                    })?,
                },
                def => TokenFilterSpec::define(
                    "_anonymous_filter",
                    def,
                    &mut analyze_rule,
                    &self.limits,
                )?,
            };
            pipeline.filters.push(built);
        }
        Ok(pipeline)
    }
}

/// A parameter holding one component or a list of them.
fn list_param(params: &Params<'_>, key: &'static str) -> Result<Vec<Value>> {
    match params.raw(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_string()))
            .collect()),
        Some(other) => Err(invalid(format!(
            "[{key}] of {} must be a list, got [{other}]",
            params.what()
        ))),
    }
}

/// The analyzer name of every text slot under `mapping` for indexing and for searching
/// (standard for unassigned slots).
pub fn slot_analyzers(mapping: &Mapping) -> Vec<(&str, &str)> {
    let mut names = vec![("standard", "standard"); TEXT_SLOTS];
    for field in mapping.properties.values() {
        for f in std::iter::once(field).chain(field.fields.values()) {
            if let (FieldType::Text, Some(slot)) = (f.field_type, f.slot)
                && let Some(name) = names.get_mut(usize::from(slot))
            {
                let index = f.analyzer.as_deref().unwrap_or("standard");
                *name = (index, f.search_analyzer.as_deref().unwrap_or(index));
            }
        }
    }
    names
}

/// Tokenizer name under which normalizer `name` is registered.
pub fn normalizer_tokenizer(name: &str) -> String {
    format!("cameo_normalizer_{name}")
}

/// Registers every text slot's index and search analyzers according to `mapping` and
/// `analysis`, the overflow field's, and the normalizers the mapping uses.
pub fn register(tokenizers: &TokenizerManager, mapping: &Mapping, analysis: &Analysis) {
    for (slot, (index, search)) in slot_analyzers(mapping).into_iter().enumerate() {
        let build = |name: &str| {
            analysis
                .analyzer(name)
                .unwrap_or_else(|| analyzer("standard"))
        };
        tokenizers.register(&slot_tokenizer(slot), build(index));
        tokenizers.register(&slot_search_tokenizer(slot), build(search));
    }
    tokenizers.register(OVERFLOW_TOKENIZER, analyzer("standard"));
    register_normalizers(tokenizers, mapping, analysis);
}

/// Registers the normalizers `mapping` uses, under [`normalizer_tokenizer`] names.
pub fn register_normalizers(tokenizers: &TokenizerManager, mapping: &Mapping, analysis: &Analysis) {
    for field in mapping.properties.values() {
        for f in std::iter::once(field).chain(field.fields.values()) {
            if let Some(name) = &f.normalizer
                && let Some(normalizer) = analysis.normalizer(name)
            {
                tokenizers.register(&normalizer_tokenizer(name), normalizer);
            }
        }
    }
}

/// `text` through a normalizer: its tokens' texts joined (a normalizer yields one).
pub fn normalize(normalizer: &mut TextAnalyzer, text: &str) -> String {
    let mut stream = normalizer.token_stream(text);
    let mut out = String::new();
    while stream.advance() {
        out.push_str(&stream.token().text);
    }
    out
}

#[cfg(test)]
mod tests;
