//! The source's integration suite (shared with every runtime) on tokio, against a real
//! PostgreSQL.

#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_tokio::TokioRuntime;

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(suite::$module::$name::<TokioRuntime>());
            }
        )*
    };
}

tests!(
    basic::insert_update_delete,
    basic::transactions_and_keys,
    basic::unchanged_toast,
    basic::truncate_schema_messages,
    basic::stop_start_and_manual_ack,
    basic::idle_publication_advances,
    basic::broadcast_two_subscribers,
    faults::walsender_killed,
    faults::connection_cut,
    failures::wrong_password,
    failures::missing_publication,
    failures::table_not_in_publication,
    failures::user_without_replication,
    failures::invalid_config,
);
