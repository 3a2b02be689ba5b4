//! CameoDB's node-to-node layer.
//!
//! Each CameoDB node is a process; this crate lets nodes find each other and call each other:
//! - identity: a persistent ed25519 keypair whose PeerId is the node id ([`load_or_create_identity`]);
//! - membership: chitchat scuttlebutt gossip over UDP with phi-accrual failure detection
//!   ([`Cluster::members`], [`Cluster::watch`]);
//! - transport: "HTTP requests over libp2p" (TCP + noise + yamux, request-response with CBOR),
//!   where the receiving node runs the request through its own HTTP router ([`RequestHandler`]).
//!
//! libp2p (TCP) and chitchat (UDP) share one port number, the node's cluster address.

#![warn(missing_docs)]

mod codec;
mod counting;
mod error;
mod identity;
mod membership;
mod sealed;
mod secret;
mod transport;
mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::transport::UdpTransport;
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, ProtocolVersion,
    spawn_chitchat,
};
use futures::future::BoxFuture;
use libp2p::PeerId;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use crate::error::ClusterError;
pub use crate::identity::{NODE_KEY_FILE, load_or_create_identity};
pub use crate::membership::{GossipState, Member, MemberState};
pub use crate::sealed::MAX_AGE as MAX_GOSSIP_CLOCK_SKEW;
pub use crate::secret::{ClusterSecret, MIN_SECRET_BYTES};
pub use crate::wire::{MAX_MESSAGE_BYTES, RPC_PROTOCOL, WireRequest, WireResponse};
/// The node identity type, re-exported so callers need no libp2p dependency of their own.
pub use libp2p::identity::Keypair;

use crate::membership::{KEY_HTTP_ADDR, KEY_PEER_ID, KEY_STATUS, Membership, VALUE_PREFIX};
use crate::transport::{Command, MAX_IN_FLIGHT_PER_PEER};

/// Upper bound on a request's life inside libp2p (both the caller's wait and the callee's
/// handler). Per-call deadlines are enforced above it, so this only has to be at least as long as
/// any deadline a caller may ask for.
const TRANSPORT_STREAM_TIMEOUT: Duration = Duration::from_secs(600);

/// What a node does with an inbound request (implemented by the server).
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles `request` sent by the node whose id is `from`, and produces the response to send
    /// back. Runs in its own task, so it may take as long as it needs without blocking others.
    fn handle(&self, from: String, request: WireRequest) -> BoxFuture<'static, WireResponse>;
}

/// Everything needed to start a node's cluster layer.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The node's identity; its PeerId is the node id everywhere in the cluster.
    pub keypair: libp2p::identity::Keypair,
    /// Where to bind TCP (libp2p) and UDP (chitchat). With port 0 a port free for both is picked.
    pub cluster_addr: SocketAddr,
    /// Address other nodes should gossip with and dial, when it differs from `cluster_addr`
    /// (e.g. binding 0.0.0.0). `None` uses `cluster_addr` (loopback if it is unspecified).
    pub advertise_addr: Option<SocketAddr>,
    /// This node's HTTP address (host:port), gossiped so peers can redirect clients to it.
    pub http_addr: String,
    /// "host:port" of other nodes' cluster addresses to gossip with first; empty makes this node
    /// a cluster of one that is up at once.
    pub seeds: Vec<String>,
    /// Name of the cluster; nodes only gossip with nodes of the same cluster id.
    pub cluster_id: String,
    /// Gossip round period; sets both convergence speed and failure-detection speed.
    pub gossip_interval: Duration,
    /// Default deadline for [`Cluster::request`].
    pub request_timeout: Duration,
    /// How long a seeded node stays joining when it hears from nobody before declaring itself
    /// up anyway, so a node whose seeds are all down still becomes usable.
    pub join_timeout: Duration,
    /// Phi-accrual threshold: a peer is down after about `phi_threshold` × its mean heartbeat
    /// interval of silence. Higher means slower but less flappy detection.
    pub phi_threshold: f64,
    /// The cluster secret. With it, libp2p connections from peers without it fail their noise
    /// handshake and gossip datagrams not sealed with it are dropped; without it (loopback-only
    /// clusters) any process that can reach the port may join.
    pub secret: Option<ClusterSecret>,
}

