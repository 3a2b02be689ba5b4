//! `_bulk` across the cluster: the coordinator parses the action lines once (strictly: a
//! malformed one fails the request), picks each item's lead replica from its ring token
//! (generating missing ids itself, so it knows where they go), sends every lead its items as
//! one typed part, in parallel, puts the outcomes back in request order, and sends what the
//! leads wrote on to the other copies, batched per node (see `replicate`). Sources travel as
//! they came and are parsed only by the lead that writes them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use serde_json::Value;

use super::placement::{ActiveShards, Copies};
use super::replicate::{outgoing, replicate};
use super::{ClusterCtx, metadata};
use crate::catalog::IndexEntry;
use crate::error::ApiError;
use crate::ids::{doc_key, generate_id};
use crate::messages::docs::BulkItem;
use crate::messages::{BulkPart, NodeCall, NodeReply, Written};
use crate::request::bulk::{Action, Line, parse_lines};
use crate::request::params::Refresh;

/// One item of the answer: what it names, and what became of it.
#[derive(Debug)]
pub struct ItemOutcome {
    /// What it did.
    pub action: Action,
    /// Its index ("" when the line named none).
    pub index: String,
    /// Its id (generated when the line had none).
    pub id: String,
    /// The write, or why the item failed.
    pub result: Result<Written, ApiError>,
}

/// Where one item goes: to the lead replica of its document, or nowhere because it failed
/// already.
#[derive(Debug)]
enum Route {
    /// Sent to this node (the lead), with the document's token and copies (`None`: an index
    /// this node does not know, answered by this node); `part` names the part it went in
    /// (the lead's id, or a retry's).
    Node {
        lead: String,
        part: String,
        token: u64,
        copies: Option<Copies>,
    },
    /// Refused by the coordinator.
    Refused(ApiError),
}

/// One item of the request before it is routed: its action, index, id, and its write (with
/// its document's token) or why it cannot be sent anywhere.
type Unrouted = (Action, String, String, Result<(u64, BulkItem), ApiError>);

/// The request split by lead replica.
struct Plan {
    /// Every item, in request order, with its route.
    items: Vec<(Action, String, String, Route)>,
    /// Each node's items.
    parts: BTreeMap<String, Vec<BulkItem>>,
}

/// Why an item cannot be sent anywhere, if it cannot.
fn refusal(line: &Line<'_>) -> Option<ApiError> {
    if line.index.is_none() {
        return Some(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;",
        ));
    }
    if line.id.is_none() && matches!(line.action, Action::Update | Action::Delete) {
        return Some(ApiError::bad_request(
            "action_request_validation_exception",
            "Validation Failed: 1: id is missing;",
        ));
    }
    None
}

/// Turns `lines` parsed from `body` into writes, giving `index`/`create` items without an id
/// a generated one.
fn split(
    body: &Bytes,
    lines: Vec<Line<'_>>,
    params: &HashMap<String, String>,
) -> Result<Vec<Unrouted>, ApiError> {
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        cameodb_memory::check()?;
        let index = line.index.clone().unwrap_or_default();
        let id = match (&line.id, line.action) {
            (Some(id), _) => id.clone(),
            (None, Action::Index | Action::Create) => generate_id(),
            (None, _) => String::new(),
        };
        if let Some(err) = refusal(&line) {
            items.push((line.action, index, id, Err(err)));
            continue;
        }
        let routing = line.routing(params).map(String::from);
        let token = match doc_key(&id, routing.as_deref()) {
            Ok(key) => key.token,
            Err(err) => {
                items.push((line.action, index, id, Err(err)));
                continue;
            }
        };
        let meta = &line.meta;
        let if_seq_no = match (
            meta.get("if_seq_no").and_then(Value::as_u64),
            meta.get("if_primary_term").and_then(Value::as_u64),
        ) {
            (Some(seq), Some(cameodb_storage::PRIMARY_TERM)) => Some(seq),
            // Any other term can never match: the write must conflict.
            (Some(_), Some(_)) => Some(u64::MAX),
            _ => None,
        };
        let version = meta.get("version").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let external = match crate::request::docs::external_version(
            version.as_deref(),
            meta.get("version_type").and_then(Value::as_str),
        ) {
            Ok(Some(_)) if matches!(line.action, Action::Update | Action::Create) => {
                Err(ApiError::bad_request(
                    "action_request_validation_exception",
                    "Validation Failed: 1: external versioning is only for index and delete actions;",
                ))
            }
            other => other,
        };
        let external = match external {
            Ok(external) => external,
            Err(err) => {
                items.push((line.action, index, id, Err(err)));
                continue;
            }
        };
        let item = BulkItem {
            action: line.action,
            index: index.clone(),
            id: id.clone(),
            routing,
            if_seq_no,
            external,
            create: line.action == Action::Create
                || meta.get("op_type").and_then(Value::as_str) == Some("create"),
            source: line
                .source
                .map(|source| body.slice_ref(source))
                .unwrap_or_default(),
            stamp: None,
        };
        items.push((line.action, index, id, Ok((token, item))));
    }
    Ok(items)
}

