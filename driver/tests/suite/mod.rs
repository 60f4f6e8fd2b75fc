//! The source's integration tests, written once and run by every runtime crate against a
//! real PostgreSQL (`pgcdc-testkit`). A runtime's test file includes this module with
//! `#[macro_use] #[path]` and instantiates the tests with
//! `shared_cluster_tests!(block_on, Runtime)`, `isolated_tests!(block_on, Runtime)` or
//! `fault_tests!(block_on, Runtime)`.
//!
//! The fault tests (walsender killed, connection cut, server restarted, stalled consumer, slot
//! creation interrupted, a backlog across cuts) have binaries of their own (`tests/faults*.rs`
//! of each runtime crate), named `faults::<test>`, and a stress mode ([`stress`]):
//!
//! * `PGCDC_STRESS_THREADS=N` runs N busy threads (integer arithmetic; with N ≥ 2 one of them
//!   allocates and frees buffers) beside each fault test, stopped when it ends;
//! * `PGCDC_STRESS_REPEAT=K` runs each fault test's body K times, each on fresh database, slot
//!   and publication names (`<name>_<i>`).
//!
//! ```text
//! PGCDC_STRESS_THREADS=2 PGCDC_STRESS_REPEAT=3 cargo test -p pgcdc-tokio --test faults -- --nocapture
//! ```
//!
//! Every `pub async fn <test><R: Runtime + Default>()` of a suite module is a test and must be
//! named in exactly one of the lists below (`shared_cluster_list!`, `connect_list!`,
//! `isolated_list!`, `fault_list!`). Each binary refers to every listed test (see
//! `every_suite_test_is_listed!`), and the suite denies dead code: a suite test that no list
//! names is never used, so every test binary fails to compile, naming the function.
#![deny(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod basic;
pub mod bootstrap;
pub mod connect;
pub mod failures;
pub mod faults;
pub mod stress;

/// `instantiate!(block_on, Runtime; module::test, …)`: one `#[test]` per suite test, run with
/// the runtime's `block_on`.
macro_rules! instantiate {
    ($block_on:path, $rt:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $block_on(suite::$module::$name::<$rt>());
            }
        )*
    };
}

/// `refer!(Runtime; module::test, …)`: statements naming each suite test (for
/// `every_suite_test_is_listed!`).
macro_rules! refer {
    ($rt:ty; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            let _ = suite::$module::$name::<$rt>;
        )*
    };
}

/// Names every listed suite test, whichever lists the binary instantiates, so the suite's
/// `deny(dead_code)` reports exactly the tests that no list names (and helpers nothing uses).
macro_rules! every_suite_test_is_listed {
    ($rt:ty) => {
        /// Never called: it only makes every listed suite test used.
        #[allow(dead_code)]
        fn every_suite_test_is_listed() {
            shared_cluster_list!(refer!($rt));
            connect_list!(refer!($rt));
            isolated_list!(refer!($rt));
            fault_list!(refer!($rt));
        }
    };
}

/// The suite tests that run on the binary's shared cluster, passed to `macro!(args; …)`.
macro_rules! shared_cluster_list {
    ($macro:ident ! ($($args:tt)*)) => {
        $macro!(
            $($args)*;
            basic::insert_update_delete,
            basic::transactions_and_keys,
            basic::unchanged_toast,
            basic::truncate_schema_messages,
            basic::stop_start_and_manual_ack,
            basic::idle_publication_advances,
            basic::broadcast_two_subscribers,
            basic::manual_acks_per_subscriber,
            basic::byte_budget_bounds_a_stalled_queue,
            basic::auto_start_on_subscribe,
            basic::renamed_tables_keep_keys,
            basic::unix_socket_host,
            basic::streamed_transaction_spills,
            basic::prepared_transaction_spills,
            basic::two_sources_on_one_slot,
            basic::streaming_on_beside_small_transactions,
            basic::streaming_parallel_beside_small_transactions,
            basic::origin_none_skips_replicated_changes,
            basic::failover_slot,
            basic::slot_lag_warning,
            basic::temporary_slot_lives_with_its_connection,
            failures::wrong_password,
            failures::cleartext_needs_tls_or_require_auth,
            failures::missing_publication,
            failures::table_not_in_publication,
            failures::user_without_replication,
            failures::invalid_config,
            failures::slot_lost_while_streaming,
            failures::scram_key_derivation_runs_off_the_executor,
            bootstrap::exact_handoff_under_writes,
            bootstrap::bootstrap_values_equal_stream,
            bootstrap::failure_and_restart,
            bootstrap::jsonl_provider,
            bootstrap::parallel_split_copy,
            bootstrap::tables_narrower_than_the_publication,
            bootstrap::role_timeouts_do_not_abort_copy,
            bootstrap::generated_columns_bootstrapped_like_streamed,
        );
    };
}

