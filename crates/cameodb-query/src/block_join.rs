//! Joins between nested elements' hidden documents and the documents holding them.
//!
//! A document's nested elements are indexed just before it, in one segment (see
//! `cameodb_schema::mapping::nested`), so the document holding an element is the first
//! document after it at the holding level: the root level (documents without the nested mark)
//! or a nested path's level. Both joins work one segment at a time over those positions.

use std::fmt;

use cameodb_schema::mapping::nested::{NESTED_MARK, path_mark};
use tantivy::query::{
    BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// How the scores of the matching elements make their document's score (`score_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreMode {
    /// The mean of the elements' scores (Elasticsearch's default).
    Avg,
    /// The highest.
    Max,
    /// The lowest.
    Min,
    /// Their sum.
    Sum,
    /// Zero: the elements only select.
    None,
}

impl ScoreMode {
    /// The mode `name` spells, as the `nested` query takes it.
    pub fn parse(name: &str) -> Option<ScoreMode> {
        Some(match name {
            "avg" => ScoreMode::Avg,
            "max" => ScoreMode::Max,
            "min" => ScoreMode::Min,
            "sum" | "total" => ScoreMode::Sum,
            "none" => ScoreMode::None,
            _ => return None,
        })
    }
}

/// The documents of one level of nesting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// Top-level documents: those without the nested mark.
    Root,
    /// The hidden documents of the nested field at this path.
    Path(String),
}

/// The `_field_names` term every nested document carries.
pub fn nested_mark(field_names: Field) -> Term {
    Term::from_field_text(field_names, NESTED_MARK)
}

/// `query` limited to top-level documents.
pub fn roots_only(query: Box<dyn Query>, field_names: Field) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, query),
        (
            Occur::MustNot,
            Box::new(TermQuery::new(
                nested_mark(field_names),
                IndexRecordOption::Basic,
            )),
        ),
    ]))
}

/// `query` limited to the hidden documents of the nested field at `path`, scores unchanged
/// (a boolean intersection would drop a `match_all`'s score: tantivy elides it).
pub fn at_path(query: Box<dyn Query>, path: &str, field_names: Field) -> Box<dyn Query> {
    Box::new(AtPathQuery {
        query,
        level: Level::Path(path.to_string()),
        field_names,
    })
}

/// See [`at_path`].
#[derive(Debug)]
struct AtPathQuery {
    query: Box<dyn Query>,
    level: Level,
    field_names: Field,
}

impl Clone for AtPathQuery {
    fn clone(&self) -> Self {
        AtPathQuery {
            query: self.query.box_clone(),
            level: self.level.clone(),
            field_names: self.field_names,
        }
    }
}

