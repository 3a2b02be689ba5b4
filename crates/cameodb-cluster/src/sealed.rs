//! Gossip that only members can take part in: every datagram is sealed with an HMAC-SHA256 of
//! the cluster secret's gossip key and a timestamp, and datagrams that do not verify (or are
//! older than [`MAX_AGE`]) are dropped before chitchat sees them.
//!
//! chitchat encodes its messages itself and keeps the encoding private, so this transport lets
//! two chitchat sockets on loopback do it: a datagram to send is first sent by an *encoder*
//! socket to our relay, which seals the bytes and sends them on to the peer; a datagram
//! received and verified is handed by the relay to a *decoder* socket, whose `recv` parses it.
//! The decoding runs in a task of its own, so `recv` (which chitchat cancels and retries) only
//! waits on a channel.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_trait::async_trait;
use chitchat::ChitchatEnvelope;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport, UdpSocket};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Format version of a sealed datagram.
const VERSION: u8 = 1;
/// Bytes of the HMAC kept (half of SHA-256's 32: forging it takes 2^128 tries).
const TAG_LEN: usize = 16;
/// version + timestamp (ms, big-endian u64) before the payload, tag after it.
const OVERHEAD: usize = 1 + 8 + TAG_LEN;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// Datagrams older (or further in the future) than this are dropped: a recorded datagram cannot
/// be replayed later. Members' clocks must agree within it.
pub const MAX_AGE: Duration = Duration::from_secs(120);
/// How long a loopback hand-over may take before it is given up.
const HAND_OVER: Duration = Duration::from_secs(1);

type HmacSha256 = Hmac<Sha256>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn mac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac accepts 32-byte keys"),
    }
}

/// `payload` sealed at time `now_ms`.
pub(crate) fn seal(key: &[u8; 32], payload: &[u8], now_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + OVERHEAD);
    out.push(VERSION);
    out.extend_from_slice(&now_ms.to_be_bytes());
    out.extend_from_slice(payload);
    let mut mac = mac(key);
    mac.update(&out);
    let tag = mac.finalize().into_bytes();
    out.extend_from_slice(&tag[..TAG_LEN]);
    out
}

/// The payload of a datagram sealed with `key` within [`MAX_AGE`] of `now_ms`, or `None`.
pub(crate) fn open<'a>(key: &[u8; 32], datagram: &'a [u8], now_ms: u64) -> Option<&'a [u8]> {
    if datagram.len() < OVERHEAD || datagram[0] != VERSION {
        return None;
    }
    let (sealed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut mac = mac(key);
    mac.update(sealed);
    mac.verify_truncated_left(tag).ok()?;
    let sent = u64::from_be_bytes(sealed[1..9].try_into().ok()?);
    let max_age = u64::try_from(MAX_AGE.as_millis()).unwrap_or(u64::MAX);
    if now_ms.abs_diff(sent) > max_age {
        return None;
    }
    Some(&sealed[9..])
}

/// The chitchat transport of a cluster with a secret.
pub(crate) struct SealedTransport {
    /// The gossip key.
    pub key: [u8; 32],
}

#[async_trait]
impl Transport for SealedTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let public = tokio::net::UdpSocket::bind(listen_addr)
            .await
            .with_context(|| format!("failed to bind to {listen_addr}/UDP for gossip"))?;
        let loopback = match listen_addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let local = SocketAddr::new(loopback, 0);
        let encoder = UdpSocket::open(local).await?;
        let encoder_addr = encoder.local_addr()?;
        let relay = tokio::net::UdpSocket::bind(local).await?;
        let relay_addr = relay.local_addr()?;
        let public = std::sync::Arc::new(public);
        let (received, inbox) = mpsc::channel(256);
        let decoding = tokio::spawn(decode_loop(
            std::sync::Arc::clone(&public),
            UdpSocket::open(local).await?,
            tokio::net::UdpSocket::bind(local).await?,
            self.key,
            received,
        ));
        Ok(Box::new(SealedSocket {
            public,
            encoder,
            encoder_addr,
            relay,
            relay_addr,
            key: self.key,
            inbox,
            decoding,
            buf: vec![0; MAX_DATAGRAM],
        }))
    }
}

/// One node's gossip socket.
struct SealedSocket {
    /// The socket peers send to.
    public: std::sync::Arc<tokio::net::UdpSocket>,
    /// Encodes outgoing envelopes (sends them to `relay`).
    encoder: UdpSocket,
    encoder_addr: SocketAddr,
    /// Receives what `encoder` encoded.
    relay: tokio::net::UdpSocket,
    relay_addr: SocketAddr,
    key: [u8; 32],
    /// Verified, decoded messages from the decoding task.
    inbox: mpsc::Receiver<anyhow::Result<RecvOutcome>>,
    decoding: JoinHandle<()>,
    buf: Vec<u8>,
}

