//! The query behind `function_score` and `script_score`: the inner query's documents, each
//! rescored by functions of its field values (read from the `_exact` fast columns), its score
//! and the request's parameters. The math is plain functions, tested on their own; the
//! Query/Weight/Scorer only feed them values.

use std::collections::BTreeMap;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use tantivy::columnar::StrColumn;
use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::Term;
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use crate::expr::{Env, Expr, Val};
use crate::numeric_column::NumericColumn;

/// A numeric or date column of the `_exact` field (`_exact.<path>`); dates read as epoch
/// milliseconds.
#[derive(Clone, Debug)]
pub(crate) struct Column(pub String);

/// `field_value_factor`'s `modifier`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Modifier {
    None,
    Log,
    Log1p,
    Log2p,
    Ln,
    Ln1p,
    Ln2p,
    Square,
    Sqrt,
    Reciprocal,
}

impl Modifier {
    pub(crate) fn from_name(name: &str) -> Option<Modifier> {
        Some(match name {
            "none" => Modifier::None,
            "log" => Modifier::Log,
            "log1p" => Modifier::Log1p,
            "log2p" => Modifier::Log2p,
            "ln" => Modifier::Ln,
            "ln1p" => Modifier::Ln1p,
            "ln2p" => Modifier::Ln2p,
            "square" => Modifier::Square,
            "sqrt" => Modifier::Sqrt,
            "reciprocal" => Modifier::Reciprocal,
            _ => return None,
        })
    }

    fn apply(self, v: f64) -> f64 {
        match self {
            Modifier::None => v,
            Modifier::Log => v.log10(),
            Modifier::Log1p => (v + 1.0).log10(),
            Modifier::Log2p => (v + 2.0).log10(),
            Modifier::Ln => v.ln(),
            Modifier::Ln1p => v.ln_1p(),
            Modifier::Ln2p => (v + 2.0).ln(),
            Modifier::Square => v * v,
            Modifier::Sqrt => v.sqrt(),
            Modifier::Reciprocal => 1.0 / v,
        }
    }
}

/// The curve of a decay function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    Gauss,
    Exp,
    Linear,
}

/// How a decay function reads a field with several values (`multi_value_mode`): which distance
/// counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum MultiValue {
    Min,
    Max,
    Avg,
    Sum,
}

/// A decay function's parameters (numbers, or epoch milliseconds for dates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Decay {
    pub shape: Shape,
    pub origin: f64,
    pub scale: f64,
    pub offset: f64,
    pub decay: f64,
    pub mode: MultiValue,
}

impl Decay {
    /// The score of a document whose value is `distance` from the origin (offset applied).
    pub(crate) fn score(&self, distance: f64) -> f64 {
        let d = (distance - self.offset).max(0.0);
        match self.shape {
            // exp(-d² / 2σ²) with σ² = -scale² / (2 ln decay): `decay` at `scale`.
            Shape::Gauss => (d * d * self.decay.ln() / (self.scale * self.scale)).exp(),
            Shape::Exp => (self.decay.ln() / self.scale * d).exp(),
            Shape::Linear => {
                let s = self.scale / (1.0 - self.decay);
                ((s - d) / s).max(0.0)
            }
        }
    }

    fn of_values(&self, values: &[f64]) -> f64 {
        let distances = values.iter().map(|v| (v - self.origin).abs());
        let distance = match self.mode {
            MultiValue::Min => distances.fold(f64::INFINITY, f64::min),
            MultiValue::Max => distances.fold(0.0, f64::max),
            MultiValue::Sum => distances.sum(),
            MultiValue::Avg => distances.sum::<f64>() / values.len() as f64,
        };
        self.score(distance)
    }
}

/// What one function computes.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// Only its weight.
    Weight,
    FieldValue {
        column: Column,
        factor: f64,
        modifier: Modifier,
        missing: Option<f64>,
    },
    Script {
        expr: Expr,
        params: BTreeMap<String, Val>,
        /// `doc['name']` → its column.
        columns: Vec<(String, Column)>,
    },
    Random {
        seed: u64,
    },
    Decay {
        column: Column,
        decay: Decay,
    },
}

