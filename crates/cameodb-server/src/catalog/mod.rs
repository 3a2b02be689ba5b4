//! The node's indexes: names, settings and their open shards, persisted under
//! `<data dir>/indices/<name>/` (`index.json` + the store).

mod resolve;
pub(crate) use resolve::check_alias_name;
mod templates;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cameodb_storage::StoreConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

use crate::aliases::AliasMeta;
use crate::error::ApiError;
use crate::index_settings::{ANALYSIS, CHANGES_RETENTION, analysis_of};
pub use crate::index_settings::{default_replicas, parse_settings, refresh_interval};
use crate::shard::Shard;

/// Settings and identity of one index, as persisted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Random id, as Elasticsearch's index uuid.
    pub uuid: String,
    /// Creation time, epoch milliseconds.
    pub creation_date: u64,
    /// Settings by full name (`index.number_of_shards` …) with string values, as Elasticsearch
    /// reports them.
    pub settings: BTreeMap<String, String>,
    /// The cluster members whose ring places this index's documents: set when the index is
    /// created, and changed only by a completed placement change (see `pending`), so a node
    /// that joins never owns documents before it holds them. Empty: the live ring (indexes of
    /// a standalone node, and those created before placement was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<String>,
    /// The members the index is moving to, while a placement change runs (a member joined or
    /// is leaving): writes go to the copies of both rings, reads keep to `placement`, and each
    /// member streams the ranges it gains until the metadata owner sees all of them done and
    /// makes this the placement (`cluster::membership`). Empty: no change running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// The index's aliases, by name. Changed (like settings) on the index's metadata owner,
    /// with the settings version bumped so the change spreads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, AliasMeta>,
    /// Bumped by every settings update on the index's metadata owner: of two copies of the
    /// same index, the one with the higher version has the newer settings (the metadata sync
    /// spreads them).
    #[serde(default)]
    pub settings_version: u64,
    /// Set once `number_of_replicas` was ever lowered or the placement ever changed: nodes may
    /// then still hold copies they no longer answer for, so searches always keep to their
    /// ranges.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copies_lowered: bool,
}

/// An open index.
pub struct IndexEntry {
    /// The index name.
    pub name: String,
    /// Its settings.
    pub meta: IndexMeta,
    /// Its storage actor.
    pub shard: Shard,
    /// The ring over `meta.placement`, built once; `None` routes by the live ring.
    pub placement: Option<Arc<cameodb_ring::Ring>>,
    /// The ring over `meta.pending` while a placement change runs.
    pub pending: Option<Arc<cameodb_ring::Ring>>,
}

impl IndexEntry {
    /// Copies of each document the index asks for: 1 + `number_of_replicas` (the copies it
    /// gets are at most the members it is placed on).
    pub fn wanted_copies(&self) -> usize {
        self.meta
            .settings
            .get("index.number_of_replicas")
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(1, |r| r.saturating_add(1))
    }

    /// The id of the placement change running, if any: the index's uuid and a hash of both
    /// member sets. A member that streamed what it gains says so under this id, so a report
    /// about an earlier change (or an earlier index of the same name) never completes this one.
    pub fn change_id(&self) -> Option<String> {
        self.pending.as_ref()?;
        let sets = format!(
            "{}\u{0}{}",
            self.meta.placement.join(","),
            self.meta.pending.join(",")
        );
        Some(format!(
            "{}:{:016x}",
            self.meta.uuid,
            xxhash_rust::xxh3::xxh3_64(sets.as_bytes())
        ))
    }

    /// An open index.
    pub fn new(name: String, meta: IndexMeta, shard: Shard) -> IndexEntry {
        let placement = (!meta.placement.is_empty())
            .then(|| Arc::new(cameodb_ring::Ring::new(&meta.placement)));
        let pending = (!meta.pending.is_empty() && !meta.placement.is_empty())
            .then(|| Arc::new(cameodb_ring::Ring::new(&meta.pending)));
        IndexEntry {
            name,
            meta,
            shard,
            placement,
            pending,
        }
    }
}

