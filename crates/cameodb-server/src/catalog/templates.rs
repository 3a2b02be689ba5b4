//! The node's copy of the cluster's index templates (kept in `<data dir>/templates.json`), and
//! what they give an index being created.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Catalog, parse_settings};
use crate::aliases::AliasMeta;
use crate::error::ApiError;
use crate::templates::{self, TemplateKind, TemplateRecord, TemplateSet};

/// The file the templates live in, beside the indexes.
pub(super) const TEMPLATES_FILE: &str = "templates.json";

/// Reads the templates file (none yet: no templates).
pub(super) async fn load(data_dir: &Path) -> Result<TemplateSet, ApiError> {
    let path = data_dir.join(TEMPLATES_FILE);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(TemplateSet::new()),
        Err(err) => {
            return Err(ApiError::internal(format!(
                "cannot read {}: {err}",
                path.display()
            )));
        }
    };
    let records: Vec<TemplateRecord> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("corrupt {}: {e}", path.display())))?;
    let mut set = TemplateSet::new();
    for record in records {
        templates::merge(&mut set, record);
    }
    Ok(set)
}

/// A new index's settings, mappings and aliases.
type NewIndex = (
    BTreeMap<String, String>,
    Option<Value>,
    BTreeMap<String, AliasMeta>,
);

impl Catalog {
    /// Every template this node knows, tombstones included.
    pub fn templates(&self) -> TemplateSet {
        self.templates.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The version a new write of template `name` gets here: now, and past the one it has.
    pub fn next_template_version(
        &self,
        kind: TemplateKind,
        name: &str,
        node: &str,
    ) -> (u64, String) {
        let now = super::now_millis();
        let current = self
            .templates
            .lock()
            .ok()
            .and_then(|t| t.get(&(kind, name.to_string())).map(|r| r.version.0))
            .unwrap_or(0);
        (now.max(current.saturating_add(1)), node.to_string())
    }

    /// Takes the records newer than this node's, and saves the set when any was; whether any
    /// was.
    pub async fn merge_templates(&self, records: Vec<TemplateRecord>) -> Result<bool, ApiError> {
        let _ddl = self.ddl.lock().await;
        let snapshot = {
            let Ok(mut set) = self.templates.lock() else {
                return Err(ApiError::internal("template set poisoned"));
            };
            let mut changed = false;
            for record in records {
                changed |= templates::merge(&mut set, record);
            }
            if !changed {
                return Ok(false);
            }
            set.values().cloned().collect::<Vec<_>>()
        };
        let path = self.data_dir().join(TEMPLATES_FILE);
        let tmp = path.with_extension("json.tmp");
        let bytes =
            serde_json::to_vec_pretty(&snapshot).map_err(|e| ApiError::internal(e.to_string()))?;
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", tmp.display())))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(true)
    }

    fn data_dir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// The settings, mappings and aliases of a new index `name`: what the templates matching
    /// it give, with the request's own on top.
    pub(super) fn with_templates(
        &self,
        name: &str,
        settings: BTreeMap<String, String>,
        mappings: Option<Value>,
        aliases: BTreeMap<String, AliasMeta>,
    ) -> Result<NewIndex, ApiError> {
        let composed = templates::compose(&self.templates(), name);
        if composed.is_empty() {
            return Ok((settings, mappings, aliases));
        }
        let mut merged = parse_settings(Some(&Value::Object(composed.settings)))?;
        merged.extend(settings);
        let mappings = match (composed.mappings.is_empty(), mappings) {
            (true, mine) => mine,
            (false, None) => Some(Value::Object(composed.mappings)),
            (false, Some(Value::Object(mine))) => {
                let mut base = composed.mappings;
                templates::deep_merge(&mut base, &mine);
                Some(Value::Object(base))
            }
            (false, Some(other)) => Some(other),
        };
        let mut all_aliases = AliasMeta::parse_all(&composed.aliases)?;
        all_aliases.extend(aliases);
        Ok((merged, mappings, all_aliases))
    }
}