/// Sends each item to the lead replica of its document (`copies(index, token)` names them;
/// `None` for an index this node does not know, which `fallback` answers), stamping it; items
/// whose document has too few live copies are refused (503, nothing written).
fn route(
    items: Vec<Unrouted>,
    copies: impl Fn(&str, u64) -> Result<Option<Copies>, ApiError>,
    fallback: &str,
    mut stamp: impl FnMut() -> cameodb_storage::Stamp,
) -> Plan {
    let mut parts: BTreeMap<String, Vec<BulkItem>> = BTreeMap::new();
    let items = items
        .into_iter()
        .map(|(action, index, id, item)| {
            let route = match item.and_then(|(token, item)| {
                let copies = copies(&index, token)?;
                if let Some(copies) = &copies {
                    copies.check()?;
                }
                Ok((token, item, copies))
            }) {
                Err(err) => Route::Refused(err),
                Ok((token, mut item, copies)) => {
                    let lead = copies
                        .as_ref()
                        .and_then(Copies::lead)
                        .unwrap_or(fallback)
                        .to_string();
                    item.stamp = Some(stamp());
                    parts.entry(lead.clone()).or_default().push(item);
                    Route::Node {
                        part: lead.clone(),
                        lead,
                        token,
                        copies,
                    }
                }
            };
            (action, index, id, route)
        })
        .collect();
    Plan { items, parts }
}

/// Each node's outcomes for its part, in the part's order, or why the node failed it.
type Answers = HashMap<String, Result<Vec<Result<Written, ApiError>>, ApiError>>;

/// Puts the parts' outcomes back in request order; an item whose node failed gets that
/// failure as its error. Also gives each item's route back, for replication.
fn reassemble(
    items: Vec<(Action, String, String, Route)>,
    answers: Answers,
) -> Vec<(ItemOutcome, Route)> {
    let mut per_node: HashMap<String, std::vec::IntoIter<Result<Written, ApiError>>> = answers
        .iter()
        .filter_map(|(node, answer)| {
            Some((node.clone(), answer.as_ref().ok()?.clone().into_iter()))
        })
        .collect();
    items
        .into_iter()
        .map(|(action, index, id, route)| {
            let result = match &route {
                Route::Refused(err) => Err(err.clone()),
                Route::Node { part, .. } => match answers.get(part) {
                    Some(Err(err)) => Err(err.clone()),
                    _ => per_node
                        .get_mut(part)
                        .and_then(Iterator::next)
                        .unwrap_or_else(|| Err(ApiError::internal("bulk item was not executed"))),
                },
            };
            let outcome = ItemOutcome {
                action,
                index,
                id,
                result,
            };
            (outcome, route)
        })
        .collect()
}

