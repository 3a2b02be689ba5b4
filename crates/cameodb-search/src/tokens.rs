//! Searching only the token ranges a node answers for. With replicas every document is held by
//! several nodes; a cluster search asks one replica per range, and each node keeps the hits,
//! counts, buckets and statistics of its ranges only (by the `_token` fast field), so every
//! document counts once.

use std::sync::Arc;

use cameodb_schema::fields::TOKEN_FIELD;
use serde::{Deserialize, Serialize};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

/// Sorted, disjoint, non-adjacent inclusive token ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRanges(Vec<(u64, u64)>);

impl TokenRanges {
    /// The union of `ranges` (inclusive `(start, end)` pairs, any order; empty ones, with
    /// `start > end`, are dropped), normalized.
    pub fn new(mut ranges: Vec<(u64, u64)>) -> TokenRanges {
        ranges.retain(|(start, end)| start <= end);
        ranges.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match out.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
        TokenRanges(out)
    }

    /// Whether `token` is in one of the ranges. O(log ranges).
    pub fn contains(&self, token: u64) -> bool {
        let i = self.0.partition_point(|(_, end)| *end < token);
        self.0.get(i).is_some_and(|(start, _)| *start <= token)
    }

    /// The ranges.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// The tokens in both these ranges and `other`'s.
    pub fn intersect(&self, other: &TokenRanges) -> TokenRanges {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while let (Some(&(a0, a1)), Some(&(b0, b1))) = (self.0.get(i), other.0.get(j)) {
            let (start, end) = (a0.max(b0), a1.min(b1));
            if start <= end {
                out.push((start, end));
            }
            if a1 < b1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        TokenRanges::new(out)
    }

    /// True when no token is in them.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `query` restricted to documents whose token is in `ranges` (`None`: unrestricted). Scores
/// are unchanged: the restriction scores 0 and is summed with the query's score.
pub fn restrict(query: Box<dyn Query>, ranges: Option<&Arc<TokenRanges>>) -> Box<dyn Query> {
    match ranges {
        None => query,
        Some(ranges) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, query),
            (
                Occur::Must,
                Box::new(TokenFilter {
                    ranges: Arc::clone(ranges),
                }),
            ),
        ])),
    }
}

/// The token column of a segment.
pub fn token_column(reader: &SegmentReader) -> tantivy::Result<Column<u64>> {
    reader.fast_fields().u64(TOKEN_FIELD)
}

/// Matches the documents whose token is in the ranges, scoring 0.
#[derive(Clone, Debug)]
struct TokenFilter {
    ranges: Arc<TokenRanges>,
}

impl Query for TokenFilter {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(TokenWeight {
            ranges: Arc::clone(&self.ranges),
        }))
    }
}

struct TokenWeight {
    ranges: Arc<TokenRanges>,
}

impl Weight for TokenWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorer = TokenScorer {
            column: token_column(reader)?,
            ranges: Arc::clone(&self.ranges),
            doc: 0,
            max_doc: reader.max_doc(),
        };
        scorer.settle();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let column = token_column(reader)?;
        let inside = column.first(doc).is_some_and(|t| self.ranges.contains(t));
        if !inside {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is outside the token ranges this node answers for"
            )));
        }
        Ok(Explanation::new("token range", 0.0))
    }
}

/// Walks a segment's documents in order, stopping at those inside the ranges.
struct TokenScorer {
    column: Column<u64>,
    ranges: Arc<TokenRanges>,
    doc: DocId,
    max_doc: DocId,
}

impl TokenScorer {
    fn inside(&self, doc: DocId) -> bool {
        self.column
            .first(doc)
            .is_some_and(|token| self.ranges.contains(token))
    }

    /// Moves from the current document to the first one inside (or the end).
    fn settle(&mut self) -> DocId {
        while self.doc < self.max_doc && !self.inside(self.doc) {
            self.doc += 1;
        }
        if self.doc >= self.max_doc {
            self.doc = TERMINATED;
        }
        self.doc
    }
}

impl DocSet for TokenScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        self.doc += 1;
        self.settle()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc == TERMINATED || target <= self.doc {
            return self.doc;
        }
        self.doc = target;
        self.settle()
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.max_doc
    }
}

impl Scorer for TokenScorer {
    fn score(&mut self) -> Score {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn contains_matches_a_linear_scan(
            ranges in prop::collection::vec((any::<u8>(), any::<u8>()), 0..8),
            probes in prop::collection::vec(any::<u8>(), 0..32),
        ) {
            let ranges: Vec<(u64, u64)> =
                ranges.into_iter().map(|(a, b)| (u64::from(a), u64::from(b))).collect();
            let set = TokenRanges::new(ranges.clone());
            for window in set.ranges().windows(2) {
                prop_assert!(window[0].1.saturating_add(1) < window[1].0);
            }
            for probe in probes {
                let probe = u64::from(probe);
                let linear = ranges.iter().any(|(s, e)| *s <= probe && probe <= *e);
                prop_assert_eq!(set.contains(probe), linear);
            }
        }
    }

    proptest! {
        #[test]
        fn intersection_matches_a_linear_scan(
            a in prop::collection::vec((any::<u8>(), any::<u8>()), 0..6),
            b in prop::collection::vec((any::<u8>(), any::<u8>()), 0..6),
        ) {
            let wide = |v: Vec<(u8, u8)>| v.into_iter().map(|(x, y)| (u64::from(x), u64::from(y))).collect();
            let (a, b) = (TokenRanges::new(wide(a)), TokenRanges::new(wide(b)));
            let both = a.intersect(&b);
            for t in 0..=255u64 {
                prop_assert_eq!(both.contains(t), a.contains(t) && b.contains(t));
            }
        }
    }

    #[test]
    fn the_ends_of_the_space_merge() {
        let set = TokenRanges::new(vec![(u64::MAX, u64::MAX), (0, 5), (6, u64::MAX - 1)]);
        assert_eq!(set.ranges(), &[(0, u64::MAX)]);
        assert!(set.contains(u64::MAX));
    }
}
