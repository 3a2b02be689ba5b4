//! Configuration: flags win over `CAMEODB_*` environment variables, which win over the TOML
//! file given with `--config`, which wins over the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cameodb_server::{ServerConfig, units};
use clap::Args;
use serde::Deserialize;

/// Flags of `cameodb serve` (each also readable from its environment variable).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where data lives [default: ./data]
    #[arg(long, env = "CAMEODB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:9200]
    #[arg(long, env = "CAMEODB_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// Cluster address: libp2p (TCP) and gossip (UDP), same port [default: the HTTP host, port 9300]
    #[arg(long, env = "CAMEODB_CLUSTER_ADDR")]
    cluster_addr: Option<SocketAddr>,
    /// Another node's cluster address to join through (repeatable; none forms a cluster of one)
    #[arg(long = "join", env = "CAMEODB_JOIN", value_delimiter = ',')]
    join: Vec<String>,
    /// Secret shared by every node of the cluster; required unless the cluster address is loopback
    #[arg(long, env = "CAMEODB_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
    /// TOML configuration file
    #[arg(long, env = "CAMEODB_CONFIG")]
    config: Option<PathBuf>,
    /// Largest accepted request body in bytes [default: 104857600]
    #[arg(long, env = "CAMEODB_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Default refresh interval in milliseconds, 0 to disable [default: 100]
    #[arg(long, env = "CAMEODB_REFRESH_INTERVAL_MS")]
    refresh_interval_ms: Option<u64>,
    /// Most requests in flight per index before answering 429 [default: 512]
    #[arg(long, env = "CAMEODB_MAX_IN_FLIGHT_PER_INDEX")]
    max_in_flight_per_index: Option<usize>,
    /// Nice value (0-19) of background ingest threads, so reads keep the CPU; 0 turns it off [default: 10]
    #[arg(long, env = "CAMEODB_BACKGROUND_NICE", value_parser = clap::value_parser!(i32).range(0..=19))]
    background_nice: Option<i32>,
    /// Most open HTTP client connections; more are answered 503 and closed [default: 4096]
    #[arg(long, env = "CAMEODB_HTTP_MAX_CONNECTIONS")]
    http_max_connections: Option<usize>,
    /// Longest time a request's headers may take to arrive [default: 30s]
    #[arg(long, env = "CAMEODB_HTTP_HEADER_TIMEOUT", allow_hyphen_values = true)]
    http_header_timeout: Option<String>,
    /// Longest time a kept-alive connection may wait for its next request [default: 60s]
    #[arg(long, env = "CAMEODB_HTTP_IDLE_TIMEOUT", allow_hyphen_values = true)]
    http_idle_timeout: Option<String>,
    /// Longest stall of a request body, and the grace before its minimum rate applies [default: 30s]
    #[arg(long, env = "CAMEODB_HTTP_BODY_TIMEOUT", allow_hyphen_values = true)]
    http_body_timeout: Option<String>,
    /// Slowest average rate, per second, of a request body after the grace [default: 64kb]
    #[arg(long, env = "CAMEODB_HTTP_BODY_MIN_RATE", allow_hyphen_values = true)]
    http_body_min_rate: Option<String>,
    /// Longest keep-alive a scroll may ask for (search.max_keep_alive) [default: 24h]
    #[arg(
        long,
        env = "CAMEODB_SEARCH_MAX_KEEP_ALIVE",
        allow_hyphen_values = true
    )]
    search_max_keep_alive: Option<String>,
    /// Most open scroll contexts (search.max_open_scroll_context) [default: 500]
    #[arg(long, env = "CAMEODB_SEARCH_MAX_OPEN_SCROLL_CONTEXT")]
    search_max_open_scroll_context: Option<usize>,
    /// Memory all requests together may hold (indices.breaker.total.limit) [default: 4gb]
    #[arg(long, env = "CAMEODB_BREAKER_TOTAL_LIMIT", allow_hyphen_values = true)]
    breaker_total_limit: Option<String>,
    /// Memory one request may hold (indices.breaker.request.limit) [default: 1gb]
    #[arg(
        long,
        env = "CAMEODB_BREAKER_REQUEST_LIMIT",
        allow_hyphen_values = true
    )]
    breaker_request_limit: Option<String>,
    /// How often replicas compare what they hold (anti-entropy) [default: 60s]
    #[arg(
        long,
        env = "CAMEODB_ANTI_ENTROPY_INTERVAL",
        allow_hyphen_values = true
    )]
    anti_entropy_interval: Option<String>,
    /// Enable the fault-injection endpoint (tests only)
    #[arg(long, env = "CAMEODB_FAULT_INJECTION", hide = true)]
    fault_injection: bool,
}

/// The TOML file's shape; every key optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<SocketAddr>,
    cluster_addr: Option<SocketAddr>,
    join: Option<Vec<String>>,
    cluster_secret: Option<String>,
    anti_entropy_interval: Option<String>,
    max_body_bytes: Option<usize>,
    refresh_interval_ms: Option<u64>,
    max_in_flight_per_index: Option<usize>,
    background_nice: Option<i32>,
    http_max_connections: Option<usize>,
    http_header_timeout: Option<String>,
    http_idle_timeout: Option<String>,
    http_body_timeout: Option<String>,
    http_body_min_rate: Option<String>,
    search_max_keep_alive: Option<String>,
    search_max_open_scroll_context: Option<usize>,
    breaker_total_limit: Option<String>,
    breaker_request_limit: Option<String>,
}