/// Sends what the leads wrote to the other live copies (one batch per node); an item fewer
/// copies confirmed than it needs becomes a 503.
async fn replicate_items(
    ctx: &ClusterCtx,
    routed: Vec<(ItemOutcome, Route)>,
    refresh: Refresh,
) -> Vec<ItemOutcome> {
    let mut writes = Vec::new();
    let mut owners = Vec::new();
    for (n, (outcome, route)) in routed.iter().enumerate() {
        let (
            Ok(written),
            Route::Node {
                token,
                copies: Some(copies),
                ..
            },
        ) = (&outcome.result, route)
        else {
            continue;
        };
        if let Some(out) = outgoing(&outcome.index, *token, copies, written) {
            writes.push(out);
            owners.push(n);
        }
    }
    let acks = replicate(ctx, writes, refresh).await;
    let mut outcomes: Vec<(ItemOutcome, Route)> = routed;
    for (n, acked) in owners.into_iter().zip(acks) {
        let (outcome, route) = &mut outcomes[n];
        if let Route::Node {
            copies: Some(copies),
            ..
        } = route
            && acked + 1 < copies.required
        {
            outcome.result = Err(copies.short(acked + 1));
        }
    }
    outcomes.into_iter().map(|(o, _)| o).collect()
}

/// Runs a `_bulk` body: every item's outcome, in request order. A malformed body fails whole.
pub async fn bulk(
    ctx: &ClusterCtx,
    default_index: Option<String>,
    params: HashMap<String, String>,
    body: Bytes,
    refresh: Refresh,
) -> Result<Vec<ItemOutcome>, ApiError> {
    let wait = ActiveShards::parse(params.get("wait_for_active_shards").map(String::as_str))?;
    // Parsing a large body is CPU work: off the async workers, at ingest priority.
    let items = ctx
        .leaf
        .ingest
        .run(move || {
            let lines = parse_lines(default_index.as_deref(), &body)?;
            split(&body, lines, &params)
        })
        .await??;
    // Items addressed to an alias go to its write index.
    let alias_map = ctx.leaf.catalog.alias_map().await;
    let mut items = items;
    if !alias_map.is_empty() {
        for (_, index, _, item) in items.iter_mut() {
            let Ok((_, bulk_item)) = item else { continue };
            if alias_map.contains_key(index.as_str()) {
                match crate::aliases::write_target(index, &alias_map) {
                    Ok(target) => {
                        bulk_item.index = target.clone();
                        *index = target;
                    }
                    Err(err) => *item = Err(err),
                }
            }
        }
    }
    let mut indices: Vec<&str> = items
        .iter()
        .filter(|(.., item)| item.is_ok())
        .map(|(_, index, ..)| index.as_str())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    let mut entries: HashMap<String, Arc<IndexEntry>> = HashMap::new();
    for index in indices {
        // Failures show up per item, from the leads.
        let _ = metadata::ensure_index(ctx, index).await;
        if let Some(entry) = ctx.leaf.catalog.get(index).await {
            entries.insert(index.to_string(), entry);
        }
    }
    let view = ctx.view().await;
    let copies = |index: &str, token: u64| -> Result<Option<Copies>, ApiError> {
        let Some(entry) = entries.get(index) else {
            return Ok(None);
        };
        Ok(Some(super::replicate::copies_at(
            &view, entry, token, wait,
        )?))
    };
    let Plan { mut items, parts } = route(items, copies, &view.self_id, || ctx.stamp());
    let parts = parts
        .into_iter()
        .map(|(node, items)| (node.clone(), node, items));
    let (mut answers, failed) = send_parts(ctx, &view, parts.collect(), refresh).await;
    if !failed.is_empty() {
        // Leads that did not answer (dead, not yet known to be): their items go to the next
        // live copy of each, once.
        let retries = reroute(&mut items, failed);
        let (more, failed) = send_parts(ctx, &view, retries, refresh).await;
        answers.extend(more);
        answers.extend(failed.into_iter().map(|(part, (_, err))| (part, Err(err))));
    }
    // This node's part ran in this request's memory account: when it tripped the breaker, the
    // whole request is refused, as Elasticsearch refuses a bulk it has no room for.
    cameodb_memory::check()?;
    let routed = reassemble(items, answers);
    Ok(replicate_items(ctx, routed, refresh).await)
}

/// Parts whose lead did not answer, by part: the items sent, and why.
type Failed = BTreeMap<String, (Vec<BulkItem>, ApiError)>;