/// One function, with the filter that decides which documents it applies to.
#[derive(Debug)]
pub(crate) struct Function {
    pub filter: Option<Box<dyn Query>>,
    pub weight: f64,
    pub kind: Kind,
}

impl Clone for Function {
    fn clone(&self) -> Self {
        Function {
            filter: self.filter.as_ref().map(|f| f.box_clone()),
            weight: self.weight,
            kind: self.kind.clone(),
        }
    }
}

/// `score_mode`: how the applying functions' values combine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScoreMode {
    Multiply,
    Sum,
    Avg,
    First,
    Max,
    Min,
}

/// `boost_mode`: how the combined value and the query's score combine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BoostMode {
    Multiply,
    Replace,
    Sum,
    Avg,
    Max,
    Min,
}

/// Combines `(value, weight)` of the functions that apply; 1 when none does.
pub(crate) fn combine(mode: ScoreMode, applied: &[(f64, f64)], max_boost: f64) -> f64 {
    if applied.is_empty() {
        return 1.0_f64.min(max_boost);
    }
    let values = applied.iter().map(|(v, _)| *v);
    let combined = match mode {
        ScoreMode::Multiply => values.product(),
        ScoreMode::Sum => values.sum(),
        ScoreMode::Avg => {
            let weights: f64 = applied.iter().map(|(_, w)| *w).sum();
            values.sum::<f64>() / weights
        }
        ScoreMode::First => applied[0].0,
        ScoreMode::Max => values.fold(f64::NEG_INFINITY, f64::max),
        ScoreMode::Min => values.fold(f64::INFINITY, f64::min),
    };
    combined.min(max_boost)
}

/// The final score from the query's score and the functions' value.
pub(crate) fn boost(mode: BoostMode, query: f64, functions: f64) -> f64 {
    match mode {
        BoostMode::Multiply => query * functions,
        BoostMode::Replace => functions,
        BoostMode::Sum => query + functions,
        BoostMode::Avg => (query + functions) / 2.0,
        BoostMode::Max => query.max(functions),
        BoostMode::Min => query.min(functions),
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct FunctionScoreQuery {
    pub query: Box<dyn Query>,
    pub functions: Vec<Function>,
    pub score_mode: ScoreMode,
    pub boost_mode: BoostMode,
    pub max_boost: f64,
    pub min_score: Option<f64>,
}

impl Clone for FunctionScoreQuery {
    fn clone(&self) -> Self {
        FunctionScoreQuery {
            query: self.query.box_clone(),
            functions: self.functions.clone(),
            score_mode: self.score_mode,
            boost_mode: self.boost_mode,
            max_boost: self.max_boost,
            min_score: self.min_score,
        }
    }
}

impl Query for FunctionScoreQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let filters = self
            .functions
            .iter()
            .map(|f| {
                f.filter
                    .as_ref()
                    .map(|q| q.weight(EnableScoring::disabled_from_schema(scoring.schema())))
                    .transpose()
            })
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(FunctionScoreWeight {
            inner: self.query.weight(scoring)?,
            filters,
            query: self.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

struct FunctionScoreWeight {
    inner: Box<dyn Weight>,
    filters: Vec<Option<Box<dyn Weight>>>,
    query: FunctionScoreQuery,
}

/// All values of one document in one column.
type Values = Box<dyn Fn(DocId) -> Vec<f64> + Send + Sync>;

fn values_of(reader: &SegmentReader, column: &Column) -> Values {
    match NumericColumn::open(reader, &column.0) {
        None => Box::new(|_| Vec::new()),
        Some(values) => Box::new(move |doc| values.all(doc)),
    }
}

/// One function's side of a segment: its filter's scorer and the columns it reads.
struct SegmentFunction {
    filter: Option<Box<dyn Scorer>>,
    weight: f64,
    kind: Kind,
    columns: Vec<(String, Values)>,
    /// The `_id` column, read by `random_score`: ids are the same on every copy of a
    /// document, where sequence numbers are not, so the draw does not depend on the replica.
    ids: Option<StrColumn>,
}

impl Weight for FunctionScoreWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut functions = Vec::with_capacity(self.query.functions.len());
        for (function, filter) in self.query.functions.iter().zip(&self.filters) {
            let columns = match &function.kind {
                Kind::FieldValue { column, .. } | Kind::Decay { column, .. } => {
                    vec![(String::new(), values_of(reader, column))]
                }
                Kind::Script { columns, .. } => columns
                    .iter()
                    .map(|(name, column)| (name.clone(), values_of(reader, column)))
                    .collect(),
                _ => Vec::new(),
            };
            let ids = match function.kind {
                Kind::Random { .. } => reader
                    .fast_fields()
                    .str(cameodb_schema::fields::ID_FIELD)
                    .ok()
                    .flatten(),
                _ => None,
            };
            functions.push(SegmentFunction {
                filter: filter.as_ref().map(|w| w.scorer(reader, 1.0)).transpose()?,
                weight: function.weight,
                kind: function.kind.clone(),
                columns,
                ids,
            });
        }
        let mut scorer = FunctionScorer {
            inner: self.inner.scorer(reader, 1.0)?,
            functions,
            score_mode: self.query.score_mode,
            boost_mode: self.query.boost_mode,
            max_boost: self.query.max_boost,
            min_score: self.query.min_score,
            boost: f64::from(boost),
            current: None,
        };
        scorer.settle();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #({doc}) does not match"
            )));
        }
        let mut explanation = Explanation::new("function score, product of:", scorer.score());
        explanation.add_detail(self.inner.explain(reader, doc)?);
        Ok(explanation)
    }
}