impl ClusterConfig {
    /// A config with defaults: cluster id "cameodb", 200 ms gossip, 30 s request timeout, 3 s
    /// join timeout, no seeds.
    pub fn new(
        keypair: libp2p::identity::Keypair,
        cluster_addr: SocketAddr,
        http_addr: impl Into<String>,
    ) -> Self {
        ClusterConfig {
            keypair,
            cluster_addr,
            advertise_addr: None,
            http_addr: http_addr.into(),
            seeds: Vec::new(),
            cluster_id: "cameodb".to_string(),
            gossip_interval: Duration::from_millis(200),
            request_timeout: Duration::from_secs(30),
            join_timeout: Duration::from_secs(3),
            phi_threshold: DEFAULT_PHI_THRESHOLD,
            secret: None,
        }
    }
}

/// Default phi threshold, see [`ClusterConfig::phi_threshold`]. Chitchat's phi is "silence /
/// mean heartbeat interval"; peers observe a heartbeat about every gossip interval, so 16 marks a
/// killed node down within a few seconds at 200 ms gossip (2.0–3.6 s seen in the tests): well inside the 10 s target while
/// tolerating multi-second stalls of a busy node without flapping.
pub const DEFAULT_PHI_THRESHOLD: f64 = 16.0;

/// A node's gossip figures (see [`Cluster::gossip_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GossipStats {
    /// Datagrams sent since start.
    pub sent: u64,
    /// Bytes sent since start.
    pub sent_bytes: u64,
    /// Datagrams received since start.
    pub received: u64,
    /// Bytes received since start.
    pub received_bytes: u64,
    /// The gossip state held now.
    pub state: membership::GossipState,
}

/// A running cluster layer: membership view plus node-to-node requests. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    self_id: String,
    cluster_addr: SocketAddr,
    handler: Arc<dyn RequestHandler>,
    commands: mpsc::Sender<Command>,
    membership: Arc<Membership>,
    chitchat: Mutex<Option<ChitchatHandle>>,
    swarm_task: StdMutex<Option<JoinHandle<()>>>,
    refresh_task: JoinHandle<()>,
    stopped: AtomicBool,
    request_timeout: Duration,
    gossip_interval: Duration,
    peer_limits: StdMutex<HashMap<PeerId, Arc<Semaphore>>>,
    /// Gossip traffic so far.
    gossip: Arc<counting::GossipCounters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the last handle without `shutdown` behaves like a crash: peers notice through
        // failure detection.
        self.refresh_task.abort();
        if let Some(task) = lock(&self.swarm_task).take() {
            task.abort();
        }
        if let Some(chitchat) = self.chitchat.get_mut().take() {
            chitchat.abort();
        }
    }
}