/// Sends each part (key, node, items) to its node; returns the answers by part, and the parts
/// whose node did not answer.
async fn send_parts(
    ctx: &ClusterCtx,
    view: &super::router_actor::View,
    parts: Vec<(String, String, Vec<BulkItem>)>,
    refresh: Refresh,
) -> (Answers, Failed) {
    let calls = parts.into_iter().map(|(part, node, items)| async move {
        let call = NodeCall::Bulk(BulkPart {
            items: items.clone(),
            refresh,
        });
        let answer = match view.member(&node) {
            Some(member) => ctx.try_call(member, call, super::CALL_TIMEOUT).await,
            None => Err(super::forgotten(&node)),
        };
        (part, items, answer)
    });
    let mut answers = Answers::new();
    let mut failed = Failed::new();
    for (part, items, answer) in join_all(calls).await {
        let answer = match answer {
            Err(unanswered) => {
                failed.insert(part, (items, unanswered));
                continue;
            }
            Ok(Ok(NodeReply::Bulk(outcomes))) => Ok(outcomes
                .into_iter()
                .map(|o| o.map_err(ApiError::from))
                .collect()),
            Ok(Ok(other)) => Err(other.unexpected("bulk")),
            Ok(Err(err)) => Err(err),
        };
        answers.insert(part, answer);
    }
    (answers, failed)
}

/// Sends the items of the `failed` parts to the next live copy of each (their routes change
/// accordingly); an item left without enough live copies is refused. Returns the new parts.
fn reroute(
    items: &mut [(Action, String, String, Route)],
    failed: Failed,
) -> Vec<(String, String, Vec<BulkItem>)> {
    let dead: Vec<String> = failed
        .keys()
        .filter_map(|part| {
            items.iter().find_map(|(.., route)| match route {
                Route::Node { part: p, lead, .. } if p == part => Some(lead.clone()),
                _ => None,
            })
        })
        .collect();
    let mut sent: BTreeMap<String, (std::vec::IntoIter<BulkItem>, ApiError)> = failed
        .into_iter()
        .map(|(part, (items, err))| (part, (items.into_iter(), err)))
        .collect();
    let mut parts: BTreeMap<String, Vec<BulkItem>> = BTreeMap::new();
    for (.., route) in items.iter_mut() {
        let Route::Node {
            part, lead, copies, ..
        } = route
        else {
            continue;
        };
        let Some((queue, err)) = sent.get_mut(part.as_str()) else {
            continue;
        };
        let Some(item) = queue.next() else {
            continue;
        };
        let next = copies.as_mut().and_then(|copies| {
            copies.live.retain(|m| !dead.contains(m));
            copies.check().ok()?;
            copies.lead().map(String::from)
        });
        match next {
            Some(node) => {
                *part = format!("{node} (retry)");
                *lead = node.clone();
                parts.entry(node).or_default().push(item);
            }
            None => *route = Route::Refused(err.clone()),
        }
    }
    parts
        .into_iter()
        .map(|(node, items)| (format!("{node} (retry)"), node, items))
        .collect()
}

#[cfg(test)]
mod tests {
    use cameodb_storage::WriteResult;
    use proptest::prelude::*;

    use super::*;

    /// Answers a part as an owner would: one outcome per item, in order.
    fn answer_part(items: &[BulkItem]) -> Vec<Result<Written, ApiError>> {
        items
            .iter()
            .map(|item| {
                Ok(Written {
                    id: item.id.clone(),
                    result: WriteResult::Created,
                    seq_no: Some(1),
                    version: Some(1),
                    forced_refresh: false,
                    applied: None,
                })
            })
            .collect()
    }

