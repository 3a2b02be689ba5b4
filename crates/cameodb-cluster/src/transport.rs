//! libp2p transport: TCP + noise + yamux carrying the `/cameodb/rpc/1` request-response protocol.
//!
//! The swarm lives in a single tokio task. The public API talks to it over a command channel
//! with oneshot replies, and inbound requests are handled in their own tasks whose responses
//! come back over a second channel, so a slow handler never stalls the swarm loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{
    self, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel,
};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, trace, warn};

use crate::RequestHandler;
use crate::codec::WireCodec;
use crate::error::ClusterError;
use crate::membership::Membership;
use crate::wire::{RPC_PROTOCOL, WireRequest, WireResponse};

/// The swarm's behaviour: request-response with CBOR-encoded wire messages.
pub(crate) type Behaviour = request_response::Behaviour<WireCodec>;

/// Substreams allowed per connection (inbound + outbound) by request-response and yamux.
/// Bulk fans out many parallel requests; callers additionally cap in-flight requests per peer
/// with [`MAX_IN_FLIGHT_PER_PEER`] so both sides together stay under this.
const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// Outbound requests in flight to one peer; beyond this, callers queue (see `Cluster::request`).
pub(crate) const MAX_IN_FLIGHT_PER_PEER: usize = 256;

/// Idle connections stay open this long so repeated calls skip the TCP + noise handshake.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(300);

/// Capacity of the command channel into the swarm task.
const COMMAND_CHANNEL_CAPACITY: usize = 1024;

/// Requests sent from the public API to the swarm task.
pub(crate) enum Command {
    /// Send `request` to `peer`, dialing `addrs` if there is no connection yet.
    Request {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: WireRequest,
        reply: oneshot::Sender<Result<WireResponse, ClusterError>>,
    },
    /// Stop the swarm loop, failing pending requests, and acknowledge.
    Shutdown { done: oneshot::Sender<()> },
}

