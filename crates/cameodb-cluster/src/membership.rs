//! Membership: chitchat gossip state turned into a deterministic, deduplicated member list.
//!
//! Chitchat tracks one entry per (node id, generation); the failure detector splits them into
//! live and dead. This module maps that onto [`Member`]s: live nodes report their published
//! status, dead ones are `down` (or `left` if they said goodbye), and a restarted node's older
//! generation is hidden behind the newest one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use chitchat::{Chitchat, ChitchatId};
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;
use tracing::{debug, info};

/// Gossip key holding the node's PeerId (base58), so peers can verify the chitchat node id.
pub(crate) const KEY_PEER_ID: &str = "peer_id";
/// Gossip key holding the node's advertised HTTP address (host:port).
pub(crate) const KEY_HTTP_ADDR: &str = "http_addr";
/// Gossip key holding the node's self-declared status: joining, up or left.
pub(crate) const KEY_STATUS: &str = "status";
/// Prefix of keys published with `Cluster::set_value`, keeping them apart from internal keys.
pub(crate) const VALUE_PREFIX: &str = "value:";

/// Lifecycle state of a member as seen by this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Started with seeds and has not yet heard from any other node; not ready for traffic.
    Joining,
    /// Alive and serving.
    Up,
    /// The failure detector stopped hearing from it; requests are refused without trying.
    Down,
    /// It announced a graceful shutdown; requests are refused without trying.
    Left,
}

impl MemberState {
    /// Lowercase name, as published in gossip and shown in APIs and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Joining => "joining",
            MemberState::Up => "up",
            MemberState::Down => "down",
            MemberState::Left => "left",
        }
    }

    /// Maps a gossiped `status` value of a live node; unknown values (from a newer version)
    /// count as joining so that such a node gets no traffic until it says `up`.
    fn from_status(status: Option<&str>) -> MemberState {
        match status {
            Some("up") => MemberState::Up,
            Some("left") => MemberState::Left,
            _ => MemberState::Joining,
        }
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node of the cluster, as this node currently sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// PeerId base58 ("12D3KooW..."): stable across restarts, the key for routing requests.
    pub id: String,
    /// Where its libp2p TCP listener and chitchat UDP socket are (same port), used to dial it.
    pub cluster_addr: SocketAddr,
    /// Advertised HTTP address (host:port), so clients can be redirected to it.
    pub http_addr: String,
    /// Lifecycle state, deciding whether it should get traffic.
    pub state: MemberState,
    /// True for this node's own entry, so callers can skip forwarding to themselves.
    pub is_self: bool,
    /// Extra gossip keys the node published with `set_value` (not the internal ones), e.g.
    /// index metadata digests.
    pub values: BTreeMap<String, String>,
}

/// Liveness of one chitchat entry according to the failure detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    Live,
    Dead,
    /// Known but not yet classified (before the detector's first verdict).
    Unknown,
}

/// A copy of one chitchat entry, taken under the chitchat lock and derived from outside it.
#[derive(Clone, Debug)]
pub(crate) struct NodeView {
    pub id: ChitchatId,
    pub key_values: BTreeMap<String, String>,
    pub liveness: Liveness,
}

/// Per-entry history needed to tell "newly discovered" apart from "dead".
#[derive(Default)]
pub(crate) struct Tracker {
    /// Entries this node has seen live at least once.
    seen_live: HashSet<ChitchatId>,
    /// When each entry was first seen.
    first_seen: HashMap<ChitchatId, Instant>,
}

/// Derives the member list: sorted by id, one entry per PeerId (newest generation wins).
///
/// An entry that was never seen live is hidden for `discovery_grace` after discovery: chitchat
/// marks freshly discovered nodes dead until it has two heartbeats, which would otherwise show
/// every joining node briefly as down.
pub(crate) fn derive_members(
    self_id: &ChitchatId,
    views: Vec<NodeView>,
    tracker: &mut Tracker,
    now: Instant,
    discovery_grace: Duration,
) -> Vec<Member> {
    let present: HashSet<ChitchatId> = views.iter().map(|view| view.id.clone()).collect();
    tracker.seen_live.retain(|id| present.contains(id));
    tracker.first_seen.retain(|id, _| present.contains(id));

    let mut newest: BTreeMap<String, (u64, Member)> = BTreeMap::new();
    for view in views {
        let first_seen = *tracker.first_seen.entry(view.id.clone()).or_insert(now);
        let is_self = view.id == *self_id;
        let Some(http_addr) = view.key_values.get(KEY_HTTP_ADDR) else {
            // Heartbeat known but state not received yet: nothing useful to show.
            continue;
        };
        if view.id.node_id.parse::<PeerId>().is_err() {
            debug!(node_id = %view.id.node_id, "ignoring gossip entry whose node id is not a peer id");
            continue;
        }
        let status = view.key_values.get(KEY_STATUS).map(String::as_str);
        let state = if is_self || view.liveness == Liveness::Live {
            tracker.seen_live.insert(view.id.clone());
            MemberState::from_status(status)
        } else if tracker.seen_live.contains(&view.id)
            || now.duration_since(first_seen) >= discovery_grace
        {
            if status == Some("left") {
                MemberState::Left
            } else {
                MemberState::Down
            }
        } else {
            continue;
        };
        let values = view
            .key_values
            .iter()
            .filter_map(|(key, value)| {
                key.strip_prefix(VALUE_PREFIX)
                    .map(|key| (key.to_string(), value.clone()))
            })
            .collect();
        let member = Member {
            id: view.id.node_id.to_string(),
            cluster_addr: view.id.gossip_advertise_addr,
            http_addr: http_addr.clone(),
            state,
            is_self,
            values,
        };
        let generation = view.id.generation_id;
        let replace = match newest.get(&member.id) {
            None => true,
            // Our own entry always wins over other incarnations of ourselves.
            Some((_, existing)) if existing.is_self => false,
            Some(_) if member.is_self => true,
            Some((existing, _)) => generation > *existing,
        };
        if replace {
            newest.insert(member.id.clone(), (generation, member));
        }
    }
    newest.into_values().map(|(_, member)| member).collect()
}