    fn body_of(items: &[(u8, u8, Option<u16>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(action, index, id) in items {
            let name = ["index", "create", "update", "delete"][usize::from(action % 4)];
            let mut meta = serde_json::Map::new();
            if index % 3 != 0 {
                meta.insert(
                    "_index".into(),
                    serde_json::json!(format!("i{}", index % 3)),
                );
            }
            if let Some(id) = id {
                meta.insert("_id".into(), serde_json::json!(id));
            }
            body.extend_from_slice(serde_json::json!({ name: meta }).to_string().as_bytes());
            body.push(b'\n');
            if name != "delete" {
                body.extend_from_slice(b"{\"doc\":{\"n\":1},\"n\":1}\n");
            }
        }
        body
    }

    proptest! {
        /// Whatever the owners, the answer lists every item once, in request order, under its
        /// action, index and id; items of a node that failed carry that node's error, items
        /// the coordinator refused their own.
        #[test]
        fn split_and_reassembly_keep_request_order(
            items in prop::collection::vec((any::<u8>(), any::<u8>(), prop::option::of(0u16..50)), 0..40),
            nodes in 1usize..5,
            failing in prop::option::of(0usize..5),
        ) {
            let body = body_of(&items);
            let body = Bytes::from(body);
            let lines = parse_lines(Some("p"), &body).expect("parses");
            let expected: Vec<(Action, String)> =
                lines.iter().map(|l| (l.action, l.index.clone().unwrap_or_default())).collect();
            let ring = cameodb_ring::Ring::new((0..nodes).map(|n| format!("n{n}")));
            let copies = |_: &str, token: u64| {
                Ok(Some(Copies::new(&ring, 1, token, 1, |_| true)))
            };
            let unrouted = split(&body, lines, &HashMap::new()).expect("splits");
            let plan = route(unrouted, copies, "n0", cameodb_storage::Stamp::default);
            prop_assert_eq!(plan.items.len(), items.len());
            let failed_node = failing.map(|f| format!("n{f}"));
            let routes: Vec<Option<String>> = plan.items.iter().map(|(_, _, _, r)| match r {
                Route::Node { lead, .. } => Some(lead.clone()),
                Route::Refused(_) => None,
            }).collect();
            let ids: Vec<String> = plan.items.iter().map(|(_, _, id, _)| id.clone()).collect();
            let answers: Answers = plan
                .parts
                .iter()
                .map(|(node, part)| {
                    let answer = if failed_node.as_ref() == Some(node) {
                        Err(ApiError::internal("node lost"))
                    } else {
                        Ok(answer_part(part))
                    };
                    (node.clone(), answer)
                })
                .collect();
            let outcomes: Vec<ItemOutcome> =
                reassemble(plan.items, answers).into_iter().map(|(o, _)| o).collect();
            prop_assert_eq!(outcomes.len(), items.len());
            for (n, outcome) in outcomes.iter().enumerate() {
                prop_assert_eq!(&(outcome.action, outcome.index.clone()), &expected[n]);
                prop_assert_eq!(&outcome.id, &ids[n]);
                match (&routes[n], &outcome.result) {
                    (None, result) => prop_assert!(result.is_err()),
                    (Some(node), Err(_)) => prop_assert_eq!(failed_node.as_ref(), Some(node)),
                    (Some(node), Ok(written)) => {
                        prop_assert_ne!(failed_node.as_ref(), Some(node));
                        prop_assert_eq!(&written.id, &ids[n]);
                    }
                }
            }
        }
    }

    #[test]
    fn items_without_an_id_get_one_their_owner_sees() {
        let body = Bytes::from_static(
            b"{\"index\":{}}\n{\"a\":1}\n{\"delete\":{\"_id\":\"x\"}}\n{\"delete\":{}}\n",
        );
        let lines = parse_lines(Some("p"), &body).expect("parses");
        let items = split(&body, lines, &HashMap::new()).expect("splits");
        let plan = route(
            items,
            |_, _| Ok(None),
            "n0",
            cameodb_storage::Stamp::default,
        );
        let part = &plan.parts["n0"];
        assert_eq!(part[0].id.len(), 22, "a generated id");
        assert_eq!(part[0].id, plan.items[0].2);
        assert_eq!(part[0].index, "p");
        assert_eq!(part[1].id, "x");
        assert_eq!(part.len(), 2, "a delete without an id is refused here");
        assert!(matches!(plan.items[2].3, Route::Refused(_)));
    }
}
