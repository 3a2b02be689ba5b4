//! The `RouterActor`: owns this node's picture of the cluster (members, their states and the
//! ring) and hands request tasks an immutable snapshot of it. Routing decisions are then made
//! in the request's own task, so the actor's mailbox is one cheap hop, never a queue of work.

use std::sync::Arc;

use cameodb_cluster::Member;
use cameodb_ring::Ring;
use kameo::Actor;
use kameo::message::{Context, Message};

/// Gossip key under which a node says whether it has caught up with its peers.
pub const SYNC_KEY: &str = "sync";
/// [`SYNC_KEY`] while a node is still pulling what it missed.
pub const CATCHING_UP: &str = "catching-up";
/// [`SYNC_KEY`] once a full catch-up round found nothing left to read.
pub const CAUGHT_UP: &str = "caught-up";

/// One consistent snapshot of the cluster, as this node sees it.
#[derive(Debug)]
pub struct View {
    /// This node's id (its PeerId), to tell local calls from remote ones.
    pub self_id: String,
    /// Every known member, self included, sorted by id.
    pub members: Vec<Member>,
    /// The ring over every known member. Down and left members keep their token ranges (their
    /// copies are still theirs: nothing moves documents yet); requests go to the other live
    /// copies, and fail loudly when a range has none.
    pub ring: Ring,
}

impl View {
    /// A view of `members` (which include this node).
    pub fn new(self_id: String, members: Vec<Member>) -> View {
        let ring = Ring::new(members.iter().map(|m| m.id.as_str()));
        View {
            self_id,
            members,
            ring,
        }
    }

    /// True when no other node takes part: requests then take the single-node path.
    pub fn is_single(&self) -> bool {
        self.ring.members().len() <= 1
    }

    /// The member called `id`.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Whether `id` can take calls now: this node, or a member that is up.
    pub fn is_live(&self, id: &str) -> bool {
        self.member(id)
            .is_some_and(|m| m.is_self || m.state == cameodb_cluster::MemberState::Up)
    }

    /// Whether `id` has caught up with its peers (see `health`). A node that has said nothing
    /// yet counts as caught up: a node starts by saying it is catching up, so silence means
    /// one that never needed to (no replicated index).
    pub fn is_synced(&self, id: &str) -> bool {
        self.member(id)
            .is_some_and(|m| m.values.get(SYNC_KEY).map(String::as_str) != Some(CATCHING_UP))
    }

    /// The ring an index is placed on: its fixed placement, or the live ring.
    pub fn ring_of<'a>(&'a self, placement: Option<&'a Ring>) -> &'a Ring {
        placement.unwrap_or(&self.ring)
    }

    /// The live members of `ring`, in id order turned left by `turn` (spreads searches over
    /// the copies).
    pub fn live_order(&self, ring: &Ring, turn: usize) -> Vec<String> {
        let mut order: Vec<String> = ring
            .members()
            .iter()
            .filter(|id| self.is_live(id))
            .cloned()
            .collect();
        if !order.is_empty() {
            let by = turn % order.len();
            order.rotate_left(by);
        }
        order
    }

    /// The members holding data: every member on the ring.
    pub fn data_members(&self) -> Vec<&Member> {
        self.ring
            .members()
            .iter()
            .filter_map(|id| self.member(id))
            .collect()
    }
}

/// Keeps the latest [`View`].
pub struct RouterActor {
    /// The current snapshot; replaced whole on every membership change.
    view: Arc<View>,
}

impl Actor for RouterActor {
    type Args = Arc<View>;
    type Error = kameo::error::Infallible;

    async fn on_start(
        view: Self::Args,
        _: kameo::actor::ActorRef<Self>,
    ) -> Result<Self, Self::Error> {
        Ok(RouterActor { view })
    }
}

/// Asks for the current view.
pub struct GetView;

impl Message<GetView> for RouterActor {
    type Reply = Arc<View>;

    async fn handle(&mut self, _: GetView, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        Arc::clone(&self.view)
    }
}

/// Membership changed: the new member list.
pub struct MembersChanged(pub Vec<Member>);

impl Message<MembersChanged> for RouterActor {
    type Reply = ();

    async fn handle(
        &mut self,
        MembersChanged(members): MembersChanged,
        _: &mut Context<Self, Self::Reply>,
    ) {
        self.view = Arc::new(View::new(self.view.self_id.clone(), members));
    }
}
