//! The catalog of well-known MCP servers: a default that ships with the binary, plus files added
//! by configuration.

use std::path::Path;

use serde::{Deserialize, Serialize};

const DEFAULT_CATALOG: &str = include_str!("../catalog/default.json");

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogEntry {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `remote`, `npx`, `uvx` or `command`.
    pub runtime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Env keys the server cannot run without; they are sensitive.
    #[serde(default)]
    pub required_env: Vec<String>,
}

/// Cheap to clone: the entries are shared.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: std::sync::Arc<Vec<CatalogEntry>>,
}

impl Catalog {
    /// The default catalog, then each file in order; a later entry replaces an earlier one with
    /// the same id.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut entries: Vec<CatalogEntry> = serde_json::from_str(DEFAULT_CATALOG)
            .map_err(|error| format!("the built-in catalog is invalid: {error}"))?;
        for file in files {
            let path = file.as_ref();
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read catalog {}: {error}", path.display()))?;
            let added: Vec<CatalogEntry> = serde_json::from_str(&text)
                .map_err(|error| format!("catalog {} is invalid: {error}", path.display()))?;
            for entry in added {
                entries.retain(|existing| existing.id != entry.id);
                entries.push(entry);
            }
        }
        Ok(Self {
            entries: std::sync::Arc::new(entries),
        })
    }

    /// Entries whose id, name or description contains `search` (case-insensitive); all without.
    pub fn search(&self, search: Option<&str>) -> Vec<CatalogEntry> {
        let needle = search.map(str::to_lowercase).filter(|s| !s.is_empty());
        self.entries
            .iter()
            .filter(|entry| {
                needle.as_deref().is_none_or(|needle| {
                    entry.id.to_lowercase().contains(needle)
                        || entry.name.to_lowercase().contains(needle)
                        || entry.description.to_lowercase().contains(needle)
                })
            })
            .cloned()
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|entry| entry.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_loads_and_searches() {
        let catalog = Catalog::load(&[] as &[&Path]).expect("loads");
        assert!(catalog.get("everything").is_some());
        let found = catalog.search(Some("SEARCH"));
        assert!(found.iter().any(|e| e.id == "brave-search"));
        assert_eq!(catalog.search(None).len(), catalog.entries.len());

        let dir = tempfile::tempdir().expect("dir");
        let extra = dir.path().join("extra.json");
        std::fs::write(
            &extra,
            r#"[{"id": "everything", "name": "Pinned Everything", "description": "d", "runtime": "npx", "package": "@modelcontextprotocol/server-everything@2026.8.31"}]"#,
        )
        .expect("written");
        let catalog = Catalog::load(&[&extra]).expect("loads");
        assert_eq!(
            catalog.get("everything").map(|e| e.name.as_str()),
            Some("Pinned Everything")
        );
        std::fs::write(&extra, "[{}]").expect("written");
        assert!(Catalog::load(&[&extra]).is_err());
    }
}
