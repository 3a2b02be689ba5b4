//! Index expressions and aliases over the catalog: which open indexes an expression names, the
//! index a write through an alias goes to, and alias changes on this node's copy of an index's
//! metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Catalog, IndexEntry, IndexMeta, validate_name};
use crate::aliases::{self, AliasChange, AliasMeta, ExprError};
use crate::error::ApiError;

impl Catalog {
    /// Every alias, with the indexes it names and how.
    pub async fn alias_map(&self) -> BTreeMap<String, Vec<(String, AliasMeta)>> {
        let mut out: BTreeMap<String, Vec<(String, AliasMeta)>> = BTreeMap::new();
        for (name, entry) in self.indices.read().await.iter() {
            for (alias, meta) in &entry.meta.aliases {
                out.entry(alias.clone())
                    .or_default()
                    .push((name.clone(), meta.clone()));
            }
        }
        out
    }

    async fn resolve_with(
        &self,
        expression: &str,
        with_aliases: bool,
    ) -> Result<Vec<Arc<IndexEntry>>, ApiError> {
        for part in expression.split(',') {
            let name = part.trim().trim_start_matches('-');
            if name.starts_with('_') && name != "_all" {
                validate_name(name)?;
            }
        }
        let aliases: BTreeMap<String, Vec<String>> = self
            .alias_map()
            .await
            .into_iter()
            .map(|(alias, targets)| (alias, targets.into_iter().map(|(i, _)| i).collect()))
            .collect();
        let indices = self.indices.read().await;
        let names: Vec<&str> = indices.keys().map(String::as_str).collect();
        let resolved = aliases::resolve(expression, &names, &aliases, with_aliases).map_err(
            |err| match err {
                ExprError::Missing(name) => ApiError::index_not_found(&name),
                ExprError::AliasNotAllowed(name) => ApiError::illegal_argument(format!(
                    "The provided expression [{name}] matches an alias, specify the corresponding concrete indices instead."
                )),
            },
        )?;
        Ok(resolved
            .iter()
            .filter_map(|name| indices.get(name).map(Arc::clone))
            .collect())
    }

    /// Resolves an index expression (`a`, `a,b`, `logs-*`, `_all`, `*`, aliases, exclusions
    /// such as `logs-*,-logs-2`) to open indexes. Concrete names that are neither an index nor
    /// an alias are 404s; wildcards may match nothing.
    pub async fn resolve(&self, expression: &str) -> Result<Vec<Arc<IndexEntry>>, ApiError> {
        self.resolve_with(expression, true).await
    }

    /// Like [`Catalog::resolve`], but an alias is refused: index deletion takes concrete
    /// indexes only, as in Elasticsearch.
    pub async fn resolve_concrete(
        &self,
        expression: &str,
    ) -> Result<Vec<Arc<IndexEntry>>, ApiError> {
        self.resolve_with(expression, false).await
    }

    /// Like [`Catalog::resolve`], but concrete names that do not exist are skipped
    /// (`ignore_unavailable=true`).
    pub async fn resolve_available(&self, expression: &str) -> Vec<Arc<IndexEntry>> {
        match self.available_parts(expression).await {
            Some(kept) => self.resolve(&kept).await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// `expression` without its concrete names that are neither an index nor an alias
    /// (`ignore_unavailable`); `None` when nothing is left.
    pub async fn available_parts(&self, expression: &str) -> Option<String> {
        let aliases = self.alias_map().await;
        let mut kept = Vec::new();
        for part in expression
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let concrete = part != "_all" && !part.contains('*') && !part.starts_with('-');
            if !concrete || self.get(part).await.is_some() || aliases.contains_key(part) {
                kept.push(part);
            }
        }
        (!kept.is_empty()).then(|| kept.join(","))
    }

    /// The index a write addressed to `name` goes to: `name` itself, or the write index of the
    /// alias `name`.
    pub async fn write_index(&self, name: &str) -> Result<String, ApiError> {
        if self.get(name).await.is_some() {
            return Ok(name.to_string());
        }
        aliases::write_target(name, &self.alias_map().await)
    }

    /// Applies alias changes to index `name` (as its metadata owner): returns its new identity,
    /// with a higher settings version, for the other nodes.
    pub async fn update_aliases(
        &self,
        name: &str,
        changes: &[AliasChange],
    ) -> Result<IndexMeta, ApiError> {
        let Some(existing) = self.get(name).await else {
            return Err(ApiError::index_not_found(name));
        };
        for change in changes {
            if let AliasChange::Add { alias, .. } = change {
                check_alias_name(alias)?;
                if self.get(alias).await.is_some() {
                    return Err(ApiError::bad_request(
                        "invalid_alias_name_exception",
                        format!(
                            "Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias"
                        ),
                    ));
                }
            }
        }
        let mut meta = existing.meta.clone();
        aliases::apply(name, &mut meta.aliases, changes)?;
        meta.settings_version = meta.settings_version.saturating_add(1);
        self.adopt(name, meta.clone()).await?;
        Ok(meta)
    }
}

/// Alias names follow the index name rules.
pub(crate) fn check_alias_name(alias: &str) -> Result<(), ApiError> {
    validate_name(alias).map_err(|err| {
        ApiError::bad_request(
            "invalid_alias_name_exception",
            err.reason
                .replace("Invalid index name", "Invalid alias name"),
        )
    })
}
