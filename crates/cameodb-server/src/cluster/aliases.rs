//! Alias changes across the cluster: each index's aliases change on its metadata owner, which
//! bumps the index's settings version and pushes the new metadata to every node (the metadata
//! sync repairs a node that missed it), exactly as settings do.

use std::collections::BTreeMap;

use tracing::info;

use super::metadata::{other_owner, push_meta};
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::aliases::AliasChange;
use crate::error::ApiError;
use crate::messages::NodeCall;

/// Applies `changes` (by concrete index, in order) through each index's metadata owner. The
/// indexes change one after another: a swap (remove from one, add to another) is two steps,
/// between which a search through the alias may see both indexes or neither.
pub async fn change(
    ctx: &ClusterCtx,
    changes: BTreeMap<String, Vec<AliasChange>>,
) -> Result<(), ApiError> {
    // Every index must exist before any changes, so a bad action changes nothing.
    for index in changes.keys() {
        ctx.leaf.catalog.require(index).await?;
    }
    for (index, changes) in changes {
        match other_owner(ctx, &index).await {
            Some(owner) => {
                let call = NodeCall::ChangeAliases {
                    index: index.clone(),
                    changes,
                };
                ctx.call_node(&owner, call, CALL_TIMEOUT).await?;
            }
            None => change_here(ctx, &index, &changes).await?,
        }
    }
    Ok(())
}

/// As the metadata owner: changes one index's aliases here, then on every other node.
pub async fn change_here(
    ctx: &ClusterCtx,
    index: &str,
    changes: &[AliasChange],
) -> Result<(), ApiError> {
    let meta = ctx.leaf.catalog.update_aliases(index, changes).await?;
    info!(index = %index, version = meta.settings_version, "index aliases changed");
    push_meta(ctx, index, meta).await;
    Ok(())
}