/// Converts a socket address to the libp2p TCP multiaddr used to dial it.
pub(crate) fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr {
        SocketAddr::V4(v4) => Protocol::Ip4(*v4.ip()),
        SocketAddr::V6(v6) => Protocol::Ip6(*v6.ip()),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// Builds the swarm and binds its TCP listener on `bind_addr` (synchronously, so a taken port
/// is reported here as [`ClusterError::Bind`]).
/// With `prologue` (derived from the cluster secret), a peer that does not mix the same bytes
/// into its noise handshake fails it: no connection, no request.
pub(crate) fn build_swarm(
    keypair: Keypair,
    bind_addr: SocketAddr,
    stream_timeout: Duration,
    prologue: Option<[u8; 32]>,
) -> Result<Swarm<Behaviour>, ClusterError> {
    let codec = WireCodec;
    let config = request_response::Config::default()
        .with_request_timeout(stream_timeout)
        .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let behaviour = Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(RPC_PROTOCOL), ProtocolSupport::Full)],
        config,
    );
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            |key: &Keypair| {
                let config = noise::Config::new(key)?;
                Ok::<_, noise::Error>(match prologue {
                    Some(prologue) => config.with_prologue(prologue.to_vec()),
                    None => config,
                })
            },
            || {
                let mut config = yamux::Config::default();
                config.set_max_num_streams(MAX_STREAMS_PER_CONNECTION);
                config
            },
        )
        .map_err(|error| ClusterError::Startup(format!("noise setup failed: {error}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|error| ClusterError::Startup(format!("behaviour setup failed: {error}")))?
        .with_swarm_config(|config| {
            config
                .with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                .with_max_negotiating_inbound_streams(MAX_STREAMS_PER_CONNECTION)
        })
        .build();
    swarm
        .listen_on(tcp_multiaddr(bind_addr))
        .map_err(|error| ClusterError::Bind {
            addr: bind_addr,
            reason: error.to_string(),
        })?;
    Ok(swarm)
}

/// Spawns the swarm loop; returns its command sender and task handle.
pub(crate) fn spawn(
    swarm: Swarm<Behaviour>,
    handler: Arc<dyn RequestHandler>,
    membership: Arc<Membership>,
    stream_timeout: Duration,
) -> (mpsc::Sender<Command>, JoinHandle<()>) {
    let (command_tx, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let task = tokio::spawn(
        SwarmLoop {
            swarm,
            handler,
            membership,
            stream_timeout,
            pending: HashMap::new(),
            dial_errors: HashMap::new(),
        }
        .run(command_rx),
    );
    (command_tx, task)
}

/// An outbound request waiting for its response.
struct Pending {
    peer: PeerId,
    reply: oneshot::Sender<Result<WireResponse, ClusterError>>,
}

/// A handler's response on its way back to the swarm task.
type Outgoing = (PeerId, ResponseChannel<WireResponse>, WireResponse);

struct SwarmLoop {
    swarm: Swarm<Behaviour>,
    handler: Arc<dyn RequestHandler>,
    /// Who may call: only members are served.
    membership: Arc<Membership>,
    stream_timeout: Duration,
    pending: HashMap<OutboundRequestId, Pending>,
    /// Last dial error per peer, so a request's dial failure can say why.
    dial_errors: HashMap<PeerId, String>,
}

impl SwarmLoop {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let (response_tx, mut response_rx) = mpsc::unbounded_channel::<Outgoing>();
        let mut done_ack = None;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event, &response_tx),
                command = commands.recv() => match command {
                    Some(Command::Request { peer, addrs, request, reply }) => {
                        if !self.swarm.is_connected(&peer) {
                            // Dial from a fresh port. libp2p's default dials from the listen
                            // port, so every connection to one peer has the same TCP 4-tuple,
                            // and a redial while the last one is still taken (TIME_WAIT after a
                            // close, or a crossing dial) fails with "address already in use".
                            // The behaviour's own dial for this request is then refused as a
                            // duplicate, which it ignores, and the request waits for ours.
                            let dial = DialOpts::peer_id(peer)
                                .addresses(addrs.clone())
                                .allocate_new_port()
                                .build();
                            if let Err(error) = self.swarm.dial(dial) {
                                debug!(peer = %peer, error = %error, "dial not started");
                            }
                        }
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .send_request_with_addresses(&peer, request, addrs);
                        self.pending.insert(id, Pending { peer, reply });
                    }
                    Some(Command::Shutdown { done }) => {
                        done_ack = Some(done);
                        break;
                    }
                    None => break,
                },
                Some((peer, channel, response)) = response_rx.recv() => {
                    if self.swarm.behaviour_mut().send_response(channel, response).is_err() {
                        debug!(peer = %peer, "response dropped: the requester went away");
                    }
                }
            }
        }
        for (_, pending) in self.pending.drain() {
            let peer = pending.peer.to_base58();
            let _ = pending.reply.send(Err(ClusterError::ShutDown { peer }));
        }
        drop(self.swarm);
        info!("cluster transport stopped");
        if let Some(done) = done_ack {
            let _ = done.send(());
        }
    }

    fn on_event(
        &mut self,
        event: SwarmEvent<request_response::Event<WireRequest, WireResponse>>,
        response_tx: &mpsc::UnboundedSender<Outgoing>,
    ) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event, response_tx),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(address = %address, "cluster transport listening");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, address = %endpoint.get_remote_address(), "connection established");
                self.dial_errors.remove(&peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                debug!(peer = %peer_id, cause = ?cause, "connection closed");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, error = %error, "outgoing connection failed");
                // (A refused duplicate dial never gets here: `Swarm::dial` returns it, and the
                // swarm drops it for dials a behaviour asks for.)
                if let Some(peer) = peer_id {
                    self.dial_errors.insert(peer, error.to_string());
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(address = %send_back_addr, error = %error, "incoming connection failed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                warn!(error = %error, "cluster listener error");
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(addresses = ?addresses, reason = ?reason, "cluster listener closed");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(
        &mut self,
        event: request_response::Event<WireRequest, WireResponse>,
        response_tx: &mpsc::UnboundedSender<Outgoing>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.spawn_handler(peer, request, channel, response_tx.clone()),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(pending) = self.pending.remove(&request_id) {
                        // The caller may have timed out and gone; nothing to do then.
                        let _ = pending.reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(peer = %peer, error = %error, "outbound request failed");
                let dial_error = self.dial_errors.get(&peer).cloned();
                if let Some(pending) = self.pending.remove(&request_id) {
                    let error = outbound_error(peer, error, dial_error, self.stream_timeout);
                    let _ = pending.reply.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                trace!(peer = %peer, "response sent");
            }
        }
    }

    fn spawn_handler(
        &self,
        peer: PeerId,
        request: WireRequest,
        channel: ResponseChannel<WireResponse>,
        response_tx: mpsc::UnboundedSender<Outgoing>,
    ) {
        let handler = self.handler.clone();
        let membership = Arc::clone(&self.membership);
        tokio::spawn(async move {
            let from = peer.to_base58();
            trace!(peer = %from, bytes = request.payload.len(), "inbound request");
            if !membership.admits(&from).await {
                warn!(peer = %from, "refused a request from a node that is not a member");
                let refused = WireResponse::Refused {
                    reason: "only members of this cluster may call it".into(),
                };
                let _ = response_tx.send((peer, channel, refused));
                return;
            }
            let handled = AssertUnwindSafe(async move { handler.handle(from, request).await })
                .catch_unwind()
                .await;
            let response = handled.unwrap_or_else(|_| {
                error!(peer = %peer, "request handler panicked");
                WireResponse::Failed {
                    reason: "request handler panicked".into(),
                }
            });
            // Fails only when the swarm task is gone, in which case the stream is gone too.
            let _ = response_tx.send((peer, channel, response));
        });
    }
}

fn outbound_error(
    peer: PeerId,
    error: OutboundFailure,
    dial_error: Option<String>,
    timeout: Duration,
) -> ClusterError {
    let peer = peer.to_base58();
    let reason = match error {
        OutboundFailure::Timeout => return ClusterError::Timeout { peer, timeout },
        OutboundFailure::DialFailure => match dial_error {
            Some(detail) => format!("dial failed: {detail}"),
            None => "dial failed".to_string(),
        },
        OutboundFailure::ConnectionClosed => {
            "connection closed before the response arrived".to_string()
        }
        OutboundFailure::UnsupportedProtocols => {
            format!("peer does not support {RPC_PROTOCOL}")
        }
        OutboundFailure::Io(error) => format!("stream error: {error}"),
    };
    ClusterError::ConnectionFailed { peer, reason }
}
