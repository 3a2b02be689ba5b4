//! `ip` fields: a `term` or `terms` value may be a CIDR block, which is one range of the
//! encoded addresses (see `cameodb_schema::mapping::variant::encode_ip`).

use std::ops::Bound;

use cameodb_schema::mapping::Variant;
use cameodb_schema::mapping::variant::ip_range;
use serde_json::Value;
use tantivy::query::{ConstScoreQuery, Query, RangeQuery};

use crate::error::QueryError;
use crate::fields::{QueryContext, Target};

/// The query for a CIDR block on an `ip` target; `None` when the target is not an `ip` field
/// or the value is a single address (an exact term).
pub(crate) fn cidr_query(
    target: &Target,
    value: &Value,
    ctx: &QueryContext<'_>,
) -> Result<Option<Box<dyn Query>>, QueryError> {
    let Target::Exact { path, mapping } = target else {
        return Ok(None);
    };
    if mapping.variant != Some(Variant::Ip) {
        return Ok(None);
    }
    let Some(block) = value.as_str().filter(|text| text.contains('/')) else {
        return Ok(None);
    };
    let (low, high) = ip_range(block).ok_or_else(|| {
        QueryError::Shard(format!(
            "failed to create query: [{block}] is not a valid CIDR block for ip field [{path}]"
        ))
    })?;
    let prefix = ctx.exact_prefix(path);
    let bound = |encoded: &str| {
        let mut term = prefix.clone();
        term.append_type_and_str(encoded);
        Bound::Included(term)
    };
    Ok(Some(Box::new(ConstScoreQuery::new(
        Box::new(RangeQuery::new(bound(&low), bound(&high))),
        1.0,
    ))))
}
