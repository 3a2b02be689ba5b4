//! Cluster admission on real sockets: nodes sharing the secret form a cluster; a node with
//! another secret, or none, never becomes a member and cannot call one; a peer that completes
//! the handshake but is not a member is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cameodb_cluster::{
    Cluster, ClusterConfig, ClusterSecret, MemberState, RPC_PROTOCOL, RequestHandler, WireRequest,
    WireResponse,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, noise, tcp, yamux};

const SECRET: &str = "a shared secret of the test cluster";

/// Answers every call with 200 and the caller's id.
struct Ok200;

impl RequestHandler for Ok200 {
    fn handle(&self, from: String, _: WireRequest) -> BoxFuture<'static, WireResponse> {
        async move { WireResponse::Answer(from.into_bytes()) }.boxed()
    }
}

async fn node(secret: Option<&str>, cluster_id: &str, seeds: &[&Cluster]) -> Cluster {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let keypair = libp2p::identity::Keypair::generate_ed25519();
    let mut config = ClusterConfig::new(keypair, addr, "127.0.0.1:9200");
    config.cluster_id = cluster_id.to_string();
    config.secret = secret.map(|s| ClusterSecret::derive(s, cluster_id).expect("secret"));
    config.seeds = seeds.iter().map(|s| s.cluster_addr().to_string()).collect();
    Cluster::start(config, Arc::new(Ok200))
        .await
        .expect("start")
}

fn ids(cluster: &Cluster) -> Vec<String> {
    cluster.members().into_iter().map(|m| m.id).collect()
}

async fn wait_members(cluster: &Cluster, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let members = cluster.members();
        if members.len() == count && members.iter().all(|m| m.state == MemberState::Up) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {count} up members, got {:?}", cluster.members());
}

fn get() -> WireRequest {
    WireRequest::new(Vec::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_secret_join_and_call() {
    let a = node(Some(SECRET), "cameodb", &[]).await;
    let b = node(Some(SECRET), "cameodb", &[&a]).await;
    wait_members(&a, 2).await;
    wait_members(&b, 2).await;
    let answer = b
        .request(a.self_id(), get())
        .await
        .expect("members call each other");
    assert_eq!(
        answer,
        WireResponse::Answer(b.self_id().as_bytes().to_vec())
    );

    let wrong = node(Some("another secret, not this cluster's"), "cameodb", &[&a]).await;
    let open = node(None, "cameodb", &[&a]).await;
    // Gossip runs every 200 ms: several rounds go by with nothing accepted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for outsider in [&wrong, &open] {
        assert!(!ids(&a).contains(&outsider.self_id().to_string()));
        assert!(!ids(&b).contains(&outsider.self_id().to_string()));
        assert_eq!(ids(outsider), [outsider.self_id().to_string()]);
    }
    assert_eq!(a.members().len(), 2);
}

/// A bare libp2p peer speaking the protocol: `prologue` decides whether its handshake with a
/// node of a cluster with a secret succeeds.
async fn raw_call(prologue: Option<[u8; 32]>, to: &Cluster) -> Result<WireResponse, String> {
    let behaviour = request_response::cbor::Behaviour::<WireRequest, WireResponse>::new(
        [(StreamProtocol::new(RPC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(5)),
    );
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            move |key: &libp2p::identity::Keypair| {
                let config = noise::Config::new(key)?;
                Ok::<_, noise::Error>(match prologue {
                    Some(p) => config.with_prologue(p.to_vec()),
                    None => config,
                })
            },
            yamux::Config::default,
        )
        .map_err(|e| e.to_string())?
        .with_behaviour(|_| behaviour)
        .map_err(|e| e.to_string())?
        .build();
    let peer: libp2p::PeerId = to.self_id().parse().map_err(|e| format!("{e}"))?;
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", to.cluster_addr().port())
        .parse()
        .map_err(|e| format!("{e}"))?;
    swarm
        .behaviour_mut()
        .send_request_with_addresses(&peer, get(), vec![addr]);
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => return Err("no answer".into()),
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { response, .. }, ..
                }) => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                    return Err(error.to_string());
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_need_the_secret_and_requests_need_membership() {
    let a = node(Some(SECRET), "cameodb", &[]).await;
    wait_members(&a, 1).await;
    let secret = ClusterSecret::derive(SECRET, "cameodb").expect("secret");
    let other =
        ClusterSecret::derive("another secret, not this cluster's", "cameodb").expect("secret");
    // Without the secret the handshake fails: no connection, no request.
    for prologue in [None, Some(*other.noise_prologue())] {
        let refused = raw_call(prologue, &a).await;
        assert!(
            refused.is_err(),
            "a peer without the secret got {refused:?}"
        );
    }
    // With it, the connection is made, but the caller is not a member: refused by the node.
    let answer = raw_call(Some(*secret.noise_prologue()), &a)
        .await
        .expect("the handshake succeeds with the secret");
    assert!(
        matches!(answer, WireResponse::Refused { .. }),
        "a connected non-member got {answer:?}"
    );
}