/// The connection tests ([`connect`]): the binary's shared cluster, and one without TLS.
macro_rules! connect_list {
    ($macro:ident ! ($($args:tt)*)) => {
        $macro!(
            $($args)*;
            connect::scram_succeeds_and_pins_output_settings,
            connect::wrong_password_reports_28p01,
            connect::cleartext_succeeds,
            connect::trust_succeeds,
            connect::md5_is_refused_with_a_pg_hba_hint,
            connect::user_without_replication_gets_42501,
            connect::identify_system_is_parsed,
            connect::sslmode_disable_prefer_require,
            connect::verify_ca_and_verify_full_with_the_test_ca,
            connect::verify_full_fails_on_a_wrong_host_name,
            connect::verify_ca_fails_against_an_unrelated_ca,
            connect::require_fails_against_a_server_without_tls,
            connect::prefer_falls_back_to_plaintext,
            connect::scram_plus_with_channel_binding_required_over_tls,
            connect::channel_binding_required_is_refused_without_tls,
            connect::query_errors_carry_sqlstate_and_keep_the_connection,
            connect::connection_refused_is_a_clear_error,
            connect::the_notices_kept_are_bounded,
            connect::cleartext_without_tls_is_refused_by_default,
            connect::cleartext_without_tls_is_sent_with_require_auth_password,
            connect::verify_modes_without_a_root_file_are_a_config_error,
            connect::require_with_a_root_file_verifies_the_chain,
            connect::system_roots_force_a_full_check,
        );
    };
}

/// The suite tests that start clusters of their own or measure the process's memory.
macro_rules! isolated_list {
    ($macro:ident ! ($($args:tt)*)) => {
        $macro!(
            $($args)*;
            failures::wal_level_replica,
            failures::slot_invalidated_is_fatal,
            basic::million_row_transaction,
        );
    };
}

/// The fault tests.
macro_rules! fault_list {
    ($macro:ident ! ($($args:tt)*)) => {
        $macro!(
            $($args)*;
            faults::walsender_killed,
            faults::connection_cut,
            faults::spilled_streams_survive_cuts,
            faults::server_restarted,
            faults::restart_between_prepare_and_commit,
            faults::stalled_consumer,
            faults::slot_creation_interrupted,
            faults::backlog_survives_cuts,
        );
    };
}

/// Every suite test that runs on the binary's shared cluster, for one runtime:
/// `shared_cluster_tests!(block_on, Runtime)`. The connection tests are in a module
/// `connect` of the binary (`cargo test -- connect::` selects them).
#[allow(unused_macros)]
macro_rules! shared_cluster_tests {
    ($block_on:path, $rt:ty) => {
        shared_cluster_list!(instantiate!($block_on, $rt));

        mod connect {
            use super::*;

            connect_list!(instantiate!($block_on, $rt));
        }

        every_suite_test_is_listed!($rt);
    };
}

