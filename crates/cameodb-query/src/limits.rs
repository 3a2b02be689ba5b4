//! What one query may ask for, named as Elasticsearch names the limits. Translation recurses
//! over the request (JSON clauses, Lucene groups), and tantivy recurses again over the query it
//! builds (weights, scorers, drops), so nesting is bounded before either runs; clause and term
//! counts bound the size of what is built.

use std::cell::Cell;

use crate::error::QueryError;

/// `indices.query.bool.max_nested_depth`: deepest nesting of compound clauses (bool, dis_max,
/// constant_score, boosting; Lucene groups and `NOT` chains) in one query.
pub const MAX_NESTED_DEPTH: usize = 30;

/// `indices.query.bool.max_clause_count`: most leaf and boolean clauses one query may build,
/// counting the terms an analyzed text expands to.
pub const MAX_CLAUSE_COUNT: usize = 4096;

/// `index.max_terms_count`: most values in one `terms` or `ids` query.
pub const MAX_TERMS_COUNT: usize = 65_536;

/// The running totals of one translation.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Current nesting depth.
    depth: Cell<usize>,
    /// Clauses built so far.
    clauses: Cell<usize>,
}

/// Holds one level of nesting; leaving the level gives it back.
pub(crate) struct Level<'a> {
    depth: &'a Cell<usize>,
}

impl Drop for Level<'_> {
    fn drop(&mut self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }
}

impl Budget {
    /// Enters one level of nesting, or fails past [`MAX_NESTED_DEPTH`].
    pub(crate) fn enter(&self) -> Result<Level<'_>, QueryError> {
        let depth = self.depth.get() + 1;
        if depth > MAX_NESTED_DEPTH {
            return Err(too_deep());
        }
        self.depth.set(depth);
        Ok(Level { depth: &self.depth })
    }

    /// Counts `n` more clauses, or fails past [`MAX_CLAUSE_COUNT`].
    pub(crate) fn clauses(&self, n: usize) -> Result<(), QueryError> {
        let total = self.clauses.get().saturating_add(n);
        if total > MAX_CLAUSE_COUNT {
            return Err(QueryError::Limit(format!(
                "query contains too many clauses: more than [{MAX_CLAUSE_COUNT}] ([indices.query.bool.max_clause_count])"
            )));
        }
        self.clauses.set(total);
        Ok(())
    }
}

/// The error for a query nested past [`MAX_NESTED_DEPTH`].
pub(crate) fn too_deep() -> QueryError {
    QueryError::Limit(format!(
        "the query nests deeper than [{MAX_NESTED_DEPTH}] levels, the maximum set by [indices.query.bool.max_nested_depth]"
    ))
}

/// Refuses more than [`MAX_TERMS_COUNT`] values in one `clause`.
pub(crate) fn check_terms_count(clause: &str, count: usize) -> Result<(), QueryError> {
    if count > MAX_TERMS_COUNT {
        return Err(QueryError::Limit(format!(
            "The number of terms [{count}] used in the [{clause}] query has exceeded the allowed maximum of [{MAX_TERMS_COUNT}]. This maximum is [index.max_terms_count]."
        )));
    }
    Ok(())
}

/// How deeply tantivy's Lucene grammar would recurse on `text`: parenthesised groups plus runs
/// of `NOT` (each `NOT ` recurses once more before its operand). Quoted phrases and escaped
/// characters do not count. An over-estimate is harmless; the grammar is only run when this is
/// within [`MAX_NESTED_DEPTH`], because it recurses without a limit of its own.
pub(crate) fn lucene_nesting(text: &str) -> usize {
    let mut deepest = 0;
    let mut groups = 0usize;
    let mut not_run = 0usize;
    let mut word = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            word.push(c);
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            _ if quoted => word.push(c),
            '(' => {
                end_word(&mut word, &mut not_run);
                groups += 1;
            }
            ')' => {
                end_word(&mut word, &mut not_run);
                groups = groups.saturating_sub(1);
            }
            c if c.is_whitespace() => end_word(&mut word, &mut not_run),
            c => word.push(c),
        }
        deepest = deepest.max(groups + not_run);
    }
    end_word(&mut word, &mut not_run);
    deepest.max(groups + not_run)
}

/// Ends the word being read: a `NOT` lengthens the current run of them, anything else ends it.
fn end_word(word: &mut String, not_run: &mut usize) {
    if !word.is_empty() {
        *not_run = if word == "NOT" { *not_run + 1 } else { 0 };
        word.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lucene_nesting_counts_groups_and_not_runs() {
        assert_eq!(lucene_nesting("a b c"), 0);
        assert_eq!(lucene_nesting("(a (b (c)))"), 3);
        assert_eq!(lucene_nesting("(a) (b) (c)"), 1);
        assert_eq!(lucene_nesting("NOT NOT NOT a"), 3);
        assert_eq!(lucene_nesting("a AND NOT b AND NOT c"), 1);
        assert_eq!(lucene_nesting("\"(((\" \\( x"), 0);
        assert_eq!(lucene_nesting("title:(a OR (b))"), 2);
        assert!(lucene_nesting(&"(".repeat(2200)) > MAX_NESTED_DEPTH);
        assert!(lucene_nesting(&"+(".repeat(2200)) > MAX_NESTED_DEPTH);
    }

    #[test]
    fn depth_is_given_back_on_leaving_a_level() {
        let budget = Budget::default();
        for _ in 0..3 {
            let mut levels = Vec::new();
            for _ in 0..MAX_NESTED_DEPTH {
                levels.push(budget.enter().expect("within the limit"));
            }
            assert!(budget.enter().is_err());
        }
        assert!(budget.clauses(MAX_CLAUSE_COUNT).is_ok());
        assert!(budget.clauses(1).is_err());
    }
}