/// Locks `mutex`, going on with the data of a holder that panicked (every critical section
/// leaves it consistent).
pub(crate) fn lock<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cluster {
    /// Binds the cluster address, starts gossip and the libp2p swarm, and returns once both are
    /// running. Inbound requests from other nodes go to `handler`.
    pub async fn start(
        config: ClusterConfig,
        handler: Arc<dyn RequestHandler>,
    ) -> Result<Cluster, ClusterError> {
        validate(&config)?;
        let pick_port = config.cluster_addr.port() == 0;
        let attempts = if pick_port { 10 } else { 1 };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let bind_addr = if pick_port {
                pick_free_port(config.cluster_addr.ip())?
            } else {
                config.cluster_addr
            };
            match Self::start_on(&config, bind_addr, handler.clone()).await {
                Err(ClusterError::Bind { addr, reason }) if attempt < attempts => {
                    debug!(addr = %addr, reason = %reason, "picked port was taken, retrying");
                }
                result => return result,
            }
        }
    }

    async fn start_on(
        config: &ClusterConfig,
        bind_addr: SocketAddr,
        handler: Arc<dyn RequestHandler>,
    ) -> Result<Cluster, ClusterError> {
        let peer_id = config.keypair.public().to_peer_id();
        let self_id = peer_id.to_base58();
        let advertise_addr = advertise_addr(config, bind_addr);

        let stream_timeout = TRANSPORT_STREAM_TIMEOUT.max(config.request_timeout);
        let swarm = transport::build_swarm(
            config.keypair.clone(),
            bind_addr,
            stream_timeout,
            config.secret.as_ref().map(|s| *s.noise_prologue()),
        )?;

        let seeds: Vec<String> = config
            .seeds
            .iter()
            .filter(|seed| {
                let own = seed
                    .parse::<SocketAddr>()
                    .is_ok_and(|addr| addr == advertise_addr || addr == bind_addr);
                !own
            })
            .cloned()
            .collect();
        let initial_status = if seeds.is_empty() {
            MemberState::Up
        } else {
            MemberState::Joining
        };
        let generation_id = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or_default();
        let chitchat_id = ChitchatId::new(self_id.clone(), generation_id, advertise_addr);
        let chitchat_config = ChitchatConfig {
            chitchat_id: chitchat_id.clone(),
            cluster_id: config.cluster_id.clone(),
            gossip_interval: config.gossip_interval,
            listen_addr: bind_addr,
            seed_nodes: seeds.clone(),
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: config.phi_threshold,
                sampling_window_size: 1_000,
                max_interval: Duration::from_secs(10),
                initial_interval: config.gossip_interval,
                // Keep dead nodes listed (as down) instead of forgetting them.
                dead_node_grace_period: Duration::from_secs(3600),
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V1,
        };
        let initial_key_values = vec![
            (KEY_PEER_ID.to_string(), self_id.clone()),
            (KEY_HTTP_ADDR.to_string(), config.http_addr.clone()),
            (KEY_STATUS.to_string(), initial_status.as_str().to_string()),
        ];
        let inner: Box<dyn chitchat::transport::Transport> = match &config.secret {
            Some(secret) => Box::new(sealed::SealedTransport {
                key: *secret.gossip_key(),
            }),
            None => Box::new(UdpTransport),
        };
        let gossip = Arc::new(counting::GossipCounters::default());
        let gossip_transport = counting::CountingTransport {
            inner,
            counters: Arc::clone(&gossip),
        };
        let chitchat = spawn_chitchat(chitchat_config, initial_key_values, &gossip_transport)
            .await
            .map_err(|error| ClusterError::Bind {
                addr: bind_addr,
                reason: format!("{error:#}"),
            })?;

        let membership = Arc::new(Membership::new(
            chitchat.chitchat(),
            chitchat_id,
            config.join_timeout,
            (config.gossip_interval * 10).max(Duration::from_secs(2)),
        ));
        membership.refresh().await;
        let refresh_task = tokio::spawn(refresh_loop(membership.clone(), config.gossip_interval));

        let (commands, swarm_task) = transport::spawn(
            swarm,
            handler.clone(),
            Arc::clone(&membership),
            stream_timeout,
        );

        info!(
            peer_id = %self_id,
            cluster_addr = %advertise_addr,
            bind_addr = %bind_addr,
            http_addr = %config.http_addr,
            seeds = ?seeds,
            status = %initial_status,
            secret = config.secret.is_some(),
            "cluster layer started"
        );
        Ok(Cluster {
            inner: Arc::new(Inner {
                self_id,
                cluster_addr: advertise_addr,
                handler,
                commands,
                membership,
                chitchat: Mutex::new(Some(chitchat)),
                swarm_task: StdMutex::new(Some(swarm_task)),
                refresh_task,
                stopped: AtomicBool::new(false),
                request_timeout: config.request_timeout,
                gossip_interval: config.gossip_interval,
                peer_limits: StdMutex::new(HashMap::new()),
                gossip,
            }),
        })
    }

    /// This node's gossip figures: datagrams and bytes sent and received since it started,
    /// and the size of the gossip state it holds.
    pub async fn gossip_stats(&self) -> GossipStats {
        let counters = &self.inner.gossip;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        GossipStats {
            sent: load(&counters.sent),
            sent_bytes: load(&counters.sent_bytes),
            received: load(&counters.received),
            received_bytes: load(&counters.received_bytes),
            state: self.inner.membership.state_size().await,
        }
    }

    /// This node's id (PeerId base58), as it appears in [`Member::id`].
    pub fn self_id(&self) -> &str {
        &self.inner.self_id
    }

    /// The cluster address this node advertises (actual port when 0 was configured), which
    /// other nodes use as a seed.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.inner.cluster_addr
    }

    /// All known members including self, sorted by id; refreshed every gossip interval (and at
    /// once after [`Cluster::set_value`]). Frozen after [`Cluster::shutdown`].
    pub fn members(&self) -> Vec<Member> {
        self.inner.membership.members()
    }

    /// A receiver that changes whenever membership, a state or a published value changes.
    pub fn watch(&self) -> watch::Receiver<Vec<Member>> {
        self.inner.membership.subscribe()
    }

    /// Sends `request` to member `peer_id` and waits for its response, with the default timeout.
    pub async fn request(
        &self,
        peer_id: &str,
        request: WireRequest,
    ) -> Result<WireResponse, ClusterError> {
        self.request_with_timeout(peer_id, request, self.inner.request_timeout)
            .await
    }

    /// Sends `request` to member `peer_id` (dialing its gossiped cluster address if not
    /// connected) and waits at most `timeout` for its response. A request to this node's own id
    /// goes straight to the local handler. Down or left members fail at once without a dial.
    /// Deadlines beyond the transport's stream limit (the longer of 10 minutes and the configured
    /// request timeout) end at that limit.
    pub async fn request_with_timeout(
        &self,
        peer_id: &str,
        request: WireRequest,
        timeout: Duration,
    ) -> Result<WireResponse, ClusterError> {
        let peer = peer_id.to_string();
        if self.inner.stopped.load(Ordering::Acquire) {
            return Err(ClusterError::ShutDown { peer });
        }
        if peer_id == self.inner.self_id {
            let call = self.inner.handler.handle(peer.clone(), request);
            return tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| ClusterError::Timeout { peer, timeout });
        }
        let (state, cluster_addr) = self
            .inner
            .membership
            .lookup(peer_id)
            .ok_or_else(|| ClusterError::UnknownPeer { peer: peer.clone() })?;
        match state {
            MemberState::Down => return Err(ClusterError::PeerDown { peer }),
            MemberState::Left => return Err(ClusterError::PeerLeft { peer }),
            MemberState::Joining | MemberState::Up => {}
        }
        let target: PeerId = peer_id
            .parse()
            .map_err(|_| ClusterError::UnknownPeer { peer: peer.clone() })?;
        let limit = self.peer_limit(target);
        let call = async {
            let _permit = limit
                .acquire_owned()
                .await
                .map_err(|_| ClusterError::ShutDown { peer: peer.clone() })?;
            let (reply, response) = oneshot::channel();
            let command = Command::Request {
                peer: target,
                addrs: vec![transport::tcp_multiaddr(cluster_addr)],
                request,
                reply,
            };
            self.inner
                .commands
                .send(command)
                .await
                .map_err(|_| ClusterError::ShutDown { peer: peer.clone() })?;
            response
                .await
                .map_err(|_| ClusterError::ShutDown { peer: peer.clone() })?
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => {
                debug!(peer = %peer, timeout = ?timeout, "request timed out");
                Err(ClusterError::Timeout { peer, timeout })
            }
        }
    }

    fn peer_limit(&self, peer: PeerId) -> Arc<Semaphore> {
        lock(&self.inner.peer_limits)
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_PEER)))
            .clone()
    }

    /// Publishes `key` = `value` in this node's gossip state (e.g. index metadata digests); it
    /// shows up in every node's [`Member::values`]. Keep values small (< 1 KB).
    pub async fn set_value(&self, key: &str, value: &str) {
        self.inner
            .membership
            .set_self_key(&format!("{VALUE_PREFIX}{key}"), value)
            .await;
    }

    /// Leaves gracefully: publishes status "left", gives gossip time to spread it, then stops
    /// gossip and the swarm. Requests fail with [`ClusterError::ShutDown`] afterwards.
    pub async fn shutdown(&self) {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        info!(peer_id = %self.inner.self_id, "leaving the cluster");
        self.inner
            .membership
            .set_self_key(KEY_STATUS, MemberState::Left.as_str())
            .await;
        tokio::time::sleep(self.inner.gossip_interval * 2).await;
        self.inner.refresh_task.abort();
        if let Some(chitchat) = self.inner.chitchat.lock().await.take()
            && let Err(error) = chitchat.shutdown().await
        {
            warn!(error = %error, "gossip server stopped with an error");
        }
        let (done, stopped) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Shutdown { done })
            .await
            .is_ok()
        {
            let _ = stopped.await;
        }
        lock(&self.inner.swarm_task).take();
        info!(peer_id = %self.inner.self_id, "cluster layer stopped");
    }

    /// Stops everything at once without telling anyone, like a crash; peers find out through
    /// failure detection. Meant for tests and fatal errors; prefer [`Cluster::shutdown`].
    pub fn abort(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.inner.refresh_task.abort();
        if let Some(task) = lock(&self.inner.swarm_task).take() {
            task.abort();
        }
        if let Ok(mut chitchat) = self.inner.chitchat.try_lock()
            && let Some(chitchat) = chitchat.take()
        {
            chitchat.abort();
        }
    }
}

