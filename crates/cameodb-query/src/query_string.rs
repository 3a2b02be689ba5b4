//! Lucene query syntax (`query_string` and the `q=` parameter), parsed by tantivy's grammar and
//! translated under the mapping.

use std::ops::Bound;

use serde_json::Value;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhraseQuery, Query,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{IndexRecordOption, Term};
use tantivy_query_grammar::{
    Delimiter, UserInputAst, UserInputBound, UserInputLeaf, UserInputLiteral,
};

use crate::error::{QueryError, parsing};
use crate::fields::{QueryContext, Target, bound_term, exact_term, text_terms};
use crate::limits::{MAX_NESTED_DEPTH, lucene_nesting, too_deep};

type Boxed = Box<dyn Query>;

/// Translates a Lucene-syntax query. `fields` are the default fields (all text and keyword
/// fields when `None`); `default_and` makes bare terms required instead of optional.
pub fn query_string(
    text: &str,
    fields: Option<&[String]>,
    default_and: bool,
    ctx: &QueryContext<'_>,
) -> Result<Boxed, QueryError> {
    // tantivy's grammar recurses once per group without a limit of its own: refuse deep input
    // before it runs.
    if lucene_nesting(text) > MAX_NESTED_DEPTH {
        return Err(too_deep());
    }
    let ast = tantivy_query_grammar::parse_query(text)
        .map_err(|_| parsing(format!("Failed to parse query [{text}]")))?;
    let defaults = match fields {
        Some(fields) => fields.to_vec(),
        None => ctx.all_fields(),
    };
    let translator = Translator {
        ctx,
        defaults,
        default_and,
    };
    translator.ast(&ast)
}

struct Translator<'a> {
    ctx: &'a QueryContext<'a>,
    defaults: Vec<String>,
    default_and: bool,
}

