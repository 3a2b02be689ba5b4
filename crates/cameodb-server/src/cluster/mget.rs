//! `_mget` across the cluster: each wanted document is asked of one live replica (one call per
//! node, in parallel) and the answers are put back in request order.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::ClusterCtx;
use crate::error::ApiError;
use crate::messages::{DocRead, FoundDoc, NodeCall, NodeReply};

/// Each wanted document's outcome, in request order.
pub async fn mget(
    ctx: &ClusterCtx,
    wanted: Vec<DocRead>,
) -> Vec<Result<Option<FoundDoc>, ApiError>> {
    let view = ctx.view().await;
    let mut groups: BTreeMap<String, Vec<(usize, DocRead)>> = BTreeMap::new();
    let total = wanted.len();
    let mut out: Vec<Result<Option<FoundDoc>, ApiError>> = (0..total)
        .map(|_| Err(ApiError::internal("document was not read")))
        .collect();
    for (n, want) in wanted.into_iter().enumerate() {
        match super::docs::reader(ctx, &view, &want).await {
            Ok(node) => groups.entry(node).or_default().push((n, want)),
            Err(err) => out[n] = Err(err.with_index(&want.index)),
        }
    }
    let calls = groups.into_iter().map(|(node, docs)| {
        let view = &view;
        async move {
            let (positions, docs): (Vec<usize>, Vec<DocRead>) = docs.into_iter().unzip();
            let indices: Vec<String> = docs.iter().map(|d| d.index.clone()).collect();
            let answer = match view.member(&node) {
                Some(member) => ctx
                    .try_call(member, NodeCall::Mget(docs.clone()), super::CALL_TIMEOUT)
                    .await
                    .map(|answer| match answer {
                        Ok(NodeReply::Docs(found)) if found.len() == positions.len() => Ok(found),
                        Ok(other) => Err(other.unexpected("mget")),
                        Err(err) => Err(err),
                    }),
                None => Err(super::forgotten(&node)),
            };
            let answer = match answer {
                Ok(answer) => answer,
                // The node did not answer (down, not yet known to be): each document is read
                // on its own, from its next live copy.
                Err(_) => {
                    let reads = docs.into_iter().map(|doc| async move {
                        super::docs::read(ctx, doc)
                            .await
                            .map_err(crate::messages::WireError::from)
                    });
                    Ok(join_all(reads).await)
                }
            };
            (positions, indices, answer)
        }
    });
    for (positions, indices, answer) in join_all(calls).await {
        match answer {
            Ok(found) => {
                for (position, doc) in positions.into_iter().zip(found) {
                    out[position] = doc.map_err(ApiError::from);
                }
            }
            Err(err) => {
                for (position, index) in positions.into_iter().zip(indices) {
                    out[position] = Err(err.clone().with_index(&index));
                }
            }
        }
    }
    out
}