/// Rejects settings that would panic or make the node unusable later.
fn validate(config: &ClusterConfig) -> Result<(), ClusterError> {
    if config.gossip_interval.is_zero() {
        return Err(ClusterError::InvalidConfig(
            "gossip_interval must be positive".to_string(),
        ));
    }
    if config.request_timeout.is_zero() {
        return Err(ClusterError::InvalidConfig(
            "request_timeout must be positive".to_string(),
        ));
    }
    let ip = config.cluster_addr.ip();
    if config.secret.is_none() && !ip.is_loopback() {
        return Err(ClusterError::InvalidConfig(format!(
            "the cluster address {} is not a loopback address, so a cluster secret is required: without one any process that can reach the port could join",
            config.cluster_addr
        )));
    }
    if !(config.phi_threshold.is_finite() && config.phi_threshold > 0.0) {
        return Err(ClusterError::InvalidConfig(format!(
            "phi_threshold must be a positive number, got {}",
            config.phi_threshold
        )));
    }
    Ok(())
}

/// Recomputes the member list every gossip interval.
async fn refresh_loop(membership: Arc<Membership>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        membership.refresh().await;
    }
}

/// The address peers should use: the configured advertise address, else the bound address with
/// an unspecified IP replaced by loopback (only reachable locally, hence the warning).
fn advertise_addr(config: &ClusterConfig, bind_addr: SocketAddr) -> SocketAddr {
    if let Some(addr) = config.advertise_addr {
        return addr;
    }
    if bind_addr.ip().is_unspecified() {
        let loopback = match bind_addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let addr = SocketAddr::new(loopback, bind_addr.port());
        warn!(bind_addr = %bind_addr, advertise_addr = %addr, "cluster address is unspecified and no advertise address is set; advertising loopback");
        return addr;
    }
    bind_addr
}

/// Finds a port free for both UDP and TCP on `ip`: binds UDP on port 0, then TCP on that port.
fn pick_free_port(ip: IpAddr) -> Result<SocketAddr, ClusterError> {
    let mut last_error = String::new();
    let bind_err = |error: std::io::Error| ClusterError::Bind {
        addr: SocketAddr::new(ip, 0),
        reason: error.to_string(),
    };
    for _ in 0..32 {
        let udp = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        match std::net::TcpListener::bind(addr) {
            Ok(_) => return Ok(addr),
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(ClusterError::Bind {
        addr: SocketAddr::new(ip, 0),
        reason: format!("no port free for both udp and tcp: {last_error}"),
    })
}
