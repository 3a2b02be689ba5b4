//! Errors of the cluster layer.

use std::net::SocketAddr;
use std::time::Duration;

/// Why starting the cluster layer or a node-to-node request failed.
///
/// Request failures are distinct variants so the HTTP layer can map them to distinct status
/// codes (e.g. unknown peer → 404-ish, down → 503, timeout → 504) and each names the peer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A [`crate::ClusterConfig`] setting is out of range (e.g. a zero gossip interval).
    #[error("invalid cluster config: {0}")]
    InvalidConfig(String),
    /// The TCP (libp2p) or UDP (gossip) socket could not be bound on the cluster address.
    #[error("failed to bind cluster address {addr}: {reason}")]
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The underlying error, as text.
        reason: String,
    },
    /// The libp2p transport or gossip server could not be set up for a reason other than binding.
    #[error("failed to start the cluster layer: {0}")]
    Startup(String),
    /// The target is not (or no longer) a known member, or its id is not a valid PeerId.
    #[error("unknown peer {peer}")]
    UnknownPeer {
        /// The id the caller asked for.
        peer: String,
    },
    /// The failure detector considers the target dead; no request was attempted.
    #[error("peer {peer} is down")]
    PeerDown {
        /// The unreachable peer.
        peer: String,
    },
    /// The target announced a graceful departure; no request was attempted.
    #[error("peer {peer} has left the cluster")]
    PeerLeft {
        /// The departed peer.
        peer: String,
    },
    /// No response arrived in time; the request may or may not have been processed.
    #[error("request to peer {peer} timed out after {timeout:?}")]
    Timeout {
        /// The peer that did not answer.
        peer: String,
        /// The deadline that expired.
        timeout: Duration,
    },
    /// Dialing, the connection or the stream failed (refused, reset, closed, oversize message).
    #[error("connection to peer {peer} failed: {reason}")]
    ConnectionFailed {
        /// The peer that could not be reached.
        peer: String,
        /// What went wrong, as text.
        reason: String,
    },
    /// This node's cluster layer was shut down, so it can no longer send requests.
    #[error("cannot reach peer {peer}: the cluster layer is shut down")]
    ShutDown {
        /// The peer the caller asked for.
        peer: String,
    },
}
