//! PostgresSourceConfig: defaults, serde formats, the translation into session options.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::assemble::DEFAULT_MAX_BATCH_CHANGES;

type Mutation = Box<dyn Fn(&mut PostgresSourceConfig)>;

fn valid() -> PostgresSourceConfig {
    PostgresSourceConfig::new("app", "cdc")
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

/// The first validation error's field.
fn field_of(c: &PostgresSourceConfig) -> String {
    c.validate().unwrap_err().field.into_owned()
}

mod url_env;
mod validation;

// ---- defaults and serde ----

#[test]
fn defaults_match_drasi_source_postgres() {
    let c = PostgresSourceConfig::default();
    assert_eq!(c.host, "localhost");
    assert_eq!(c.port, 5432);
    assert_eq!(c.database, "");
    assert_eq!(c.user, "");
    assert!(c.password.expose().is_empty());
    assert!(c.tables.is_empty());
    assert_eq!(c.slot_name, "drasi_slot");
    assert_eq!(c.publication_name, "drasi_publication");
    assert_eq!(c.ssl_mode, SslMode::Prefer);
    assert!(c.table_keys.is_empty());
    assert!(c.auto_start);
    assert_eq!(c.dispatch_mode, DispatchMode::Channel);
    assert_eq!(c.dispatch_buffer_capacity, 1000);
}

#[test]
fn defaults_of_our_fields() {
    let c = PostgresSourceConfig::default();
    assert_eq!(c.channel_binding, ChannelBinding::Prefer);
    assert_eq!(c.application_name, "pgcdc");
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(c.ssl_root_cert, None);
    assert_eq!(c.hostaddr, None);
    assert!(c.create_slot && !c.temporary_slot && !c.create_publication);
    assert_eq!(c.start_lsn, None);
    assert_eq!(c.proto_version, None);
    assert!(!c.binary && !c.two_phase && c.messages);
    assert_eq!(c.streaming, StreamingMode::Off);
    assert_eq!(c.origin, None);
    assert_eq!(c.status_interval(), Duration::from_secs(10));
    assert_eq!(c.max_batch_changes, DEFAULT_MAX_BATCH_CHANGES);
    assert!(c.include_old_values);
    assert_eq!(c.ack_mode, AckMode::OnDelivery);
    assert_eq!(
        c.reconnect,
        ReconnectConfig {
            initial_delay_ms: 5000,
            max_delay_ms: 60_000,
            max_attempts: None
        }
    );
    assert_eq!(c.bootstrap, BootstrapMode::None);
}

#[test]
fn default_is_invalid_until_database_and_user_are_set() {
    let errs = PostgresSourceConfig::default().validation_errors();
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_ref()).collect();
    assert_eq!(fields, ["database", "user"]);
    assert!(errs[0].to_string().contains("required"), "{}", errs[0]);
    valid().validate().unwrap();
}

#[test]
fn seed_json_deserializes_unchanged() {
    let json = r#"{
        "host": "db.prod.internal",
        "port": 5433,
        "database": "production",
        "user": "replication_user",
        "password": "secret",
        "tables": ["accounts", "public.transactions"],
        "slot_name": "prod_slot",
        "publication_name": "prod_publication",
        "ssl_mode": "require",
        "table_keys": [
            {"table": "accounts", "key_columns": ["account_id"]},
            {"table": "public.transactions", "key_columns": ["tx_id", "line"]}
        ]
    }"#;
    let c: PostgresSourceConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.host, "db.prod.internal");
    assert_eq!(c.port, 5433);
    assert_eq!(c.database, "production");
    assert_eq!(c.user, "replication_user");
    assert_eq!(c.password.expose(), b"secret");
    assert_eq!(c.tables, ["accounts", "public.transactions"]);
    assert_eq!(c.slot_name, "prod_slot");
    assert_eq!(c.publication_name, "prod_publication");
    assert_eq!(c.ssl_mode, SslMode::Require);
    assert_eq!(
        c.table_keys,
        [
            TableKeyConfig::new("accounts", ["account_id"]),
            TableKeyConfig::new("public.transactions", ["tx_id", "line"]),
        ]
    );
    // Everything else is defaulted.
    assert_eq!(c.application_name, "pgcdc");
    assert!(c.auto_start);
    c.validate().unwrap();
}

