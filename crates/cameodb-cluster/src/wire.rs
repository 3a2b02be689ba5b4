//! Wire format of node-to-node calls: opaque payloads carried over libp2p.
//!
//! The server encodes its typed node-to-node messages into the payload; this crate moves bytes
//! between members and knows nothing of the API, so new calls need no change here.

use serde::{Deserialize, Serialize};

/// libp2p protocol name of the request-response RPC; versioned so the format can evolve.
pub const RPC_PROTOCOL: &str = "/cameodb/rpc/2";

/// Largest encoded request or response accepted (128 MiB): bulk sub-batches can reach 100 MB.
pub const MAX_MESSAGE_BYTES: u64 = 128 * 1024 * 1024;

/// A call to another node: a message the layer above encoded; this crate never looks inside.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireRequest {
    /// The encoded call; `serde_bytes` makes CBOR carry it as one byte string, not an int array.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl WireRequest {
    /// A call carrying `payload`.
    pub fn new(payload: Vec<u8>) -> WireRequest {
        WireRequest { payload }
    }
}

/// What came back for a [`WireRequest`]: the handler's answer, or why there is none.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum WireResponse {
    /// The handler's encoded answer (which may itself describe an error of the layer above).
    Answer(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The callee refused the caller: it is not a member of the cluster.
    Refused {
        /// Why, for the caller's error message.
        reason: String,
    },
    /// The handler failed without an answer (it panicked).
    Failed {
        /// What went wrong, for the caller's error message.
        reason: String,
    },
}
