//! Cluster-wide dynamic settings (`_cluster/settings`), and the recovery throttle the one
//! setting there drives (`indices.recovery.max_bytes_per_sec`).
//!
//! Settings are versioned: a change on any node takes the next version (ties broken by node
//! id), is kept in `<data dir>/cluster_settings.json` and gossiped; every node adopts the
//! newest version it hears of, keeps it on disk too and gossips it on, so the settings outlive
//! any one node and reach a node that was away when they changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use super::ClusterCtx;
use crate::error::ApiError;

/// The rate limit of streaming documents between nodes (catch-up and placement changes), per
/// node, as Elasticsearch's peer recovery limit.
pub const RECOVERY_RATE: &str = "indices.recovery.max_bytes_per_sec";
/// Its default: Elasticsearch's.
pub const DEFAULT_RECOVERY_RATE: &str = "40mb";
/// The gossip key carrying a node's settings.
const GOSSIP_KEY: &str = "cluster_settings";
/// The settings file in the data directory.
const FILE: &str = "cluster_settings.json";
/// How often gossiped settings are looked at.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// One version of the settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    /// Bumped by every change: the highest wins.
    pub version: u64,
    /// The node that made the change: breaks ties between concurrent changes.
    pub origin: String,
    /// `persistent` settings, by name.
    pub persistent: BTreeMap<String, String>,
    /// `transient` settings, by name (kept like persistent ones: a full restart keeps them).
    pub transient: BTreeMap<String, String>,
    /// Members left out of the placement for good, by id, with why (`decommission` or
    /// `removed`): cluster metadata like the settings, so it outlives every node's restart.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub excluded: BTreeMap<String, String>,
}

impl Versioned {
    fn newer_than(&self, other: &Versioned) -> bool {
        (self.version, &self.origin) > (other.version, &other.origin)
    }

    /// The value in force for `name`: transient over persistent.
    fn get(&self, name: &str) -> Option<&String> {
        self.transient
            .get(name)
            .or_else(|| self.persistent.get(name))
    }
}

/// Paces the bytes a node streams from others to a rate.
#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second; 0 for no limit.
    rate: AtomicU64,
    /// When the bytes streamed so far are paid for.
    paid_until: Mutex<Instant>,
}