/// All indexes of this node.
pub struct Catalog {
    /// `<data dir>/indices`.
    root: PathBuf,
    /// Open indexes by name.
    indices: RwLock<BTreeMap<String, Arc<IndexEntry>>>,
    /// Serialises creations and deletions, so two requests cannot create one index twice.
    ddl: Mutex<()>,
    /// Store configuration for new and reopened indexes.
    store_config: StoreConfig,
    /// In-flight job bound per index.
    max_in_flight: usize,
    /// Restarts failed index actors.
    supervisor: kameo::actor::ActorRef<crate::shard::StoreSupervisor>,
    /// Indexes deleted since start, name -> uuid: the cluster gossips them, so a node that
    /// missed a deletion drops its copy instead of spreading it back.
    tombstones: std::sync::Mutex<BTreeMap<String, String>>,
    /// The cluster's members (node ids), stamped as the placement of every index created here.
    members: std::sync::RwLock<Vec<String>>,
    /// The cluster's index templates as this node knows them (see `templates.rs`).
    templates: std::sync::Mutex<crate::templates::TemplateSet>,
}

const META_FILE: &str = "index.json";

/// Whether [`Catalog::ensure_with`] made the index or found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// It was created by this call.
    Now,
    /// It existed already (the given identity was not used).
    Before,
}
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Checks an index name against Elasticsearch's rules.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        Err(ApiError::bad_request(
            "invalid_index_name_exception",
            format!("Invalid index name [{name}], {why}"),
        )
        .with_index(name))
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name != name.to_lowercase() {
        return invalid("must be lowercase");
    }
    if name.starts_with(['-', '_', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.len() > 255 {
        return invalid(&format!("index name is too long, ({} > 255)", name.len()));
    }
    if let Some(c) = name.chars().find(|c| r#"\/*?"<>| ,#:"#.contains(*c)) {
        return invalid(&format!("must not contain the following characters [{c}]"));
    }
    // A name is a directory on disk: NUL and other control characters cannot be part of one.
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return invalid(&format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(())
}

impl Catalog {
    /// Opens every index found under `data_dir`.
    pub async fn open(
        data_dir: &Path,
        store_config: StoreConfig,
        max_in_flight: usize,
    ) -> Result<Catalog, ApiError> {
        let root = data_dir.join("indices");
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", root.display())))?;
        let supervisor = <crate::shard::StoreSupervisor as kameo::actor::Spawn>::spawn(());
        let catalog = Catalog {
            root,
            indices: RwLock::new(BTreeMap::new()),
            ddl: Mutex::new(()),
            store_config,
            max_in_flight,
            supervisor,
            tombstones: std::sync::Mutex::default(),
            members: std::sync::RwLock::default(),
            templates: std::sync::Mutex::new(templates::load(data_dir).await?),
        };
        let mut dir = tokio::fs::read_dir(&catalog.root)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let meta_path = entry.path().join(META_FILE);
            let Ok(bytes) = tokio::fs::read(&meta_path).await else {
                continue;
            };
            let meta: IndexMeta = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::internal(format!("corrupt {}: {e}", meta_path.display())))?;
            let shard = catalog.open_shard(&name, &meta).await?;
            info!(index = %name, "index opened");
            catalog
                .indices
                .write()
                .await
                .insert(name.clone(), Arc::new(IndexEntry::new(name, meta, shard)));
        }
        Ok(catalog)
    }

    fn store_config_for(&self, meta: &IndexMeta) -> StoreConfig {
        let mut config = self.store_config.clone();
        if let Some(Ok(interval)) = meta
            .settings
            .get("index.refresh_interval")
            .map(|v| refresh_interval(v))
        {
            config.refresh_interval = interval;
            // As in Elasticsearch, an explicit interval is honoured even when nobody searches.
            config.search_idle_after = None;
        }
        if let Some(Ok(retention)) = meta
            .settings
            .get(CHANGES_RETENTION)
            .map(|v| crate::units::required_time_value(CHANGES_RETENTION, v))
        {
            config.changes_retention = retention;
        }
        match analysis_of(&meta.settings) {
            Ok(analysis) => config.analysis = analysis,
            // Checked when the index was created; a node that cannot build it says so and
            // serves the index with the built-in analyzers rather than not at all.
            Err(err) => {
                warn!(uuid = %meta.uuid, error = ?err, "index analysis settings do not build")
            }
        }
        config
    }

    async fn open_shard(&self, name: &str, meta: &IndexMeta) -> Result<Shard, ApiError> {
        Shard::open(
            &self.supervisor,
            self.root.join(name),
            self.store_config_for(meta),
            self.max_in_flight,
        )
        .await
    }

    /// The index called `name`.
    pub async fn get(&self, name: &str) -> Option<Arc<IndexEntry>> {
        self.indices.read().await.get(name).cloned()
    }

    /// The index called `name`, or 404.
    pub async fn require(&self, name: &str) -> Result<Arc<IndexEntry>, ApiError> {
        self.get(name)
            .await
            .ok_or_else(|| ApiError::index_not_found(name))
    }

    /// Every index, by name.
    pub async fn all(&self) -> Vec<Arc<IndexEntry>> {
        self.indices.read().await.values().cloned().collect()
    }

    /// Creates an index. `mappings` is an Elasticsearch mapping body.
    pub async fn create(
        &self,
        name: &str,
        settings: BTreeMap<String, String>,
        mappings: Option<Value>,
        aliases: BTreeMap<String, AliasMeta>,
    ) -> Result<Arc<IndexEntry>, ApiError> {
        let (settings, mappings, aliases) =
            self.with_templates(name, settings, mappings, aliases)?;
        let mut meta = self.new_meta(settings);
        meta.aliases = aliases;
        self.create_with(name, meta, mappings).await
    }

    /// A new index's identity: a fresh uuid, now, and the members that place its documents.
    fn new_meta(&self, mut settings: BTreeMap<String, String>) -> IndexMeta {
        let placement = self.members.read().map(|m| m.clone()).unwrap_or_default();
        settings
            .entry("index.number_of_replicas".into())
            .or_insert_with(|| default_replicas(placement.len()).to_string());
        IndexMeta {
            uuid: uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
            creation_date: now_millis(),
            settings,
            placement,
            pending: Vec::new(),
            settings_version: 0,
            copies_lowered: false,
            aliases: BTreeMap::new(),
        }
    }

    /// Creates an index with the given identity: how an index created on another node of the
    /// cluster is created here, under the same uuid.
    pub async fn create_with(
        &self,
        name: &str,
        meta: IndexMeta,
        mappings: Option<Value>,
    ) -> Result<Arc<IndexEntry>, ApiError> {
        match self.ensure_with(name, meta, mappings).await? {
            (entry, Created::Now) => Ok(entry),
            (existing, Created::Before) => Err(ApiError::bad_request(
                "resource_already_exists_exception",
                format!("index [{}/{}] already exists", name, existing.meta.uuid),
            )
            .with_index(name)),
        }
    }

    /// The index `name`: the one that exists, or a new one with identity `meta`, and which of
    /// the two it is — decided under the catalog's lock, so concurrent creates meet here.
    pub async fn ensure_with(
        &self,
        name: &str,
        meta: IndexMeta,
        mappings: Option<Value>,
    ) -> Result<(Arc<IndexEntry>, Created), ApiError> {
        validate_name(name)?;
        let _ddl = self.ddl.lock().await;
        if let Some(existing) = self.get(name).await {
            return Ok((existing, Created::Before));
        }
        // An index deleted here is never brought back by a late push or a sync that read it
        // before the deletion (checked under the lock deletions take).
        let deleted = self
            .tombstones
            .lock()
            .is_ok_and(|t| t.values().any(|uuid| *uuid == meta.uuid));
        if deleted {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "index_closed_exception",
                format!("index [{name}] with uuid [{}] was deleted", meta.uuid),
            ));
        }
        if self.alias_map().await.contains_key(name) {
            return Err(ApiError::bad_request(
                "invalid_index_name_exception",
                format!("Invalid index name [{name}], already exists as alias"),
            ));
        }
        if let Some(mappings) = &mappings {
            // Validate before anything touches the disk.
            let mapping = cameodb_schema::mapping::Mapping::from_es_json(mappings)?;
            analysis_of(&meta.settings)?.check(&mapping)?;
        }
        let dir = self.root.join(name);
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|e| ApiError::internal(e.to_string()))?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        tokio::fs::write(dir.join(META_FILE), meta_json)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let shard = self.open_shard(name, &meta).await?;
        if let Some(mappings) = mappings {
            shard
                .run(move |store| store.put_mapping(mappings))
                .await??;
        }
        let entry = Arc::new(IndexEntry::new(name.to_string(), meta, shard));
        self.indices
            .write()
            .await
            .insert(name.to_string(), Arc::clone(&entry));
        info!(index = %name, "index created");
        Ok((entry, Created::Now))
    }

    /// Applies settings changes (already checked: dynamic settings only) to index `name`;
    /// returns its new identity and settings, with a higher settings version.
    pub async fn update_settings(
        &self,
        name: &str,
        changes: BTreeMap<String, String>,
    ) -> Result<IndexMeta, ApiError> {
        let Some(existing) = self.get(name).await else {
            return Err(ApiError::index_not_found(name));
        };
        let mut meta = existing.meta.clone();
        let replicas = |m: &IndexMeta| {
            m.settings
                .get("index.number_of_replicas")
                .and_then(|v| v.parse::<u64>().ok())
        };
        let before = replicas(&meta);
        meta.settings.extend(changes);
        meta.copies_lowered |= replicas(&meta) < before;
        meta.settings_version = meta.settings_version.saturating_add(1);
        self.adopt(name, meta.clone()).await?;
        Ok(meta)
    }

    /// Gives index `name` another identity and settings (the cluster settled on another node's
    /// copy of a concurrently created index, or its settings changed): its documents stay.
    pub async fn adopt(&self, name: &str, meta: IndexMeta) -> Result<(), ApiError> {
        let _ddl = self.ddl.lock().await;
        let Some(existing) = self.get(name).await else {
            return Err(ApiError::index_not_found(name));
        };
        let meta_json =
            serde_json::to_vec_pretty(&meta).map_err(|e| ApiError::internal(e.to_string()))?;
        tokio::fs::write(self.root.join(name).join(META_FILE), meta_json)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let entry = Arc::new(IndexEntry::new(
            name.to_string(),
            meta,
            existing.shard.clone(),
        ));
        self.indices.write().await.insert(name.to_string(), entry);
        info!(index = %name, "index identity adopted from the cluster");
        Ok(())
    }

    /// The index `name`, created with defaults if missing (Elasticsearch's auto-create on
    /// write), and whether this call created it.
    pub async fn ensure(&self, name: &str) -> Result<(Arc<IndexEntry>, Created), ApiError> {
        if let Some(entry) = self.get(name).await {
            return Ok((entry, Created::Before));
        }
        let (settings, mappings, aliases) =
            self.with_templates(name, parse_settings(None)?, None, BTreeMap::new())?;
        let mut meta = self.new_meta(settings);
        meta.aliases = aliases;
        self.ensure_with(name, meta, mappings).await
    }

    /// The index `name`, created with defaults if missing (Elasticsearch's auto-create on write).
    pub async fn get_or_create(&self, name: &str) -> Result<Arc<IndexEntry>, ApiError> {
        if let Some(entry) = self.get(name).await {
            return Ok(entry);
        }
        Ok(self.ensure(name).await?.0)
    }

    /// Deletes an index and its files.
    pub async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let _ddl = self.ddl.lock().await;
        let entry = self
            .indices
            .write()
            .await
            .remove(name)
            .ok_or_else(|| ApiError::index_not_found(name))?;
        if let Ok(mut tombstones) = self.tombstones.lock() {
            tombstones.insert(name.to_string(), entry.meta.uuid.clone());
        }
        entry.shard.close().await?;
        tokio::fs::remove_dir_all(self.root.join(name))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        info!(index = %name, "index deleted");
        Ok(())
    }

    /// Records the cluster's current members: the placement of indexes created from now on.
    pub fn set_members(&self, ids: Vec<String>) {
        if let Ok(mut members) = self.members.write() {
            *members = ids;
        }
    }

    /// Indexes deleted since start: name -> uuid.
    pub fn tombstones(&self) -> BTreeMap<String, String> {
        self.tombstones
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Closes every index (shutdown): commits and stops their actors.
    pub async fn close_all(&self) {
        for entry in self.all().await {
            if let Err(err) = entry.shard.close().await {
                tracing::warn!(index = %entry.name, reason = %err.reason, "closing index failed");
            }
        }
    }

    /// The settings object Elasticsearch shows for an index.
    pub fn settings_json(entry: &IndexEntry) -> Value {
        let mut index = Map::new();
        for (key, value) in &entry.meta.settings {
            let shown = if key == ANALYSIS {
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()))
            } else {
                Value::String(value.clone())
            };
            index.insert(key.trim_start_matches("index.").to_string(), shown);
        }
        index.insert(
            "creation_date".into(),
            Value::String(entry.meta.creation_date.to_string()),
        );
        index.insert("uuid".into(), Value::String(entry.meta.uuid.clone()));
        index.insert("provided_name".into(), Value::String(entry.name.clone()));
        index.insert("version".into(), serde_json::json!({"created": "8500000"}));
        serde_json::json!({"index": index})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_elasticsearch_rules() {
        assert!(validate_name("books").is_ok());
        let long = "a".repeat(256);
        for bad in [
            "", "Books", "_x", "a b", "a*", "a/b", "a\\b", ".", "..", "\0x", "a\nb", "\u{7f}",
            &long,
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