impl Drop for SealedSocket {
    fn drop(&mut self) {
        self.decoding.abort();
    }
}

#[async_trait]
impl Socket for SealedSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.public.local_addr()?)
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        // Left over from a hand-over given up earlier: not this envelope.
        while self.relay.try_recv_from(&mut self.buf).is_ok() {}
        self.encoder.send(self.relay_addr, envelope).await?;
        let len = loop {
            let (len, from) = tokio::time::timeout(HAND_OVER, self.relay.recv_from(&mut self.buf))
                .await
                .context("gossip encoding timed out")??;
            if from == self.encoder_addr {
                break len;
            }
        };
        let sealed = seal(&self.key, &self.buf[..len], now_ms());
        if sealed.len() > MAX_DATAGRAM {
            warn!(
                bytes = sealed.len(),
                "gossip message too large for one datagram; not sent"
            );
            return Ok(SendOutcome { num_bytes_sent: 0 });
        }
        match self.public.send_to(&sealed, to).await {
            Ok(sent) => Ok(SendOutcome {
                num_bytes_sent: sent,
            }),
            Err(err) if is_transient(&err) => {
                debug!(error = %err, peer = %to, "gossip send failed");
                Ok(SendOutcome { num_bytes_sent: 0 })
            }
            Err(err) => Err(err).context("failed to send a gossip message"),
        }
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        match self.inbox.recv().await {
            Some(outcome) => outcome,
            None => anyhow::bail!("gossip receiver stopped"),
        }
    }
}

fn is_transient(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::OutOfMemory
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::WouldBlock
    )
}

/// Receives datagrams on `public`, drops those that do not verify, and has `decoder` decode
/// the rest, with the real sender's address.
async fn decode_loop(
    public: std::sync::Arc<tokio::net::UdpSocket>,
    mut decoder: UdpSocket,
    relay: tokio::net::UdpSocket,
    key: [u8; 32],
    received: mpsc::Sender<anyhow::Result<RecvOutcome>>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let decoder_addr = match decoder.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            let _ = received.send(Err(err)).await;
            return;
        }
    };
    let relay_addr = relay.local_addr().ok();
    loop {
        let (len, from) = match public.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) if is_transient(&err) => continue,
            Err(err) => {
                let _ = received
                    .send(Err(err).context("fatal gossip receive error"))
                    .await;
                return;
            }
        };
        let Some(payload) = open(&key, &buf[..len], now_ms()) else {
            debug!(from = %from, bytes = len, "dropped a gossip datagram that is not sealed with the cluster secret");
            continue;
        };
        if let Err(err) = relay.send_to(payload, decoder_addr).await {
            debug!(error = %err, "gossip hand-over failed");
            continue;
        }
        let decoded = match tokio::time::timeout(HAND_OVER, decoder.recv()).await {
            Ok(Ok(outcome)) if Some(outcome.from_addr) == relay_addr => outcome,
            // Not ours (another local process wrote to the decoder), undecodable, or lost.
            Ok(Ok(_)) | Err(_) => continue,
            Ok(Err(err)) => {
                let _ = received.send(Err(err)).await;
                return;
            }
        };
        let outcome = RecvOutcome {
            from_addr: from,
            envelope: decoded.envelope,
            num_bytes_received: len,
        };
        if received.send(Ok(outcome)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_datagrams_verify_only_with_the_key_and_while_fresh() {
        let key = [7u8; 32];
        let now = 1_700_000_000_000;
        let sealed = seal(&key, b"gossip", now);
        assert_eq!(open(&key, &sealed, now), Some(&b"gossip"[..]));
        assert_eq!(open(&key, &sealed, now + 119_000), Some(&b"gossip"[..]));
        assert_eq!(open(&key, &sealed, now + 121_000), None, "too old");
        assert_eq!(open(&key, &sealed, now - 121_000), None, "from the future");
        assert_eq!(open(&[8u8; 32], &sealed, now), None, "another key");
        let mut tampered = sealed.clone();
        tampered[10] ^= 1;
        assert_eq!(open(&key, &tampered, now), None, "changed payload");
        assert_eq!(open(&key, b"plain chitchat", now), None);
        assert_eq!(open(&key, &[], now), None);
    }
}