/// The suite tests that start clusters of their own or measure the process's memory (run in
/// a binary of their own): `isolated_tests!(block_on, Runtime)`.
#[allow(unused_macros)]
macro_rules! isolated_tests {
    ($block_on:path, $rt:ty) => {
        isolated_list!(instantiate!($block_on, $rt));
        every_suite_test_is_listed!($rt);
    };
}

/// The fault tests, in a module `faults` of the test binary (so `cargo test -- faults::`
/// selects them), for one runtime: `fault_tests!(block_on, Runtime)`. Each runs under the
/// stress mode (see the module docs); the restart, stalled-consumer and slot-creation tests
/// start clusters of their own.
#[allow(unused_macros)]
macro_rules! fault_tests {
    ($block_on:path, $rt:ty) => {
        mod faults {
            use super::*;

            fault_list!(instantiate!($block_on, $rt));
        }

        every_suite_test_is_listed!($rt);
    };
}

use std::time::{Duration, Instant};

use futures_util::future::{Either, select};
use pgcdc_core::model::SourceChange;
use pgcdc_core::value::Value;
use pgcdc_driver::{ChangeBatch, Runtime, Source, SourceBuilder, Subscription};
use pgcdc_testkit::{Cluster, SCRAM_USER};

/// One test's database, slot and publication on a cluster.
pub struct Ctx {
    pub cluster: &'static Cluster,
    pub name: String,
    pub db: String,
    pub slot: String,
    pub publication: String,
}

impl Ctx {
    /// A fresh database named after the test on the binary's shared cluster.
    pub fn new(name: &str) -> Ctx {
        Self::on(Cluster::shared(), name)
    }

    /// A fresh database on `cluster`.
    pub fn on(cluster: &'static Cluster, name: &str) -> Ctx {
        let db = format!("db_{name}");
        cluster.create_database(&db).unwrap();
        // The superuser creates the test tables; the source's user copies them (bootstrap).
        cluster
            .psql(
                &db,
                "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;
                 ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO PUBLIC;",
            )
            .unwrap();
        Ctx {
            cluster,
            name: name.to_owned(),
            db,
            slot: format!("slot_{name}"),
            publication: format!("pub_{name}"),
        }
    }

    /// Runs SQL as the superuser in the test's database.
    /// The server's major version (10 … 18): tests of a feature a version lacks check the
    /// error or warning it gives instead.
    pub fn major(&self) -> u32 {
        self.cluster.major_version()
    }

    /// Starts `source`, which needs PostgreSQL `min_major` for `option`: on an older server the
    /// start must fail saying so (the test then ends: `false`).
    pub async fn start_needing<R: Runtime + Default>(
        &self,
        source: &pgcdc_driver::Source<R>,
        min_major: u32,
        option: &str,
    ) -> bool {
        if self.major() >= min_major {
            source.start().await.unwrap();
            return true;
        }
        let e = source
            .start()
            .await
            .expect_err("an option this server lacks");
        let text = e.to_string();
        assert!(
            text.contains(option) && text.contains(&format!("PostgreSQL {min_major} or later")),
            "{text}"
        );
        false
    }

    pub fn sql(&self, sql: &str) -> String {
        self.cluster
            .psql(&self.db, sql)
            .unwrap_or_else(|e| panic!("SQL failed: {sql}: {e}"))
    }

    /// Creates the publication for `tables` (`FOR ALL TABLES` when empty).
    pub fn publish(&self, tables: &[&str]) {
        if tables.is_empty() {
            self.sql(&format!(
                "CREATE PUBLICATION {} FOR ALL TABLES",
                self.publication
            ));
        } else {
            self.sql(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                self.publication,
                tables.join(", ")
            ));
        }
    }

    /// A builder for the test's source: the SCRAM user, the test's slot and publication,
    /// no auto-start, fast reconnects.
    pub fn builder<R: Runtime + Default>(&self) -> SourceBuilder<R> {
        Source::<R>::builder(format!("src-{}", self.name))
            .with_host(self.cluster.host())
            .with_port(self.cluster.port())
            .with_database(&self.db)
            .with_user(SCRAM_USER.name)
            .with_password(SCRAM_USER.password.unwrap_or_default())
            .with_slot_name(&self.slot)
            .with_publication_name(&self.publication)
            .with_auto_start(false)
            .with_reconnect_delay(Duration::from_millis(200), Duration::from_secs(1))
    }

    /// The slot's `confirmed_flush_lsn`, as text.
    pub fn confirmed_flush(&self) -> String {
        self.sql(&format!(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{}'",
            self.slot
        ))
    }
}