impl Query for AtPathQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AtPathWeight {
            inner: self.query.weight(scoring)?,
            level: self.level.clone(),
            field_names: self.field_names,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

struct AtPathWeight {
    inner: Box<dyn Weight>,
    level: Level,
    field_names: Field,
}

impl Weight for AtPathWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let members = level_docs(reader, self.field_names, &self.level)?;
        let mut inner = self.inner.scorer(reader, boost)?;
        let mut docs = Vec::new();
        let mut doc = inner.doc();
        for member in members {
            if doc == TERMINATED {
                break;
            }
            if doc < member {
                doc = inner.seek(member);
            }
            if doc == member {
                docs.push((doc, inner.score()));
            }
        }
        Ok(Box::new(ListScorer::new(docs)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.inner.explain(reader, doc)
    }
}

/// Every document of `level` in a segment, in order, deleted ones included: a deleted
/// document's elements are deleted with it, so the positions stay right either way.
pub fn level_docs(
    reader: &SegmentReader,
    field_names: Field,
    level: &Level,
) -> tantivy::Result<Vec<DocId>> {
    let term = match level {
        Level::Root => nested_mark(field_names),
        Level::Path(path) => Term::from_field_text(field_names, &path_mark(path)),
    };
    let mut marked = Vec::new();
    let index = reader.inverted_index(field_names)?;
    if let Some(mut postings) = index.read_postings(&term, IndexRecordOption::Basic)? {
        let mut doc = postings.doc();
        while doc != TERMINATED {
            marked.push(doc);
            doc = postings.advance();
        }
    }
    Ok(match level {
        Level::Path(_) => marked,
        Level::Root => {
            let mut roots = Vec::new();
            let mut hidden = marked.into_iter().peekable();
            for doc in 0..reader.max_doc() {
                if hidden.next_if_eq(&doc).is_none() {
                    roots.push(doc);
                }
            }
            roots
        }
    })
}

/// The document of `holders` (a level's documents) that holds the element at `doc`: the first
/// one after it.
pub fn holder_of(holders: &[DocId], doc: DocId) -> Option<DocId> {
    holders.get(holders.partition_point(|h| *h <= doc)).copied()
}

fn alive(reader: &SegmentReader, doc: DocId) -> bool {
    reader.alive_bitset().is_none_or(|bits| bits.is_alive(doc))
}

/// The `nested` query: documents of `parents` holding an element that `child` matches
/// (`child` already limited to the nested path), scored from the elements by `mode`.
#[derive(Debug)]
pub struct ToParentQuery {
    /// What the elements must match.
    pub child: Box<dyn Query>,
    /// The level of the documents returned.
    pub parents: Level,
    /// How element scores combine.
    pub mode: ScoreMode,
    /// The `_field_names` field, which holds the nesting marks.
    pub field_names: Field,
}

impl Clone for ToParentQuery {
    fn clone(&self) -> Self {
        ToParentQuery {
            child: self.child.box_clone(),
            parents: self.parents.clone(),
            mode: self.mode,
            field_names: self.field_names,
        }
    }
}

impl Query for ToParentQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ToParentWeight {
            child: self.child.weight(scoring)?,
            parents: self.parents.clone(),
            mode: self.mode,
            field_names: self.field_names,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.child.query_terms(visitor);
    }
}

struct ToParentWeight {
    child: Box<dyn Weight>,
    parents: Level,
    mode: ScoreMode,
    field_names: Field,
}

impl ToParentWeight {
    /// Each parent with matching elements, in order, with its score and element count.
    fn joined(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Vec<Joined>> {
        let parents = level_docs(reader, self.field_names, &self.parents)?;
        let mut child = self.child.scorer(reader, boost)?;
        let mut out: Vec<Joined> = Vec::new();
        let mut doc = child.doc();
        while doc != TERMINATED {
            if alive(reader, doc)
                && let Some(parent) = holder_of(&parents, doc)
            {
                let score = child.score();
                match out.last_mut() {
                    Some(last) if last.doc == parent => last.add(score),
                    _ => out.push(Joined {
                        doc: parent,
                        sum: score,
                        min: score,
                        max: score,
                        count: 1,
                    }),
                }
            }
            doc = child.advance();
        }
        Ok(out)
    }
}

/// One parent's matching elements, folded.
struct Joined {
    doc: DocId,
    sum: Score,
    min: Score,
    max: Score,
    count: u32,
}

impl Joined {
    fn add(&mut self, score: Score) {
        self.sum += score;
        self.min = self.min.min(score);
        self.max = self.max.max(score);
        self.count += 1;
    }

    fn score(&self, mode: ScoreMode) -> Score {
        match mode {
            ScoreMode::Avg => self.sum / self.count as Score,
            ScoreMode::Max => self.max,
            ScoreMode::Min => self.min,
            ScoreMode::Sum => self.sum,
            ScoreMode::None => 0.0,
        }
    }
}

impl Weight for ToParentWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let docs = self
            .joined(reader, boost)?
            .into_iter()
            .map(|j| (j.doc, j.score(self.mode)))
            .collect();
        Ok(Box::new(ListScorer::new(docs)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let joined = self.joined(reader, 1.0)?;
        let found = joined.iter().find(|j| j.doc == doc).ok_or_else(|| {
            tantivy::TantivyError::InvalidArgument(format!("document {doc} does not match"))
        })?;
        let description = format!(
            "Score based on {} child docs, score mode {:?}",
            found.count, self.mode
        );
        Ok(Explanation::new_with_string(
            description,
            found.score(self.mode),
        ))
    }
}

/// The hidden documents of the nested field at `path` whose top-level document `parent`
/// matches (what a `nested` aggregation collects). Every match scores 1.
pub struct ToChildrenQuery {
    /// What the top-level documents must match.
    pub parent: Box<dyn Query>,
    /// The nested field whose elements are returned.
    pub path: String,
    /// The `_field_names` field, which holds the nesting marks.
    pub field_names: Field,
}

impl Clone for ToChildrenQuery {
    fn clone(&self) -> Self {
        ToChildrenQuery {
            parent: self.parent.box_clone(),
            path: self.path.clone(),
            field_names: self.field_names,
        }
    }
}

impl fmt::Debug for ToChildrenQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ToChildren({}, {:?})", self.path, self.parent)
    }
}