/// Copies chitchat's state into [`NodeView`]s.
fn snapshot(chitchat: &Chitchat) -> Vec<NodeView> {
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    let dead: HashSet<&ChitchatId> = chitchat.dead_nodes().collect();
    chitchat
        .node_states()
        .iter()
        .map(|(id, state)| NodeView {
            id: id.clone(),
            key_values: state
                .key_values()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            liveness: if live.contains(id) {
                Liveness::Live
            } else if dead.contains(id) {
                Liveness::Dead
            } else {
                Liveness::Unknown
            },
        })
        .collect()
}

/// The size of the gossip state a node holds: every node's key-values it knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GossipState {
    /// Nodes in the state (live, dead and not yet judged).
    pub nodes: usize,
    /// Key-values over all of them.
    pub keys: usize,
    /// Bytes of those keys and values.
    pub bytes: usize,
}

/// Publishes the member list derived from chitchat and drives this node's joining → up step.
pub(crate) struct Membership {
    chitchat: Arc<Mutex<Chitchat>>,
    self_id: ChitchatId,
    members_tx: watch::Sender<Vec<Member>>,
    tracker: StdMutex<Tracker>,
    /// After this instant a joining node declares itself up even if it heard from nobody, so a
    /// node whose seeds are all down still becomes usable.
    join_deadline: Instant,
    discovery_grace: Duration,
}

impl Membership {
    pub(crate) fn new(
        chitchat: Arc<Mutex<Chitchat>>,
        self_id: ChitchatId,
        join_timeout: Duration,
        discovery_grace: Duration,
    ) -> Membership {
        let (members_tx, _) = watch::channel(Vec::new());
        Membership {
            chitchat,
            self_id,
            members_tx,
            tracker: StdMutex::new(Tracker::default()),
            join_deadline: Instant::now() + join_timeout,
            discovery_grace,
        }
    }

    /// Latest member list.
    pub(crate) fn members(&self) -> Vec<Member> {
        self.members_tx.borrow().clone()
    }

