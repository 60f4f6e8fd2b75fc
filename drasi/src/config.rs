//! The configuration, field for field the one of drasi-source-postgres 0.2.12.

use serde::{Deserialize, Serialize};

pub use pgcdc_tokio::{SslMode, TableKeyConfig};

/// The connection and replication settings of a [`PostgresReplicationSource`]
/// (drasi-source-postgres's struct: the same public fields, names, serde names and defaults).
///
/// Everything pgcdc adds (root certificates, reconnect policy, protocol options …) is set on
/// the builder with [`PostgresSourceBuilder::with_pgcdc`].
///
/// [`PostgresReplicationSource`]: crate::PostgresReplicationSource
/// [`PostgresSourceBuilder::with_pgcdc`]: crate::PostgresSourceBuilder::with_pgcdc
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PostgresSourceConfig {
    /// PostgreSQL host (`localhost`).
    #[serde(default = "default_host")]
    pub host: String,
    /// PostgreSQL port (5432).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Database name (required).
    pub database: String,
    /// Database user (required; needs the `REPLICATION` attribute).
    pub user: String,
    /// Password (empty: none).
    #[serde(default)]
    pub password: String,
    /// Tables to replicate (`table` or `schema.table`; empty: every table of the publication).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Replication slot name (`drasi_slot`); created when missing.
    #[serde(default = "default_slot_name")]
    pub slot_name: String,
    /// Publication name (`drasi_publication`).
    #[serde(default = "default_publication_name")]
    pub publication_name: String,
    /// TLS mode (`prefer`), on every connection, the replication one included.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// Element-id key columns per table, overriding the primary key.
    #[serde(default)]
    pub table_keys: Vec<TableKeyConfig>,
}

fn default_host() -> String {
    "localhost".to_owned()
}

fn default_port() -> u16 {
    5432
}

fn default_slot_name() -> String {
    "drasi_slot".to_owned()
}

fn default_publication_name() -> String {
    "drasi_publication".to_owned()
}

impl Default for PostgresSourceConfig {
    fn default() -> Self {
        PostgresSourceConfig {
            host: default_host(),
            port: default_port(),
            database: String::new(),
            user: String::new(),
            password: String::new(),
            tables: Vec::new(),
            slot_name: default_slot_name(),
            publication_name: default_publication_name(),
            ssl_mode: SslMode::default(),
            table_keys: Vec::new(),
        }
    }
}

impl PostgresSourceConfig {
    /// Checks the configuration; the error names the field and how to fix it.
    ///
    /// # Errors
    ///
    /// An empty `database`, `user`, `slot_name` or `publication_name`, port 0, or anything the
    /// pgcdc source refuses (an invalid slot name, a malformed table name …).
    pub fn validate(&self) -> anyhow::Result<()> {
        let required = [
            ("database", &self.database, "the PostgreSQL database name"),
            ("user", &self.user, "the PostgreSQL user for replication"),
            ("slot_name", &self.slot_name, "a replication slot name"),
            (
                "publication_name",
                &self.publication_name,
                "a publication name",
            ),
        ];
        for (field, value, what) in required {
            if value.is_empty() {
                anyhow::bail!("Validation error: {field} cannot be empty. Please specify {what}");
            }
        }
        if self.port == 0 {
            anyhow::bail!(
                "Validation error: port cannot be 0. Please specify a valid port number (1-65535)"
            );
        }
        self.pgcdc_builder("validate")
            .build()
            .map(drop)
            .map_err(|e| anyhow::anyhow!("Validation error: {e}"))
    }

    /// A pgcdc source builder with these settings.
    pub(crate) fn pgcdc_builder(&self, id: &str) -> pgcdc_tokio::PostgresSourceBuilder {
        let mut b = pgcdc_tokio::PostgresReplicationSource::builder(id)
            .with_host(&self.host)
            .with_port(self.port)
            .with_database(&self.database)
            .with_user(&self.user)
            .with_tables(self.tables.clone())
            .with_slot_name(&self.slot_name)
            .with_publication_name(&self.publication_name)
            .with_ssl_mode(self.ssl_mode);
        if !self.password.is_empty() {
            b = b.with_password(&self.password);
        }
        for key in &self.table_keys {
            b = b.add_table_key(key.clone());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c: PostgresSourceConfig =
            serde_json::from_str(r#"{"database": "db", "user": "u"}"#).unwrap();
        assert_eq!(c.host, "localhost");
        assert_eq!(c.port, 5432);
        assert_eq!(c.slot_name, "drasi_slot");
        assert_eq!(c.publication_name, "drasi_publication");
        assert_eq!(c.ssl_mode, SslMode::Prefer);
        c.validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let c = PostgresSourceConfig {
            user: "u".into(),
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("database cannot be empty"), "{e}");
        let c = PostgresSourceConfig {
            database: "d".into(),
            user: "u".into(),
            port: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("port"));
        let c = PostgresSourceConfig {
            database: "d".into(),
            user: "u".into(),
            slot_name: "Bad-Slot".into(),
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("slot"), "{e}");
    }
}