impl Query for ToChildrenQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ToChildrenWeight {
            parent: self.parent.weight(scoring)?,
            path: self.path.clone(),
            field_names: self.field_names,
        }))
    }
}

struct ToChildrenWeight {
    parent: Box<dyn Weight>,
    path: String,
    field_names: Field,
}

impl Weight for ToChildrenWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let roots = level_docs(reader, self.field_names, &Level::Root)?;
        let mut matched = Vec::new();
        let mut parent = self.parent.scorer(reader, 1.0)?;
        let mut doc = parent.doc();
        while doc != TERMINATED {
            matched.push(doc);
            doc = parent.advance();
        }
        let children = level_docs(reader, self.field_names, &Level::Path(self.path.clone()))?;
        let docs = children
            .into_iter()
            .filter(|c| alive(reader, *c))
            .filter(|c| holder_of(&roots, *c).is_some_and(|p| matched.binary_search(&p).is_ok()))
            .map(|c| (c, 1.0))
            .collect();
        Ok(Box::new(ListScorer::new(docs)))
    }

    fn explain(&self, _reader: &SegmentReader, _doc: DocId) -> tantivy::Result<Explanation> {
        Ok(Explanation::new(
            "nested element of a matching document",
            1.0,
        ))
    }
}

/// A scorer over documents found in advance, in order.
struct ListScorer {
    docs: Vec<(DocId, Score)>,
    at: usize,
}

impl ListScorer {
    fn new(docs: Vec<(DocId, Score)>) -> ListScorer {
        ListScorer { docs, at: 0 }
    }
}

impl DocSet for ListScorer {
    fn advance(&mut self) -> DocId {
        if self.at < self.docs.len() {
            self.at += 1;
        }
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let rest = &self.docs[self.at.min(self.docs.len())..];
        self.at += rest.partition_point(|(d, _)| *d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).map_or(TERMINATED, |(d, _)| *d)
    }

    fn size_hint(&self) -> u32 {
        u32::try_from(self.docs.len().saturating_sub(self.at)).unwrap_or(u32::MAX)
    }
}

impl Scorer for ListScorer {
    fn score(&mut self) -> Score {
        self.docs.get(self.at).map_or(0.0, |(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_holder_is_the_first_document_after(
            mut holders in prop::collection::vec(0u32..500, 0..40),
            doc in 0u32..500,
        ) {
            holders.sort_unstable();
            holders.dedup();
            let linear = holders.iter().copied().find(|h| *h > doc);
            prop_assert_eq!(holder_of(&holders, doc), linear);
        }

        #[test]
        fn a_list_scorer_seeks_like_a_scan(
            mut docs in prop::collection::vec(0u32..1000, 0..60),
            targets in prop::collection::vec(0u32..1100, 0..10),
        ) {
            docs.sort_unstable();
            docs.dedup();
            let mut scorer = ListScorer::new(docs.iter().map(|d| (*d, 1.0)).collect());
            let mut sorted = targets.clone();
            sorted.sort_unstable();
            for target in sorted {
                let expected = docs
                    .iter()
                    .copied()
                    .find(|d| *d >= target)
                    .unwrap_or(TERMINATED);
                let current = scorer.doc();
                let got = scorer.seek(target);
                if current >= target {
                    prop_assert_eq!(got, current);
                } else {
                    prop_assert_eq!(got, expected);
                }
            }
        }
    }
}