    /// A receiver notified on every change of the member list.
    /// The state and cluster address of member `id`, read in place (a request's hot path:
    /// no copy of the member list).
    pub(crate) fn lookup(&self, id: &str) -> Option<(MemberState, std::net::SocketAddr)> {
        self.members_tx
            .borrow()
            .iter()
            .find(|member| member.id == id)
            .map(|member| (member.state, member.cluster_addr))
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Vec<Member>> {
        self.members_tx.subscribe()
    }

    /// Whether node `id` is a current member: gossip knows it (with a cluster secret, gossip
    /// only takes sealed datagrams, so only secret holders get there) and it has not left.
    /// Read from gossip's own state, so a node that just joined is admitted before the
    /// member list is next recomputed.
    pub(crate) async fn admits(&self, id: &str) -> bool {
        let chitchat = self.chitchat.lock().await;
        chitchat.node_states().iter().any(|(node, state)| {
            &*node.node_id == id && state.get(KEY_STATUS) != Some(MemberState::Left.as_str())
        })
    }

    /// Sets a key of this node's gossip state and republishes the member list.
    /// The size of the gossip state this node holds.
    pub(crate) async fn state_size(&self) -> GossipState {
        let chitchat = self.chitchat.lock().await;
        let mut out = GossipState::default();
        for state in chitchat.node_states().values() {
            out.nodes += 1;
            for (key, value) in state.key_values() {
                out.keys += 1;
                out.bytes += key.len() + value.len();
            }
        }
        out
    }

    pub(crate) async fn set_self_key(&self, key: &str, value: &str) {
        self.chitchat.lock().await.self_node_state().set(key, value);
        self.refresh().await;
    }

    /// Recomputes the member list (promoting this node to up when due) and publishes it if it
    /// changed.
    pub(crate) async fn refresh(&self) {
        let views = {
            let mut chitchat = self.chitchat.lock().await;
            self.maybe_promote(&mut chitchat);
            snapshot(&chitchat)
        };
        let members = {
            let mut tracker = crate::lock(&self.tracker);
            derive_members(
                &self.self_id,
                views,
                &mut tracker,
                Instant::now(),
                self.discovery_grace,
            )
        };
        self.members_tx.send_if_modified(|current| {
            if *current == members {
                false
            } else {
                debug!(members = members.len(), "membership changed");
                *current = members;
                true
            }
        });
    }

    fn maybe_promote(&self, chitchat: &mut Chitchat) {
        let self_node = chitchat.self_chitchat_id().node_id.clone();
        let joining = chitchat
            .node_state(&self.self_id)
            .and_then(|state| state.get(KEY_STATUS))
            == Some(MemberState::Joining.as_str());
        if !joining {
            return;
        }
        let heard_from_other = chitchat
            .node_states()
            .iter()
            .any(|(id, state)| id.node_id != self_node && state.contains_key(KEY_PEER_ID));
        let timed_out = Instant::now() >= self.join_deadline;
        if heard_from_other || timed_out {
            info!(
                heard_from_other,
                timed_out, "cluster membership joined, status up"
            );
            chitchat
                .self_node_state()
                .set(KEY_STATUS, MemberState::Up.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> String {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
            .to_base58()
    }

    fn view(node: &str, generation: u64, port: u16, status: &str, liveness: Liveness) -> NodeView {
        let mut key_values = BTreeMap::new();
        key_values.insert(KEY_PEER_ID.to_string(), node.to_string());
        key_values.insert(KEY_HTTP_ADDR.to_string(), format!("127.0.0.1:{}", port + 1));
        key_values.insert(KEY_STATUS.to_string(), status.to_string());
        key_values.insert(format!("{VALUE_PREFIX}k"), "v".to_string());
        NodeView {
            id: ChitchatId::new(node, generation, ([127, 0, 0, 1], port).into()),
            key_values,
            liveness,
        }
    }

    #[test]
    fn states_follow_liveness_and_status() {
        let (me, a, b, c) = (peer(), peer(), peer(), peer());
        let self_view = view(&me, 1, 1000, "up", Liveness::Unknown);
        let self_id = self_view.id.clone();
        let mut tracker = Tracker::default();
        let now = Instant::now();
        let grace = Duration::from_secs(2);
        let views = vec![
            self_view.clone(),
            view(&a, 1, 2000, "joining", Liveness::Live),
            view(&b, 1, 3000, "up", Liveness::Live),
            view(&c, 1, 4000, "left", Liveness::Live),
        ];
        let members = derive_members(&self_id, views, &mut tracker, now, grace);
        let states: BTreeMap<_, _> = members.iter().map(|m| (m.id.clone(), m.state)).collect();
        assert_eq!(states[&me], MemberState::Up);
        assert_eq!(states[&a], MemberState::Joining);
        assert_eq!(states[&b], MemberState::Up);
        assert_eq!(states[&c], MemberState::Left);
        assert!(members.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(members[0].values.get("k").map(String::as_str), Some("v"));
        assert!(!members[0].values.contains_key(KEY_STATUS));

        let views = vec![
            self_view,
            view(&b, 1, 3000, "up", Liveness::Dead),
            view(&c, 1, 4000, "left", Liveness::Dead),
        ];
        let members = derive_members(&self_id, views, &mut tracker, now, grace);
        let states: BTreeMap<_, _> = members.iter().map(|m| (m.id.clone(), m.state)).collect();
        assert_eq!(states.len(), 3);
        assert_eq!(states[&b], MemberState::Down);
        assert_eq!(states[&c], MemberState::Left);
    }

    #[test]
    fn fresh_dead_entries_are_hidden_during_grace() {
        let (me, a) = (peer(), peer());
        let self_view = view(&me, 1, 1000, "up", Liveness::Unknown);
        let self_id = self_view.id.clone();
        let mut tracker = Tracker::default();
        let now = Instant::now();
        let grace = Duration::from_secs(2);
        let views = vec![self_view, view(&a, 1, 2000, "up", Liveness::Dead)];
        let members = derive_members(&self_id, views.clone(), &mut tracker, now, grace);
        assert_eq!(members.len(), 1);
        let later = now + Duration::from_secs(3);
        let members = derive_members(&self_id, views, &mut tracker, later, grace);
        assert_eq!(members.len(), 2);
        assert_eq!(
            members.iter().find(|m| m.id == a).map(|m| m.state),
            Some(MemberState::Down)
        );
    }

    #[test]
    fn newest_generation_wins() {
        let (me, a) = (peer(), peer());
        let self_view = view(&me, 1, 1000, "up", Liveness::Unknown);
        let self_id = self_view.id.clone();
        let mut tracker = Tracker::default();
        let views = vec![
            self_view,
            view(&a, 5, 2000, "up", Liveness::Dead),
            view(&a, 9, 2500, "joining", Liveness::Live),
        ];
        let later = Instant::now() + Duration::from_secs(10);
        let members = derive_members(&self_id, views, &mut tracker, later, Duration::ZERO);
        assert_eq!(members.len(), 2);
        let member = members.iter().find(|m| m.id == a).expect("member a");
        assert_eq!(member.state, MemberState::Joining);
        assert_eq!(member.cluster_addr.port(), 2500);
    }
}
