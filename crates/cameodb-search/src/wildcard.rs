//! Elasticsearch's simple `*` wildcards, for index and field name patterns.

/// `*` wildcard matching for index expressions.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return pattern == name,
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    for (i, part) in rest.iter().enumerate() {
        if i == rest.len() - 1 {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(pos) => remaining = &remaining[pos + part.len()..],
            None => return false,
        }
    }
    remaining.is_empty()
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn stars_match_any_run_of_characters() {
        assert!(wildcard_match("log*", "logs-1"));
        assert!(wildcard_match("*-1", "logs-1"));
        assert!(wildcard_match("l*s*1", "logs-1"));
        assert!(!wildcard_match("x*", "logs"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("logs", "logs"));
        assert!(!wildcard_match("logs", "logs-1"));
    }
}
