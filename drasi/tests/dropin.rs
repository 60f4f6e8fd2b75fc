//! An application written against drasi-source-postgres 0.2.12, as its README and docs show
//! it, compiles against pgcdc-drasi with only the crate name changed. Nothing connects: the
//! sources are built and inspected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use drasi_lib::Source;
use drasi_lib::bootstrap::{
    BootstrapContext, BootstrapProvider, BootstrapRequest, BootstrapResult,
};
use drasi_lib::channels::{BootstrapEventSender, DispatchMode};
use pgcdc_drasi::{
    PostgresReplicationSource, PostgresSourceBuilder, PostgresSourceConfig, SslMode, TableKeyConfig,
};

/// A bootstrap provider of the application's own (drasi-bootstrap-postgres's provider is
/// passed the same way).
struct Empty;

#[async_trait::async_trait]
impl BootstrapProvider for Empty {
    async fn bootstrap(
        &self,
        _request: BootstrapRequest,
        _context: &BootstrapContext,
        _event_tx: BootstrapEventSender,
        _settings: Option<&drasi_lib::config::SourceSubscriptionSettings>,
    ) -> anyhow::Result<BootstrapResult> {
        Ok(BootstrapResult::default())
    }
}

#[test]
fn the_seeds_builder() -> anyhow::Result<()> {
    let source = PostgresReplicationSource::builder("postgres-source-1")
        .with_host("db.example.com")
        .with_port(5432)
        .with_database("production_db")
        .with_user("drasi_user")
        .with_password("secure_password")
        .with_tables(vec!["users".to_string(), "orders".to_string()])
        .add_table("items")
        .with_slot_name("drasi_production_slot")
        .with_publication_name("drasi_publication")
        .with_ssl_mode(SslMode::Require)
        .add_table_key(TableKeyConfig {
            table: "users".to_string(),
            key_columns: vec!["user_id".to_string()],
        })
        .with_table_keys(vec![TableKeyConfig {
            table: "orders".to_string(),
            key_columns: vec!["order_id".to_string(), "line".to_string()],
        }])
        .with_dispatch_mode(DispatchMode::Channel)
        .with_dispatch_buffer_capacity(2000)
        .with_bootstrap_provider(Empty)
        .with_auto_start(true)
        .build()?;
    assert_eq!(source.id(), "postgres-source-1");
    assert_eq!(source.type_name(), "postgres");
    assert!(source.auto_start());
    let props = source.properties();
    assert_eq!(props["host"], "db.example.com");
    assert!(!props.contains_key("password"));
    let _: PostgresSourceBuilder = PostgresSourceBuilder::new("other");
    Ok(())
}

#[test]
fn the_seeds_config_struct() -> anyhow::Result<()> {
    let config = PostgresSourceConfig {
        host: "db.example.com".to_string(),
        port: 5432,
        database: "mydb".to_string(),
        user: "replication_user".to_string(),
        password: "secret".to_string(),
        tables: vec!["users".to_string()],
        slot_name: "drasi_slot".to_string(),
        publication_name: "drasi_pub".to_string(),
        ssl_mode: SslMode::Disable,
        table_keys: vec![],
    };
    config.validate()?;
    let source = PostgresReplicationSource::new("my-pg-source", config.clone())?;
    assert_eq!(source.id(), "my-pg-source");
    let source = PostgresReplicationSource::with_dispatch(
        "dispatch-source",
        config.clone(),
        Some(DispatchMode::Channel),
        Some(2000),
    )?;
    assert_eq!(source.id(), "dispatch-source");
    let source = PostgresReplicationSource::builder("cfg")
        .with_config(config)
        .build()?;
    assert_eq!(source.describe_schema().unwrap().nodes[0].label, "users");
    Ok(())
}

#[test]
fn the_seeds_yaml_properties() {
    // The seed's documented configuration, as a Drasi config file carries it.
    let config: PostgresSourceConfig = serde_json::from_value(serde_json::json!({
        "host": "db.example.com",
        "port": 5432,
        "database": "production",
        "user": "replication_user",
        "password": "secret",
        "tables": ["users", "orders"],
        "slot_name": "drasi_slot",
        "publication_name": "drasi_publication",
        "table_keys": [
            {"table": "users", "key_columns": ["id"]},
            {"table": "orders", "key_columns": ["order_id"]}
        ]
    }))
    .unwrap();
    assert_eq!(config.ssl_mode, SslMode::Prefer);
    assert_eq!(config.table_keys.len(), 2);
}

#[test]
fn bad_config_says_which_field() {
    let err = PostgresReplicationSource::builder("s")
        .with_user("u")
        .build()
        .err()
        .expect("no database");
    assert!(
        err.to_string().contains("database cannot be empty"),
        "{err}"
    );
}
