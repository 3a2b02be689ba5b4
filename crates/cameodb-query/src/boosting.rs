//! Elasticsearch's `boosting` query: documents matching `positive`, with the score of those that
//! also match `negative` multiplied by `negative_boost`. tantivy has no such query, so this is a
//! small Query/Weight/Scorer that walks the positive scorer and probes the negative one.

use tantivy::query::{EnableScoring, Explanation, Query, QueryClone, Scorer, Weight};
use tantivy::schema::Term;
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

/// See the module documentation.
#[derive(Debug)]
pub struct BoostingQuery {
    /// Decides which documents match and their base score.
    pub positive: Box<dyn Query>,
    /// Documents matching this are demoted.
    pub negative: Box<dyn Query>,
    /// Factor applied to demoted documents' scores (0..=1 in practice).
    pub negative_boost: Score,
}

impl Clone for BoostingQuery {
    fn clone(&self) -> Self {
        BoostingQuery {
            positive: self.positive.box_clone(),
            negative: self.negative.box_clone(),
            negative_boost: self.negative_boost,
        }
    }
}

impl Query for BoostingQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(BoostingWeight {
            positive: self.positive.weight(enable_scoring)?,
            // The negative side only filters; its scores are never used.
            negative: self
                .negative
                .weight(EnableScoring::disabled_from_schema(enable_scoring.schema()))?,
            negative_boost: self.negative_boost,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.positive.query_terms(visitor);
    }
}

struct BoostingWeight {
    positive: Box<dyn Weight>,
    negative: Box<dyn Weight>,
    negative_boost: Score,
}

impl Weight for BoostingWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(BoostingScorer {
            positive: self.positive.scorer(reader, boost)?,
            negative: self.negative.scorer(reader, 1.0)?,
            negative_boost: self.negative_boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document #({doc}) does not match"
            )));
        }
        Ok(Explanation::new("boosting", scorer.score()))
    }
}

struct BoostingScorer {
    positive: Box<dyn Scorer>,
    negative: Box<dyn Scorer>,
    negative_boost: Score,
}

impl DocSet for BoostingScorer {
    fn advance(&mut self) -> DocId {
        self.positive.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.positive.seek(target)
    }

    fn doc(&self) -> DocId {
        self.positive.doc()
    }

    fn size_hint(&self) -> u32 {
        self.positive.size_hint()
    }
}

impl Scorer for BoostingScorer {
    fn score(&mut self) -> Score {
        let doc = self.positive.doc();
        let score = self.positive.score();
        if doc == TERMINATED {
            return score;
        }
        let negative_doc = if self.negative.doc() < doc {
            self.negative.seek(doc)
        } else {
            self.negative.doc()
        };
        if negative_doc == doc {
            score * self.negative_boost
        } else {
            score
        }
    }
}
