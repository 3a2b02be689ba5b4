//! Index templates across the cluster. There is no owner: a write is stamped where it arrives
//! (time, then node id), kept there and sent to every node, and each keeps the newest record
//! of every template. Nodes gossip a digest of their records; one that differs from a peer's
//! pulls the peer's records and keeps what is newer, so a node that was down catches up.

use std::collections::BTreeMap;

use serde_json::Value;
use tracing::debug;

use super::metadata::broadcast;
use super::{CALL_TIMEOUT, ClusterCtx};
use crate::catalog::parse_settings;
use crate::error::ApiError;
use crate::messages::{NodeCall, NodeReply};
use crate::templates::{self, TemplateKind, TemplateRecord};

/// The gossip key carrying this node's template digest.
const DIGEST_KEY: &str = "templates";

/// Checks and stores template `name` (its settings, mappings and aliases as an index would
/// take them), then sends it to every node.
pub async fn put(
    ctx: &ClusterCtx,
    kind: TemplateKind,
    name: &str,
    body: Value,
) -> Result<(), ApiError> {
    crate::catalog::validate_name(name).map_err(|e| {
        ApiError::bad_request(
            "invalid_index_template_exception",
            e.reason
                .replace("Invalid index name", "Invalid template name"),
        )
    })?;
    let own = templates::check(kind, name, &body)?;
    // An index template is checked as an index would get it: with its components.
    let composed = if kind == TemplateKind::Index {
        templates::compose_index_template(&ctx.leaf.catalog.templates(), &body)
    } else {
        own
    };
    let settings = parse_settings(Some(&Value::Object(composed.settings)))?;
    let analysis = crate::index_settings::analysis_of(&settings)?;
    if !composed.mappings.is_empty() {
        let mapping =
            cameodb_schema::mapping::Mapping::from_es_json(&Value::Object(composed.mappings))?;
        analysis.check(&mapping)?;
    }
    crate::aliases::AliasMeta::parse_all(&composed.aliases)?;
    if kind == TemplateKind::Index {
        let known = ctx.leaf.catalog.templates();
        for component in templates::components(&body) {
            let exists = known
                .get(&(TemplateKind::Component, component.to_string()))
                .is_some_and(|r| r.body.is_some());
            if !exists {
                return Err(ApiError::illegal_argument(format!(
                    "index template [{name}] specifies component templates [{component}] that do not exist"
                )));
            }
        }
    }
    write(ctx, kind, name, Some(body)).await
}

/// Deletes template `name` everywhere; 404 when there is none.
pub async fn delete(ctx: &ClusterCtx, kind: TemplateKind, name: &str) -> Result<(), ApiError> {
    let known = ctx.leaf.catalog.templates();
    let names: Vec<String> = known
        .values()
        .filter(|r| r.kind == kind && r.body.is_some())
        .filter(|r| crate::aliases::matches_any(name, &r.name))
        .map(|r| r.name.clone())
        .collect();
    if names.is_empty() {
        return Err(missing(kind, name));
    }
    if kind == TemplateKind::Component {
        for user in known.values().filter(|r| r.kind == TemplateKind::Index) {
            let uses = user
                .body
                .as_ref()
                .and_then(|b| b.get("composed_of"))
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|n| n.as_str().is_some_and(|n| names.iter().any(|x| x == n)))
                });
            if uses {
                return Err(ApiError::illegal_argument(format!(
                    "component templates [{name}] cannot be removed as they are still in use by index templates [{}]",
                    user.name
                )));
            }
        }
    }
    for name in names {
        write(ctx, kind, &name, None).await?;
    }
    Ok(())
}

/// The 404 for a template that is not there.
pub fn missing(kind: TemplateKind, name: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "resource_not_found_exception",
        format!("{} matching [{name}] not found", kind.api()),
    )
}

async fn write(
    ctx: &ClusterCtx,
    kind: TemplateKind,
    name: &str,
    body: Option<Value>,
) -> Result<(), ApiError> {
    let self_id = ctx.view().await.self_id.clone();
    let record = TemplateRecord {
        kind,
        name: name.to_string(),
        body,
        version: ctx.leaf.catalog.next_template_version(kind, name, &self_id),
    };
    ctx.leaf
        .catalog
        .merge_templates(vec![record.clone()])
        .await?;
    broadcast(ctx, NodeCall::ApplyTemplates(vec![record])).await;
    Ok(())
}

/// Runs the template sync until the node stops, at the metadata sync's pace.
pub async fn sync_loop(ctx: std::sync::Arc<ClusterCtx>) {
    // node -> the template digest we last pulled from it.
    let mut pulled: BTreeMap<String, String> = BTreeMap::new();
    loop {
        tokio::time::sleep(super::metadata::SYNC_INTERVAL).await;
        sync(&ctx, &mut pulled).await;
    }
}

/// One round of the template sync: publish this node's digest, and pull from each peer whose
/// digest differs (once per digest it shows, remembered in `pulled`).
async fn sync(ctx: &ClusterCtx, pulled: &mut BTreeMap<String, String>) {
    let mine = templates::digest(&ctx.leaf.catalog.templates()).to_string();
    ctx.cluster.set_value(DIGEST_KEY, &mine).await;
    let view = ctx.view().await;
    for member in view
        .members
        .iter()
        .filter(|m| !m.is_self && view.is_live(&m.id))
    {
        let Some(theirs) = member.values.get(DIGEST_KEY) else {
            continue;
        };
        if *theirs == mine || pulled.get(&member.id) == Some(theirs) {
            continue;
        }
        match ctx
            .call_node(member, NodeCall::GetTemplates, CALL_TIMEOUT)
            .await
        {
            Ok(NodeReply::Templates(records)) => {
                pulled.insert(member.id.clone(), theirs.clone());
                if let Err(err) = ctx.leaf.catalog.merge_templates(records).await {
                    debug!(node = %member.id, reason = %err.reason, "template sync failed");
                }
            }
            _ => debug!(node = %member.id, "template sync: no answer"),
        }
    }
}