impl Throttle {
    fn new(rate: Option<u64>) -> Throttle {
        Throttle {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// Waits long enough that `bytes` more keep the node under its rate.
    pub async fn pace(&self, bytes: u64) {
        let wait = self.reserve(Instant::now(), bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Books `bytes` at `now`: how long to wait before streaming them (the time the bytes
    /// booked before them still need at the rate).
    fn reserve(&self, now: Instant, bytes: u64) -> Duration {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 || bytes == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        match self.paid_until.lock() {
            Ok(mut paid) => {
                let start = (*paid).max(now);
                *paid = start + cost;
                start.saturating_duration_since(now)
            }
            Err(_) => Duration::ZERO,
        }
    }
}

/// This node's copy of the settings.
#[derive(Debug)]
pub struct DynamicSettings {
    /// Where they are kept.
    path: PathBuf,
    /// The version in force.
    current: RwLock<Versioned>,
    /// The recovery throttle, set from [`RECOVERY_RATE`].
    pub throttle: Throttle,
}

/// `indices.recovery.max_bytes_per_sec` in bytes per second (`None`: unlimited, for `-1` or
/// `0`).
fn recovery_rate(value: &str) -> Result<Option<u64>, ApiError> {
    if value.trim() == "-1" {
        return Ok(None);
    }
    let bytes = crate::units::byte_size(RECOVERY_RATE, value)?;
    Ok((bytes > 0).then_some(bytes))
}

impl DynamicSettings {
    /// The settings kept in `data_dir` (none yet: the defaults).
    pub fn load(data_dir: &Path) -> DynamicSettings {
        let path = data_dir.join(FILE);
        let current: Versioned = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let rate = current
            .get(RECOVERY_RATE)
            .map(String::as_str)
            .unwrap_or(DEFAULT_RECOVERY_RATE);
        let throttle = Throttle::new(recovery_rate(rate).ok().flatten());
        DynamicSettings {
            path,
            current: RwLock::new(current),
            throttle,
        }
    }

    /// The version in force.
    pub fn current(&self) -> Versioned {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The ids of the members left out of the placement.
    pub fn excluded(&self) -> std::collections::BTreeSet<String> {
        self.current
            .read()
            .map(|c| c.excluded.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Takes `next` (this node's change, or another node's) if it is newer than the version
    /// in force; whether it did.
    pub fn adopt(&self, next: Versioned) -> bool {
        let Ok(mut current) = self.current.write() else {
            return false;
        };
        if !next.newer_than(&current) {
            return false;
        }
        let rate = next
            .get(RECOVERY_RATE)
            .map(String::as_str)
            .unwrap_or(DEFAULT_RECOVERY_RATE);
        let rate = recovery_rate(rate).ok().flatten().unwrap_or(0);
        self.throttle.rate.store(rate, Ordering::Relaxed);
        match serde_json::to_vec_pretty(&next) {
            Ok(bytes) => {
                if let Err(err) = std::fs::write(&self.path, bytes) {
                    warn!(error = %err, "cluster settings not saved; kept in memory");
                }
            }
            Err(err) => warn!(error = %err, "cluster settings not encoded"),
        }
        info!(version = next.version, "cluster settings changed");
        *current = next;
        true
    }
}

/// The answer of `GET /_cluster/settings` (`include_defaults` adds the defaults).
pub fn render(settings: &Versioned, include_defaults: bool) -> Value {
    let scope = |values: &BTreeMap<String, String>| {
        Value::Object(
            values
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<Map<String, Value>>(),
        )
    };
    let mut body = json!({
        "persistent": scope(&settings.persistent),
        "transient": scope(&settings.transient),
    });
    if include_defaults {
        body["defaults"] = json!({ RECOVERY_RATE: DEFAULT_RECOVERY_RATE });
    }
    body
}

/// `PUT /_cluster/settings`: applies `body`'s `persistent` and `transient` changes (a `null`
/// resets one) here, and gossips them. Every setting but [`RECOVERY_RATE`] is refused by name.
pub async fn put(ctx: &ClusterCtx, body: &Map<String, Value>) -> Result<Value, ApiError> {
    let mut next = ctx.settings.current();
    for (scope, values) in [
        ("persistent", &mut next.persistent),
        ("transient", &mut next.transient),
    ] {
        let Some(changes) = body.get(scope) else {
            continue;
        };
        let changes = changes.as_object().ok_or_else(|| {
            ApiError::illegal_argument(format!("[{scope}] must be an object of settings"))
        })?;
        let mut flat = Vec::new();
        crate::index_settings::flatten_nullable("", &Value::Object(changes.clone()), &mut flat);
        for (name, value) in flat {
            if name != RECOVERY_RATE {
                return Err(ApiError::illegal_argument(format!(
                    "{scope} setting [{name}], not recognized: the only dynamic cluster setting is [{RECOVERY_RATE}]"
                )));
            }
            match value {
                None => {
                    values.remove(&name);
                }
                Some(value) => {
                    recovery_rate(&value)?;
                    values.insert(name, value);
                }
            }
        }
    }
    next.version = next.version.saturating_add(1);
    next.origin = ctx.cluster.self_id().to_string();
    spread(ctx, next.clone()).await;
    let mut answer = render(&next, false);
    answer["acknowledged"] = json!(true);
    Ok(answer)
}

/// Records member `id` excluded from the placement (`why`: decommission or removed), as a new
/// version of the settings spread to every node.
pub async fn exclude(ctx: &ClusterCtx, id: &str, why: &str) {
    let mut next = ctx.settings.current();
    next.excluded.insert(id.to_string(), why.to_string());
    next.version = next.version.saturating_add(1);
    next.origin = ctx.cluster.self_id().to_string();
    spread(ctx, next).await;
}

/// Takes `next` here and sends it to every other node.
async fn spread(ctx: &ClusterCtx, next: Versioned) {
    ctx.settings.adopt(next.clone());
    publish(ctx, &next).await;
    // Straight to every live node too, so a read anywhere right after sees the change
    // (gossip alone takes a round or two).
    super::metadata::broadcast(ctx, crate::messages::NodeCall::ApplyClusterSettings(next)).await;
}

async fn publish(ctx: &ClusterCtx, settings: &Versioned) {
    if let Ok(text) = serde_json::to_string(settings) {
        ctx.cluster.set_value(GOSSIP_KEY, &text).await;
    }
}

/// Adopts the newest settings any member gossips, and gossips what this node holds.
pub async fn sync_loop(ctx: Arc<ClusterCtx>) {
    publish(&ctx, &ctx.settings.current()).await;
    loop {
        tokio::time::sleep(SYNC_INTERVAL).await;
        let view = ctx.view().await;
        let newest = view
            .members
            .iter()
            .filter_map(|m| m.values.get(GOSSIP_KEY))
            .filter_map(|text| serde_json::from_str::<Versioned>(text).ok())
            .max_by(|a, b| (a.version, &a.origin).cmp(&(b.version, &b.origin)));
        if let Some(newest) = newest
            && ctx.settings.adopt(newest.clone())
        {
            publish(&ctx, &newest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_elasticsearch_writes_them() {
        assert_eq!(recovery_rate("40mb").unwrap(), Some(40 * 1024 * 1024));
        assert_eq!(recovery_rate("-1").unwrap(), None);
        assert_eq!(recovery_rate("0").unwrap(), None);
        assert!(recovery_rate("fast").is_err());
    }

    #[test]
    fn the_throttle_spaces_bookings_at_the_rate() {
        let throttle = Throttle::new(Some(1000));
        let now = Instant::now();
        assert_eq!(throttle.reserve(now, 500), Duration::ZERO);
        // The first 500 bytes take half a second at 1000 B/s: the next wait that long.
        assert_eq!(throttle.reserve(now, 1000), Duration::from_millis(500));
        assert_eq!(throttle.reserve(now, 1), Duration::from_millis(1500));
        let unlimited = Throttle::new(None);
        assert_eq!(unlimited.reserve(now, u64::MAX), Duration::ZERO);
    }

    #[test]
    fn the_newest_version_wins_and_ties_go_by_origin() {
        let a = Versioned {
            version: 2,
            origin: "a".into(),
            ..Versioned::default()
        };
        let b = Versioned {
            version: 2,
            origin: "b".into(),
            ..Versioned::default()
        };
        assert!(b.newer_than(&a));
        assert!(!a.newer_than(&b));
        let dir = std::env::temp_dir().join(format!("cameodb-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let settings = DynamicSettings::load(&dir);
        assert!(settings.adopt(a.clone()));
        assert!(!settings.adopt(a));
        assert!(settings.adopt(b.clone()));
        assert_eq!(DynamicSettings::load(&dir).current(), b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
