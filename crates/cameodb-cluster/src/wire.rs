//! Wire format of node-to-node calls: an HTTP request/response pair carried over libp2p.
//!
//! Nodes forward HTTP requests to the node that owns the data; that node runs them through its
//! own HTTP router. Carrying plain method/uri/headers/body keeps the cluster layer ignorant of
//! the API surface, so new endpoints need no cluster changes.

use serde::{Deserialize, Serialize};

/// libp2p protocol name of the request-response RPC; versioned so the format can evolve.
pub const RPC_PROTOCOL: &str = "/cameodb/rpc/1";

/// Largest encoded request or response accepted (128 MiB): bulk sub-batches can reach 100 MB.
pub const MAX_MESSAGE_BYTES: u64 = 128 * 1024 * 1024;

/// An HTTP request forwarded to another node.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireRequest {
    /// HTTP method ("GET", "POST", ...), so the owner's router dispatches as for a local call.
    pub method: String,
    /// Path and query ("/idx/_search?q=x"); no scheme or authority, which are node-local.
    pub uri: String,
    /// Header name/value pairs in order, kept as a list because HTTP allows repeated names.
    pub headers: Vec<(String, String)>,
    /// Raw body; `serde_bytes` makes CBOR encode it as one byte string instead of an int array.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The HTTP response produced by the node that handled a [`WireRequest`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WireResponse {
    /// HTTP status code, relayed to the original client unchanged.
    pub status: u16,
    /// Header name/value pairs in order, kept as a list because HTTP allows repeated names.
    pub headers: Vec<(String, String)>,
    /// Raw body; `serde_bytes` makes CBOR encode it as one byte string instead of an int array.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl WireResponse {
    /// A 403 for a caller that may not call this node, in Elasticsearch's error shape.
    pub fn forbidden(reason: &str) -> Self {
        let body = format!(
            r#"{{"error":{{"root_cause":[{{"type":"security_exception","reason":"{reason}"}}],"type":"security_exception","reason":"{reason}"}},"status":403}}"#
        );
        WireResponse {
            status: 403,
            headers: vec![("content-type".to_string(), "application/json".to_string())],
            body: body.into_bytes(),
        }
    }

    /// A plain-text 500 response, used when the local handler fails without producing one, so
    /// the caller gets an HTTP answer instead of a dropped stream.
    pub fn internal_error(message: &str) -> Self {
        WireResponse {
            status: 500,
            headers: vec![(
                "content-type".to_string(),
                "text/plain; charset=utf-8".to_string(),
            )],
            body: message.as_bytes().to_vec(),
        }
    }
}
