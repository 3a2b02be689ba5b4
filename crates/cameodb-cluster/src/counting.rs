//! Counts what gossip sends and receives, for the node's gossip figures (SCALING.md measures
//! the message rate and state size per node with them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chitchat::transport::{RecvOutcome, SendOutcome, Socket, Transport};

/// Gossip traffic of one node since it started.
#[derive(Debug, Default)]
pub struct GossipCounters {
    /// Datagrams sent.
    pub sent: AtomicU64,
    /// Bytes sent.
    pub sent_bytes: AtomicU64,
    /// Datagrams received (and verified).
    pub received: AtomicU64,
    /// Bytes received.
    pub received_bytes: AtomicU64,
}

/// A gossip transport that counts its traffic into `counters`.
pub(crate) struct CountingTransport {
    /// The transport doing the work (plain or sealed UDP).
    pub inner: Box<dyn Transport>,
    /// Where the counts go.
    pub counters: Arc<GossipCounters>,
}

#[async_trait]
impl Transport for CountingTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        Ok(Box::new(CountingSocket {
            inner: self.inner.open(listen_addr).await?,
            counters: Arc::clone(&self.counters),
        }))
    }
}

struct CountingSocket {
    inner: Box<dyn Socket>,
    counters: Arc<GossipCounters>,
}

#[async_trait]
impl Socket for CountingSocket {
    fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.inner.local_addr()
    }

    async fn send(
        &mut self,
        to: SocketAddr,
        envelope: chitchat::ChitchatEnvelope,
    ) -> anyhow::Result<SendOutcome> {
        let outcome = self.inner.send(to, envelope).await?;
        if outcome.num_bytes_sent > 0 {
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            self.counters
                .sent_bytes
                .fetch_add(outcome.num_bytes_sent as u64, Ordering::Relaxed);
        }
        Ok(outcome)
    }

    async fn recv(&mut self) -> anyhow::Result<RecvOutcome> {
        let outcome = self.inner.recv().await?;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        self.counters
            .received_bytes
            .fetch_add(outcome.num_bytes_received as u64, Ordering::Relaxed);
        Ok(outcome)
    }
}
