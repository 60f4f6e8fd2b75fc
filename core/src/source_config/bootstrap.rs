//! How the initial snapshot is taken: [`BootstrapMode`] and its serde forms.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where the rows that exist before streaming starts come from.
///
/// drasi-source-postgres's configuration struct has no such field (its bootstrap provider is set on the
/// builder or beside the source in drasi-server's configuration); this one accepts the forms
/// such configurations use:
///
/// | form | meaning |
/// |---|---|
/// | `"none"`, `"noop"`, `false` | [`BootstrapMode::None`] |
/// | `"postgres"`, `"postgresql"`, `true` | [`BootstrapMode::Postgres`] |
/// | `{ "type": "postgres" }` (or `"kind"`) | [`BootstrapMode::Postgres`] |
/// | `{ "type": "jsonl", "paths": ["a.jsonl"] }` | [`BootstrapMode::Jsonl`]; `"path"` (one file) and drasi's `"scriptfile"` / `"file_paths"` are accepted too |
///
/// It serializes as `"none"`, `"postgres"` or `{ "type": "jsonl", "paths": [...] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootstrapMode {
    /// No snapshot: only changes committed after streaming starts are delivered (drasi-source-postgres's
    /// behaviour without a bootstrap provider).
    #[default]
    None,
    /// A consistent PostgreSQL snapshot: the slot is created with an exported snapshot, the
    /// tables are copied under it, and streaming starts at the slot's consistent point, so
    /// every row arrives exactly once.
    Postgres,
    /// Rows read from JSON Lines files, in order.
    Jsonl {
        /// The files to read.
        paths: Vec<PathBuf>,
    },
}

impl BootstrapMode {
    /// The spelling used in configurations (`none`, `postgres`, `jsonl`).
    pub fn as_str(&self) -> &'static str {
        match self {
            BootstrapMode::None => "none",
            BootstrapMode::Postgres => "postgres",
            BootstrapMode::Jsonl { .. } => "jsonl",
        }
    }

    fn from_kind(kind: &str, paths: Vec<PathBuf>) -> Result<Self, String> {
        match kind.to_ascii_lowercase().as_str() {
            "none" | "noop" => Ok(BootstrapMode::None),
            "postgres" | "postgresql" => Ok(BootstrapMode::Postgres),
            "jsonl" | "scriptfile" | "script_file" => {
                if paths.is_empty() {
                    Err(format!(
                        "bootstrap type {kind:?} needs the files to read: add \"paths\": [\"…\"]"
                    ))
                } else {
                    Ok(BootstrapMode::Jsonl { paths })
                }
            }
            _ => Err(format!(
                "unknown bootstrap type {kind:?}: expected none, postgres or jsonl"
            )),
        }
    }
}

impl Serialize for BootstrapMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BootstrapMode::None | BootstrapMode::Postgres => {
                serializer.serialize_str(self.as_str())
            }
            BootstrapMode::Jsonl { paths } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "jsonl")?;
                map.serialize_entry("paths", paths)?;
                map.end()
            }
        }
    }
}

#[derive(Deserialize)]
struct BootstrapTable {
    #[serde(rename = "type", alias = "kind")]
    kind: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default, alias = "file_paths", alias = "filePaths")]
    paths: Vec<PathBuf>,
}

struct BootstrapVisitor;

impl<'de> Visitor<'de> for BootstrapVisitor {
    type Value = BootstrapMode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "\"none\", \"postgres\", a boolean, or a map like {\"type\": \"jsonl\", \"paths\": [...]}",
        )
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(if v {
            BootstrapMode::Postgres
        } else {
            BootstrapMode::None
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        BootstrapMode::from_kind(v, Vec::new()).map_err(E::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BootstrapMode::None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let table = BootstrapTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let mut paths = table.paths;
        if let Some(p) = table.path {
            paths.insert(0, p);
        }
        BootstrapMode::from_kind(&table.kind, paths).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for BootstrapMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BootstrapVisitor)
    }
}