impl Translator<'_> {
    fn ast(&self, ast: &UserInputAst) -> Result<Boxed, QueryError> {
        let _level = self.ctx.budget.enter()?;
        self.ctx.budget.clauses(1)?;
        match ast {
            UserInputAst::Clause(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for (occur, sub) in items {
                    let occur = match occur {
                        Some(tantivy_query_grammar::Occur::Must) => Occur::Must,
                        Some(tantivy_query_grammar::Occur::MustNot) => Occur::MustNot,
                        Some(tantivy_query_grammar::Occur::Should) => Occur::Should,
                        None if self.default_and => Occur::Must,
                        None => Occur::Should,
                    };
                    parts.push((occur, self.ast(sub)?));
                }
                if !parts.is_empty() && parts.iter().all(|(o, _)| *o == Occur::MustNot) {
                    parts.push((Occur::Must, Box::new(AllQuery)));
                }
                Ok(Box::new(BooleanQuery::new(parts)))
            }
            UserInputAst::Boost(inner, boost) => {
                Ok(Box::new(BoostQuery::new(self.ast(inner)?, boost.0 as f32)))
            }
            UserInputAst::Leaf(leaf) => self.leaf(leaf),
        }
    }

    /// The fields a leaf applies to: its own, or the defaults. Errors on the defaults are
    /// skipped (a word is not a number), errors on a named field are reported; a limit is
    /// reported either way.
    fn per_field(
        &self,
        field: Option<&String>,
        mut build: impl FnMut(&str) -> Result<Boxed, QueryError>,
    ) -> Result<Boxed, QueryError> {
        if let Some(field) = field {
            return self.ctx.tolerate(build(field));
        }
        let mut parts: Vec<(Occur, Boxed)> = Vec::new();
        for field in &self.defaults {
            self.ctx.budget.clauses(1)?;
            match build(field) {
                Ok(query) => parts.push((Occur::Should, query)),
                Err(limit @ QueryError::Limit(_)) => return Err(limit),
                Err(_) => {}
            }
        }
        Ok(match parts.len() {
            0 => Box::new(EmptyQuery),
            1 => parts
                .pop()
                .map(|(_, q)| q)
                .unwrap_or_else(|| Box::new(EmptyQuery)),
            _ => Box::new(BooleanQuery::new(parts)),
        })
    }

    fn leaf(&self, leaf: &UserInputLeaf) -> Result<Boxed, QueryError> {
        match leaf {
            UserInputLeaf::All => Ok(Box::new(AllQuery)),
            UserInputLeaf::Literal(literal) => self
                .per_field(literal.field_name.as_ref(), |field| {
                    Ok(self.ctx.scored(field, self.literal(field, literal)?))
                }),
            UserInputLeaf::Range {
                field,
                lower,
                upper,
            } => self.per_field(field.as_ref(), |field| self.range(field, lower, upper)),
            UserInputLeaf::Set { field, elements } => self.per_field(field.as_ref(), |field| {
                crate::limits::check_terms_count("query_string", elements.len())?;
                let terms = elements
                    .iter()
                    .map(|e| self.exact_or_raw(field, e))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>();
                Ok(Box::new(TermSetQuery::new(terms)) as Boxed)
            }),
            UserInputLeaf::Exists { field } => {
                let term = Term::from_field_text(self.ctx.fields.field_names, field);
                Ok(Box::new(ConstScoreQuery::new(
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                    1.0,
                )))
            }
            UserInputLeaf::Regex { .. } => Err(parsing(
                "regular expressions are not supported in query_string",
            )),
        }
    }

    fn literal(&self, field: &str, literal: &UserInputLiteral) -> Result<Boxed, QueryError> {
        if literal.prefix {
            return Err(parsing(format!(
                "prefix queries ([{}*]) are not supported in query_string",
                literal.phrase
            )));
        }
        if field == "_id" {
            return Ok(Box::new(TermQuery::new(
                Term::from_field_text(self.ctx.fields.id, &literal.phrase),
                IndexRecordOption::Basic,
            )));
        }
        let target = self.ctx.target(field);
        match &target {
            Target::Text { .. } => {
                let terms = text_terms(&target, &literal.phrase);
                self.ctx.budget.clauses(terms.len())?;
                let quoted = matches!(literal.delimiter, Delimiter::DoubleQuotes);
                Ok(match terms.len() {
                    0 => Box::new(EmptyQuery),
                    1 => Box::new(TermQuery::new(
                        terms[0].1.clone(),
                        IndexRecordOption::WithFreqs,
                    )),
                    _ if quoted => {
                        Box::new(PhraseQuery::new_with_offset_and_slop(terms, literal.slop))
                    }
                    _ => {
                        let occur = if self.default_and {
                            Occur::Must
                        } else {
                            Occur::Should
                        };
                        Box::new(BooleanQuery::new(
                            terms
                                .into_iter()
                                .map(|(_, t)| {
                                    (
                                        occur,
                                        Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs))
                                            as Boxed,
                                    )
                                })
                                .collect(),
                        ))
                    }
                })
            }
            _ => Ok(match self.exact_or_raw(field, &literal.phrase)? {
                Some(term) => Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                None => Box::new(EmptyQuery),
            }),
        }
    }

    /// The exact term for `text` in `field`, coerced to the field's type.
    fn exact_or_raw(&self, field: &str, text: &str) -> Result<Option<Term>, QueryError> {
        match self.ctx.target(field) {
            Target::Exact { path, mapping } => {
                let value =
                    self.ctx
                        .exact_value(&path, &mapping, &Value::String(text.to_string()))?;
                Ok(Some(exact_term(&self.ctx.exact_prefix(&path), &value)?))
            }
            target @ Target::Text { .. } => {
                Ok(text_terms(&target, text).into_iter().next().map(|(_, t)| t))
            }
            Target::Unmapped => Ok(None),
        }
    }

    fn range(
        &self,
        field: &str,
        lower: &UserInputBound,
        upper: &UserInputBound,
    ) -> Result<Boxed, QueryError> {
        let (path, mapping) = match self.ctx.target(field) {
            Target::Exact { path, mapping } => (path, mapping),
            Target::Unmapped => return Ok(Box::new(EmptyQuery)),
            Target::Text { .. } => {
                return Err(QueryError::Shard(format!(
                    "range on text field [{field}] is not supported"
                )));
            }
        };
        let prefix = self.ctx.exact_prefix(&path);
        let bound = |b: &UserInputBound| -> Result<Bound<Term>, QueryError> {
            let term = |s: &str| {
                self.ctx
                    .exact_value(&path, &mapping, &Value::String(s.to_string()))
                    .map(|v| bound_term(&prefix, &v))
            };
            Ok(match b {
                UserInputBound::Inclusive(s) if s == "*" => Bound::Unbounded,
                UserInputBound::Exclusive(s) if s == "*" => Bound::Unbounded,
                UserInputBound::Inclusive(s) => Bound::Included(term(s)?),
                UserInputBound::Exclusive(s) => Bound::Excluded(term(s)?),
                UserInputBound::Unbounded => Bound::Unbounded,
            })
        };
        Ok(Box::new(ConstScoreQuery::new(
            Box::new(RangeQuery::new(bound(lower)?, bound(upper)?)),
            1.0,
        )))
    }
}