#[test]
fn seed_minimal_json_and_unknown_keys() {
    let c: PostgresSourceConfig =
        serde_json::from_str(r#"{"database": "mydb", "user": "me", "source_type": "postgres"}"#)
            .unwrap();
    assert_eq!(c, PostgresSourceConfig::new("mydb", "me"));
}

#[test]
fn drasi_server_camel_case_aliases() {
    let json = r#"{
        "database": "db", "user": "u",
        "slotName": "s1", "publicationName": "p1", "sslMode": "disable",
        "tableKeys": [{"table": "t", "keyColumns": ["id"]}]
    }"#;
    let c: PostgresSourceConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.slot_name, "s1");
    assert_eq!(c.publication_name, "p1");
    assert_eq!(c.ssl_mode, SslMode::Disable);
    assert_eq!(c.table_keys, [TableKeyConfig::new("t", ["id"])]);
}

#[test]
fn our_fields_deserialize() {
    let json = r#"{
        "database": "db", "user": "u",
        "ssl_mode": "verify-full", "channel_binding": "require",
        "hostaddr": "::1", "ssl_root_cert": "/etc/ca.pem",
        "connect_timeout_ms": 0, "start_lsn": "16/B374D848",
        "proto_version": 4, "streaming": "parallel", "two_phase": true,
        "origin": "none", "binary": true, "messages": false,
        "dispatch_mode": "broadcast", "ack_mode": "manual",
        "reconnect": {"max_attempts": 3},
        "bootstrap": "postgres", "auto_start": false
    }"#;
    let c: PostgresSourceConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.ssl_mode, SslMode::VerifyFull);
    assert_eq!(c.channel_binding, ChannelBinding::Require);
    assert_eq!(c.hostaddr, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(c.ssl_root_cert, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(c.connect_timeout(), None);
    assert_eq!(c.start_lsn, Some(Lsn(0x16_B374_D848)));
    assert_eq!(c.streaming, StreamingMode::Parallel);
    assert_eq!(c.origin.as_deref(), Some("none"));
    assert_eq!(c.dispatch_mode, DispatchMode::Broadcast);
    assert_eq!(c.ack_mode, AckMode::Manual);
    assert_eq!(c.reconnect.max_attempts, Some(3));
    assert_eq!(c.reconnect.initial_delay_ms, 5000);
    assert_eq!(c.bootstrap, BootstrapMode::Postgres);
    assert!(!c.auto_start && c.binary && !c.messages && c.two_phase);
    c.validate().unwrap();
}

#[test]
fn bad_values_are_serde_errors() {
    for (json, needle) in [
        (r#"{"ssl_mode": "sometimes"}"#, "verify-full"),
        (r#"{"start_lsn": "nope"}"#, "LSN"),
        (r#"{"streaming": "maybe"}"#, "parallel"),
        (r#"{"bootstrap": "magic"}"#, "postgres"),
        (r#"{"bootstrap": {"type": "jsonl"}}"#, "paths"),
    ] {
        let e = serde_json::from_str::<PostgresSourceConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{json}: {e}");
    }
}

#[test]
fn bootstrap_forms() {
    let parse = |j: &str| serde_json::from_str::<BootstrapMode>(j).unwrap();
    assert_eq!(parse("true"), BootstrapMode::Postgres);
    assert_eq!(parse("false"), BootstrapMode::None);
    assert_eq!(parse(r#""noop""#), BootstrapMode::None);
    assert_eq!(parse(r#"{"kind": "postgres"}"#), BootstrapMode::Postgres);
    assert_eq!(
        parse(r#"{"type": "scriptfile", "file_paths": ["a.jsonl", "b.jsonl"]}"#),
        BootstrapMode::Jsonl {
            paths: vec!["a.jsonl".into(), "b.jsonl".into()]
        }
    );
    assert_eq!(
        parse(r#"{"type": "jsonl", "path": "x.jsonl"}"#),
        BootstrapMode::Jsonl {
            paths: vec!["x.jsonl".into()]
        }
    );
    let j = BootstrapMode::Jsonl {
        paths: vec!["x.jsonl".into()],
    };
    assert_eq!(parse(&serde_json::to_string(&j).unwrap()), j);
    assert_eq!(
        serde_json::to_string(&BootstrapMode::Postgres).unwrap(),
        r#""postgres""#
    );
}

#[test]
fn serialize_round_trip_keeps_the_password_but_debug_redacts_it() {
    let mut c = valid();
    c.password = Password::from("s3cr3t-pw");
    c.tables = vec!["users".into()];
    c.table_keys = vec![TableKeyConfig::new("users", ["id"])];
    c.start_lsn = Some(Lsn(0x1_0000_00FF));
    c.hostaddr = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)));
    c.streaming = StreamingMode::On;
    c.ack_mode = AckMode::Manual;
    c.bootstrap = BootstrapMode::Jsonl {
        paths: vec!["seed.jsonl".into()],
    };
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains(r#""password":"s3cr3t-pw""#), "{json}");
    assert!(json.contains(r#""start_lsn":"1/FF""#), "{json}");
    assert!(json.contains(r#""ack_mode":"manual""#), "{json}");
    assert!(json.contains(r#""ssl_mode":"prefer""#), "{json}");
    let back: PostgresSourceConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    // Defaults round-trip too (None fields are omitted).
    let d = PostgresSourceConfig::default();
    let json = serde_json::to_string(&d).unwrap();
    assert!(!json.contains("start_lsn"), "{json}");
    assert_eq!(
        serde_json::from_str::<PostgresSourceConfig>(&json).unwrap(),
        d
    );
    // Debug never shows the secret.
    assert!(!format!("{c:?}").contains("s3cr3t"));
}

// ---- conversions ----

#[test]
fn connect_params_mapping() {
    let mut c = valid();
    c.password = Password::from("pw");
    c.ssl_mode = SslMode::Require;
    c.channel_binding = ChannelBinding::Require;
    c.application_name = "svc".into();
    c.connect_timeout_ms = 2500;
    let p = c.connect_params(true);
    assert_eq!(p.user, "cdc");
    assert_eq!(p.database.as_deref(), Some("app"));
    assert_eq!(p.password, Some(Password::from("pw")));
    assert!(p.replication);
    assert_eq!(p.ssl_mode, SslMode::Require);
    assert_eq!(p.channel_binding, ChannelBinding::Require);
    assert_eq!(p.application_name, "svc");
    assert_eq!(p.startup_timeout, Some(Duration::from_millis(2500)));
    assert!(p.startup_params().contains(&("replication", "database")));
    for pinned in [
        ("statement_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("lock_timeout", "0"),
    ] {
        assert!(p.startup_params().contains(&pinned), "{pinned:?}");
        let ordinary = c.connect_params(false);
        assert!(ordinary.startup_params().contains(&pinned), "{pinned:?}");
    }

    let mut c = valid();
    c.connect_timeout_ms = 0;
    let p = c.connect_params(false);
    assert!(!p.replication);
    assert_eq!(p.password, None, "empty password is not sent");
    assert_eq!(p.startup_timeout, None);
    assert_eq!(p.application_name, "pgcdc");
}

#[test]
fn key_and_pipeline_config() {
    let mut c = valid();
    c.table_keys = vec![
        TableKeyConfig::new("users", ["user_id"]),
        TableKeyConfig::new(r#"sales."Order.Lines""#, ["order_id", "line"]),
    ];
    c.max_batch_changes = 42;
    c.include_old_values = false;
    let keys = c.key_config();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.get("users"), Some(&["user_id".to_string()][..]));
    assert_eq!(
        keys.get("sales.Order.Lines"),
        Some(&["order_id".to_string(), "line".to_string()][..])
    );
    let p = c.pipeline_config();
    assert_eq!(p.max_batch_changes, 42);
    assert!(!p.include_old_values);
    assert_eq!(p.keys, keys);
}

#[test]
fn the_session_options_and_reconnect_policy_follow_the_config() {
    let mut c = valid();
    c.slot_name = "s1".into();
    c.publication_name = "p1".into();
    c.tables = vec!["a".into(), "x.b".into()];
    c.create_slot = false;
    c.temporary_slot = true;
    c.start_lsn = Some(crate::Lsn(0x10));
    c.binary = true;
    c.streaming = StreamingMode::Parallel;
    c.two_phase = true;
    c.origin = Some("none".into());
    c.messages = false;
    c.status_interval_ms = 2500;
    c.reconnect.initial_delay_ms = 100;
    c.reconnect.max_delay_ms = 900;
    c.reconnect.max_attempts = Some(3);
    let o = c.replication_options();
    assert_eq!(
        (o.slot_name.as_str(), o.publication_name.as_str()),
        ("s1", "p1")
    );
    assert_eq!(o.tables, ["a", "x.b"]);
    assert!(!o.create_slot && o.temporary_slot && o.binary && o.two_phase && !o.messages);
    assert_eq!(o.start_lsn, Some(crate::Lsn(0x10)));
    assert_eq!(o.streaming, StreamingMode::Parallel);
    assert_eq!(o.origin.as_deref(), Some("none"));
    assert_eq!(o.status_interval, Duration::from_millis(2500));
    let r = c.reconnect_policy();
    assert_eq!(r.initial_delay, Duration::from_millis(100));
    assert_eq!(r.max_delay, Duration::from_millis(900));
    assert_eq!(r.max_attempts, Some(3));
}