/// Waits for the next batch, failing the test after `limit`.
pub async fn next_batch<R: Runtime + Default>(
    sub: &mut Subscription,
    limit: Duration,
) -> Option<ChangeBatch> {
    let rt = R::default();
    match select(Box::pin(sub.recv()), rt.sleep(limit)).await {
        Either::Left((b, _)) => b,
        Either::Right(_) => None,
    }
}

/// Collects batches until `changes` changes have arrived (messages included), or panics after
/// `limit`.
pub async fn collect<R: Runtime + Default>(
    sub: &mut Subscription,
    changes: usize,
    limit: Duration,
) -> Vec<ChangeBatch> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut n = 0;
    while n < changes {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(b) = next_batch::<R>(sub, left).await else {
            panic!(
                "timed out after {limit:?} with {n} of {changes} changes: {:#?}",
                render(&out)
            );
        };
        n += b.changes.len();
        out.push(b);
    }
    out
}

/// Asserts that nothing more arrives within `wait`.
pub async fn assert_quiet<R: Runtime + Default>(sub: &mut Subscription, wait: Duration) {
    if let Some(b) = next_batch::<R>(sub, wait).await {
        panic!("unexpected batch: {:#?}", render(&[b]));
    }
}

/// A compact text form of a change: `insert users:1 {id=1, name=ann}`.
pub fn render_change(c: &SourceChange) -> String {
    fn props(p: &pgcdc_core::model::ElementPropertyMap) -> String {
        let mut v: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
        v.sort();
        format!("{{{}}}", v.join(", "))
    }
    match c {
        SourceChange::Insert { element, .. } => format!(
            "insert {} {}",
            element.metadata().reference.element_id,
            props(element.properties())
        ),
        SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } => {
            let mut s = format!(
                "update {} {}",
                element.metadata().reference.element_id,
                props(element.properties())
            );
            if !unchanged_toast.is_empty() {
                s.push_str(&format!(" unchanged={unchanged_toast:?}"));
            }
            s
        }
        SourceChange::Delete { metadata, .. } => {
            format!("delete {}", metadata.reference.element_id)
        }
        SourceChange::Truncate { labels, .. } => format!("truncate {labels:?}"),
        SourceChange::SchemaChange { label, diff, .. } => format!("schema {label} {diff:?}"),
        SourceChange::Message { message, .. } => format!(
            "message {} {}",
            message.prefix,
            String::from_utf8_lossy(&message.content)
        ),
        other => format!("{other:?}"),
    }
}

/// Every change of `batches`, rendered.
pub fn render(batches: &[ChangeBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.changes.iter().map(render_change))
        .collect()
}

/// The integer value of column `col` of an insert or update, if any.
pub fn int_prop(c: &SourceChange, col: &str) -> Option<i64> {
    let element = match c {
        SourceChange::Insert { element, .. } | SourceChange::Update { element, .. } => element,
        _ => return None,
    };
    match element.properties().get(col)? {
        Value::Int2(v) => Some(i64::from(*v)),
        Value::Int4(v) => Some(i64::from(*v)),
        Value::Int8(v) => Some(*v),
        _ => None,
    }
}

/// The process's peak resident set size in KiB (Linux), for reports.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub async fn eventually<R: Runtime + Default>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) {
    let rt = R::default();
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        rt.sleep(Duration::from_millis(100)).await;
    }
}