/// The resolved configuration.
pub struct Settings {
    pub http_addr: SocketAddr,
    pub server: ServerConfig,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> Result<Settings, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("invalid config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let http_addr = args
            .http_addr
            .or(file.http_addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9200)));
        let cluster_addr = args
            .cluster_addr
            .or(file.cluster_addr)
            .unwrap_or_else(|| SocketAddr::new(http_addr.ip(), 9300));
        let seeds = if args.join.is_empty() {
            file.join.unwrap_or_default()
        } else {
            args.join
        };
        let secret = args
            .cluster_secret
            .or(file.cluster_secret)
            .filter(|s| !s.is_empty());
        if secret
            .as_ref()
            .is_some_and(|s| s.len() < cameodb_server::MIN_SECRET_BYTES)
        {
            return Err(format!(
                "the cluster secret must be at least {} bytes long; generate one with `openssl rand -hex 32`",
                cameodb_server::MIN_SECRET_BYTES
            ));
        }
        if secret.is_none() && !cluster_addr.ip().is_loopback() {
            return Err(format!(
                "the cluster address {cluster_addr} is not a loopback address, so this node needs the cluster secret that every node of its cluster shares: set --cluster-secret, CAMEODB_CLUSTER_SECRET or cluster_secret in the config file (at least {} bytes; generate one with `openssl rand -hex 32`)",
                cameodb_server::MIN_SECRET_BYTES
            ));
        }
        let mut server = ServerConfig::new(
            data_dir,
            cameodb_server::ClusterSettings {
                cluster_addr,
                seeds,
                secret,
                anti_entropy_interval: match args
                    .anti_entropy_interval
                    .or(file.anti_entropy_interval)
                {
                    Some(text) => units::required_time_value("anti_entropy_interval", &text)
                        .map_err(|e| e.to_string())?,
                    None => cameodb_server::DEFAULT_ANTI_ENTROPY_INTERVAL,
                },
            },
        );
        if let Some(bytes) = args.max_body_bytes.or(file.max_body_bytes) {
            server.max_body_bytes = bytes;
        }
        if let Some(ms) = args.refresh_interval_ms.or(file.refresh_interval_ms) {
            server.store.refresh_interval = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(limit) = args
            .max_in_flight_per_index
            .or(file.max_in_flight_per_index)
        {
            server.max_in_flight_per_index = limit.max(1);
        }
        if let Some(nice) = args.background_nice.or(file.background_nice) {
            if !(0..=19).contains(&nice) {
                return Err(format!("background_nice must be 0-19, not {nice}"));
            }
            server.store.background_nice = nice;
        }
        let http = &mut server.http;
        if let Some(n) = args.http_max_connections.or(file.http_max_connections) {
            http.max_connections = positive("http_max_connections", n)?;
        }
        let timeouts = [
            (
                "http_header_timeout",
                args.http_header_timeout.or(file.http_header_timeout),
                &mut http.header_timeout,
            ),
            (
                "http_idle_timeout",
                args.http_idle_timeout.or(file.http_idle_timeout),
                &mut http.idle_timeout,
            ),
            (
                "http_body_timeout",
                args.http_body_timeout.or(file.http_body_timeout),
                &mut http.body_timeout,
            ),
            (
                "search_max_keep_alive",
                args.search_max_keep_alive.or(file.search_max_keep_alive),
                &mut server.scroll.max_keep_alive,
            ),
        ];
        for (name, value, target) in timeouts {
            if let Some(value) = value {
                *target = units::required_time_value(name, &value).map_err(|e| e.to_string())?;
            }
        }
        let sizes = [
            (
                "breaker_total_limit",
                args.breaker_total_limit.or(file.breaker_total_limit),
                &mut server.breaker.total,
            ),
            (
                "breaker_request_limit",
                args.breaker_request_limit.or(file.breaker_request_limit),
                &mut server.breaker.request,
            ),
        ];
        for (name, value, target) in sizes {
            if let Some(value) = value {
                *target = units::byte_size(name, &value).map_err(|e| e.to_string())?;
            }
        }
        if server.breaker.request > server.breaker.total {
            return Err(format!(
                "breaker_request_limit ({}) cannot exceed breaker_total_limit ({})",
                server.breaker.request, server.breaker.total
            ));
        }
        if let Some(rate) = args.http_body_min_rate.or(file.http_body_min_rate) {
            server.http.body_min_rate =
                units::byte_size("http_body_min_rate", &rate).map_err(|e| e.to_string())?;
        }
        if let Some(n) = args
            .search_max_open_scroll_context
            .or(file.search_max_open_scroll_context)
        {
            server.scroll.max_open = n;
        }
        server.fault_injection = args.fault_injection;
        Ok(Settings { http_addr, server })
    }
}

/// A count that must be at least one.
fn positive(name: &str, n: usize) -> Result<usize, String> {
    if n == 0 {
        return Err(format!("{name} must be at least 1"));
    }
    Ok(n)
}