struct FunctionScorer {
    inner: Box<dyn Scorer>,
    functions: Vec<SegmentFunction>,
    score_mode: ScoreMode,
    boost_mode: BoostMode,
    max_boost: f64,
    min_score: Option<f64>,
    boost: f64,
    /// The current document and its score, computed once.
    current: Option<(DocId, Score)>,
}

/// What a script reads for one document.
struct DocEnv<'a> {
    params: &'a BTreeMap<String, Val>,
    score: f64,
    doc: DocId,
    columns: &'a [(String, Values)],
}

impl Env for DocEnv<'_> {
    fn param(&self, name: &str) -> Option<Val> {
        self.params.get(name).copied()
    }

    fn score(&self) -> Option<f64> {
        Some(self.score)
    }

    fn doc(&self, field: &str) -> Option<Vec<f64>> {
        self.columns
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, values)| values(self.doc))
    }
}

/// A uniform draw in `[0, 1)` from `seed` and a document id: xxh3 is fixed by its
/// specification, so every node and every build draws the same value.
fn random_unit(seed: u64, id: &str) -> f64 {
    (xxh3_64_with_seed(id.as_bytes(), seed) >> 11) as f64 / (1u64 << 53) as f64
}

impl FunctionScorer {
    fn compute(&mut self, doc: DocId) -> Score {
        let query = f64::from(self.inner.score());
        let mut applied = Vec::with_capacity(self.functions.len());
        for function in &mut self.functions {
            if let Some(filter) = &mut function.filter {
                let at = if filter.doc() < doc {
                    filter.seek(doc)
                } else {
                    filter.doc()
                };
                if at != doc {
                    continue;
                }
            }
            let value = match &function.kind {
                Kind::Weight => 1.0,
                Kind::FieldValue {
                    factor,
                    modifier,
                    missing,
                    ..
                } => {
                    let first = function
                        .columns
                        .first()
                        .and_then(|(_, v)| v(doc).first().copied());
                    match first.or(*missing) {
                        Some(v) => modifier.apply(v * factor),
                        None => 1.0,
                    }
                }
                Kind::Script { expr, params, .. } => {
                    let env = DocEnv {
                        params,
                        score: query,
                        doc,
                        columns: &function.columns,
                    };
                    match expr.eval(&env) {
                        Ok(Val::Num(n)) if n.is_finite() => n.max(0.0),
                        _ => 0.0,
                    }
                }
                Kind::Random { seed } => {
                    let mut id = String::new();
                    if let Some(column) = &function.ids
                        && let Some(ord) = column.term_ords(doc).next()
                    {
                        // An unreadable ordinal leaves the id empty: the draw stays defined.
                        let _ = column.ord_to_str(ord, &mut id);
                    }
                    random_unit(*seed, &id)
                }
                Kind::Decay { decay, .. } => {
                    let values = function
                        .columns
                        .first()
                        .map(|(_, v)| v(doc))
                        .unwrap_or_default();
                    if values.is_empty() {
                        1.0
                    } else {
                        decay.of_values(&values)
                    }
                }
            };
            applied.push((value * function.weight, function.weight));
        }
        let functions = combine(self.score_mode, &applied, self.max_boost);
        let score = boost(self.boost_mode, query, functions) * self.boost;
        if score.is_finite() {
            score as Score
        } else {
            0.0
        }
    }

