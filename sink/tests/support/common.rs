//! What the sink tests share (`sink/tests/jetstream.rs` and `cli/tests/sink.rs` include this
//! file): a database per test on the binary's cluster, and reading a JetStream stream back.
// Each including test binary uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use async_nats::jetstream;
use pgcdc_testkit::{Cluster, NatsServer, SCRAM_USER};
use serde_json::Value as J;

/// One test's database on the binary's cluster, with its own slot (`<database>_slot`) and
/// publication.
pub struct Db {
    pub cluster: &'static Cluster,
    pub name: String,
}

impl Db {
    /// Creates the database `<prefix>_<name>`.
    pub fn new(prefix: &str, name: &str) -> Db {
        let cluster = Cluster::shared();
        let name = format!("{prefix}_{name}");
        cluster.create_database(&name).unwrap();
        Db { cluster, name }
    }

    /// Another handle on the same database (for a writer thread).
    pub fn handle(&self) -> Db {
        Db {
            cluster: self.cluster,
            name: self.name.clone(),
        }
    }

    pub fn sql(&self, sql: &str) -> String {
        self.cluster
            .psql(&self.name, sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}: {e}"))
    }

    pub fn slot(&self) -> String {
        format!("{}_slot", self.name)
    }

    /// Creates the slot (so that nothing written from now on is missed).
    pub fn create_slot(&self) {
        self.sql(&format!(
            "SELECT 1 FROM pg_create_logical_replication_slot('{}', 'pgoutput')",
            self.slot()
        ));
    }

    /// The URL of the database for the SCRAM user (its password percent-encoded).
    pub fn url(&self) -> String {
        let pw: String = SCRAM_USER
            .password
            .unwrap()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        format!(
            "postgres://{}:{pw}@{}:{}/{}",
            SCRAM_USER.name,
            self.cluster.host(),
            self.cluster.port(),
            self.name
        )
    }

    pub fn confirmed_flush(&self) -> u64 {
        lsn(&self.sql(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{}'",
            self.slot()
        )))
    }

    pub fn kill_walsender(&self) {
        self.sql(&format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = '{}' AND active_pid IS NOT NULL",
            self.slot()
        ));
    }
}

/// `X/Y` as a number.
pub fn lsn(s: &str) -> u64 {
    let (hi, lo) = s
        .trim()
        .split_once('/')
        .unwrap_or_else(|| panic!("not an LSN: {s:?}"));
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// A message as stored.
#[derive(Debug)]
pub struct Stored {
    pub subject: String,
    pub id: String,
    pub json: J,
}

pub async fn context(nats: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(nats.url()).await.unwrap())
}

/// Messages in the stream (0 while it does not exist).
pub async fn count(js: &jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.unwrap().state.messages,
        Err(_) => 0,
    }
}

/// Waits until the stream holds `n` messages (and fails past `limit`).
pub async fn wait_count(js: &jetstream::Context, name: &str, n: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let c = count(js, name).await;
        if c >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {c} messages, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message of the stream, in stream order.
pub async fn read_all(js: &jetstream::Context, name: &str) -> Vec<Stored> {
    let mut s = js.get_stream(name).await.unwrap();
    let st = s.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    if st.messages == 0 {
        return out;
    }
    for seq in st.first_sequence..=st.last_sequence {
        let m = s.get_raw_message(seq).await.unwrap();
        out.push(Stored {
            subject: m.subject.to_string(),
            id: m
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            json: serde_json::from_slice(&m.payload).unwrap(),
        });
    }
    out
}
