//! The periodic slot check: how much WAL the slot retains and its `wal_status`, read on an
//! ordinary connection while the source streams, into the status and the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgcdc_core::replication::SlotHealth;

use super::shared::Shared;
use super::status::SourceState;
use crate::conn::{ConnectOptions, PgConnection};
use crate::runtime::Runtime;

/// Sets the flag to false when dropped (the run loop ended): the check stops.
pub(crate) struct ClearOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Checks the slot every `every` while `alive`, when the source runs.
pub(crate) async fn watch_slot<R: Runtime>(
    rt: R,
    connect: ConnectOptions,
    slot: String,
    warn_bytes: u64,
    every: Duration,
    shared: Arc<Shared>,
    alive: Arc<AtomicBool>,
) {
    let mut opts = connect;
    opts.params.replication = false;
    opts.params.application_name = format!("{} slot check", opts.params.application_name);
    let mut conn: Option<PgConnection<R>> = None;
    loop {
        rt.sleep(every).await;
        if !alive.load(Ordering::Acquire) {
            break;
        }
        let running = matches!(
            shared.status.lock().map(|s| s.state.clone()),
            Ok(SourceState::Running)
        );
        if !running {
            continue;
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match PgConnection::connect(rt.clone(), &opts).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "slot check: cannot connect");
                    continue;
                }
            },
        };
        let mut c = c;
        let version = c.server_params().server_version_num().unwrap_or(0);
        let health = match SlotHealth::query(&slot, version) {
            Ok(sql) => c.simple_query(&sql).await,
            Err(_) => break,
        };
        let health = match health {
            Ok(results) => results.first().and_then(SlotHealth::parse),
            Err(e) => {
                tracing::debug!(error = %e, "slot check failed");
                continue;
            }
        };
        conn = Some(c);
        let Some(health) = health else { continue };
        let warning = health.warning(&slot, warn_bytes);
        let mut newly = false;
        shared.update(|s| {
            newly = warning.is_some() && s.slot_warning != warning;
            if warning.is_none() && s.slot_warning.is_some() {
                tracing::info!(slot = %slot, retained = ?health.retained_bytes, "the slot's retained WAL is back below the warning threshold");
            }
            s.retained_wal_bytes = health.retained_bytes;
            s.wal_status = health.wal_status.clone();
            s.slot_warning = warning.clone();
        });
        if newly && let Some(w) = &warning {
            tracing::warn!("{w}");
        }
    }
    if let Some(c) = conn {
        let _ = c.close().await;
    }
}