    /// Computes the current document's score, moving past those under `min_score`.
    fn settle(&mut self) -> DocId {
        loop {
            let doc = self.inner.doc();
            if doc == TERMINATED {
                self.current = None;
                return doc;
            }
            let score = self.compute(doc);
            if self.min_score.is_some_and(|min| f64::from(score) < min) {
                self.inner.advance();
                continue;
            }
            self.current = Some((doc, score));
            return doc;
        }
    }
}

impl DocSet for FunctionScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance();
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc() >= target {
            return self.doc();
        }
        self.inner.seek(target);
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.current.map_or(TERMINATED, |(doc, _)| doc)
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

impl Scorer for FunctionScorer {
    fn score(&mut self) -> Score {
        self.current.map_or(0.0, |(_, score)| score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decays_give_decay_at_scale_and_one_at_origin() {
        for shape in [Shape::Gauss, Shape::Exp, Shape::Linear] {
            let d = Decay {
                shape,
                origin: 0.0,
                scale: 10.0,
                offset: 2.0,
                decay: 0.5,
                mode: MultiValue::Min,
            };
            assert!((d.score(0.0) - 1.0).abs() < 1e-12, "{shape:?}");
            assert!((d.score(2.0) - 1.0).abs() < 1e-12, "{shape:?}");
            assert!((d.score(12.0) - 0.5).abs() < 1e-12, "{shape:?}");
            assert!(d.score(30.0) < 0.5);
            assert!((d.of_values(&[12.0, -2.0]) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn score_and_boost_modes_combine_as_elasticsearch_documents() {
        let applied = [(2.0, 2.0), (3.0, 1.0)];
        assert_eq!(combine(ScoreMode::Multiply, &applied, f64::MAX), 6.0);
        assert_eq!(combine(ScoreMode::Sum, &applied, 4.0), 4.0);
        assert_eq!(combine(ScoreMode::Avg, &applied, f64::MAX), 5.0 / 3.0);
        assert_eq!(combine(ScoreMode::First, &applied, f64::MAX), 2.0);
        assert_eq!(combine(ScoreMode::Min, &[], f64::MAX), 1.0);
        assert_eq!(boost(BoostMode::Replace, 7.0, 2.0), 2.0);
        assert_eq!(boost(BoostMode::Avg, 7.0, 3.0), 5.0);
        assert_eq!(Modifier::Log1p.apply(9.0), 1.0);
        assert!((random_unit(1, "a") - random_unit(1, "a")).abs() < f64::EPSILON);
        assert!((0.0..1.0).contains(&random_unit(7, "b")));
    }
}
