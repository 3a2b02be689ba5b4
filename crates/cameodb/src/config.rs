//! Configuration: flags win over `CAMEODB_*` environment variables, which win over the TOML
//! file given with `--config`, which wins over the embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cameodb_server::ServerConfig;
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
    max_body_bytes: Option<usize>,
    refresh_interval_ms: Option<u64>,
    max_in_flight_per_index: Option<usize>,
    background_nice: Option<i32>,
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
        let mut server = ServerConfig::new(data_dir);
        server.cluster = Some(cameodb_server::ClusterSettings {
            cluster_addr,
            seeds,
        });
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
        server.fault_injection = args.fault_injection;
        Ok(Settings { http_addr, server })
    }
}
