//! The cluster secret: what a node must hold to be let into a cluster. Two keys are derived
//! from it, once, with Argon2id (slow on purpose: whoever records a handshake or a gossip
//! datagram can test guesses of the secret offline, each guess costing an Argon2 run):
//!
//! - the noise *prologue* of every libp2p connection: both ends mix it into the handshake
//!   hash, so a peer without the same secret fails the handshake before any request;
//! - the key of the HMAC that seals every gossip datagram (see `sealed.rs`).

use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ClusterError;

/// Shortest secret accepted, bytes: 16 random bytes as hex or base64 are well over it.
pub const MIN_SECRET_BYTES: usize = 16;

/// Keys derived from the cluster secret.
#[derive(Clone)]
pub struct ClusterSecret {
    /// Mixed into every noise handshake.
    prologue: [u8; 32],
    /// Authenticates gossip datagrams.
    gossip_key: [u8; 32],
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// Derives the keys of `secret` for the cluster named `cluster_id`.
    pub fn derive(secret: &str, cluster_id: &str) -> Result<ClusterSecret, ClusterError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ClusterError::InvalidConfig(format!(
                "the cluster secret must be at least {MIN_SECRET_BYTES} bytes long (for example the output of `openssl rand -hex 32`)"
            )));
        }
        // OWASP's Argon2id parameters for interactive use: 19 MiB, two passes.
        let params = Params::new(19 * 1024, 2, 1, Some(64))
            .map_err(|e| ClusterError::InvalidConfig(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = format!("cameodb cluster secret v1: {cluster_id}");
        let mut keys = [0u8; 64];
        argon
            .hash_password_into(secret.as_bytes(), salt.as_bytes(), &mut keys)
            .map_err(|e| ClusterError::InvalidConfig(format!("deriving cluster keys: {e}")))?;
        let mut prologue = [0u8; 32];
        let mut gossip_key = [0u8; 32];
        prologue.copy_from_slice(&keys[..32]);
        gossip_key.copy_from_slice(&keys[32..]);
        Ok(ClusterSecret {
            prologue,
            gossip_key,
        })
    }

    /// The noise prologue of every connection between members (public so that a peer
    /// speaking the protocol from elsewhere, such as a test client, can be built).
    pub fn noise_prologue(&self) -> &[u8; 32] {
        &self.prologue
    }

    pub(crate) fn gossip_key(&self) -> &[u8; 32] {
        &self.gossip_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_secret_and_the_cluster() {
        let a = ClusterSecret::derive("correct horse battery staple", "cameodb").expect("a");
        let again = ClusterSecret::derive("correct horse battery staple", "cameodb").expect("a");
        let other = ClusterSecret::derive("correct horse battery stable", "cameodb").expect("b");
        let elsewhere = ClusterSecret::derive("correct horse battery staple", "other").expect("c");
        assert_eq!(a.prologue, again.prologue);
        assert_eq!(a.gossip_key, again.gossip_key);
        assert_ne!(a.prologue, a.gossip_key);
        assert_ne!(a.prologue, other.prologue);
        assert_ne!(a.prologue, elsewhere.prologue);
        assert!(ClusterSecret::derive("short", "cameodb").is_err());
        assert_eq!(format!("{a:?}"), "ClusterSecret(..)");
    }
}
