//! The source's figures through the [`metrics`] facade: whatever recorder the application
//! installed (Prometheus, StatsD, …) receives them, labelled `source = <id>`. Without a
//! recorder the handles do nothing.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `pgcdc_changes_total` | counter | changes delivered (bootstrap rows included) |
//! | `pgcdc_transactions_total` | counter | transactions delivered |
//! | `pgcdc_bytes_received_total` | counter | bytes read from the replication connection |
//! | `pgcdc_reconnects_total` | counter | connections lost and tried again |
//! | `pgcdc_lag_bytes` | gauge | WAL the slot retains because of this source (server end − flush) |
//! | `pgcdc_queued_bytes` | gauge | memory queued for the slowest subscriber |
//! | `pgcdc_held_bytes` | gauge | memory of streamed/prepared transactions waiting for their commit |
//! | `pgcdc_subscribers` | gauge | subscribers |
//! | `pgcdc_retained_wal_bytes` | gauge | WAL the slot retains, as the last slot check saw it |
//! | `pgcdc_last_commit_timestamp_seconds` | gauge | commit time of the last transaction delivered (Unix seconds); its age is how far behind the source is |
//! | `pgcdc_up` | gauge | 1 while streaming, 0 otherwise |
//!
//! The handles are made when the source is built: install the recorder before.

use std::time::UNIX_EPOCH;

use metrics::{Counter, Gauge, counter, gauge};

use super::status::{SourceState, SourceStatus};

/// The names of the figures, for recorders and dashboards.
pub mod names {
    /// Changes delivered.
    pub const CHANGES: &str = "pgcdc_changes_total";
    /// Transactions delivered.
    pub const TRANSACTIONS: &str = "pgcdc_transactions_total";
    /// Bytes received.
    pub const BYTES_RECEIVED: &str = "pgcdc_bytes_received_total";
    /// Reconnects.
    pub const RECONNECTS: &str = "pgcdc_reconnects_total";
    /// Lag in bytes.
    pub const LAG_BYTES: &str = "pgcdc_lag_bytes";
    /// Bytes queued for the slowest subscriber.
    pub const QUEUED_BYTES: &str = "pgcdc_queued_bytes";
    /// Bytes of held transactions.
    pub const HELD_BYTES: &str = "pgcdc_held_bytes";
    /// Subscribers.
    pub const SUBSCRIBERS: &str = "pgcdc_subscribers";
    /// WAL retained by the slot.
    pub const RETAINED_WAL_BYTES: &str = "pgcdc_retained_wal_bytes";
    /// Commit time of the last transaction delivered.
    pub const LAST_COMMIT_TIMESTAMP: &str = "pgcdc_last_commit_timestamp_seconds";
    /// Streaming or not.
    pub const UP: &str = "pgcdc_up";
}

/// The handles of one source.
#[derive(Debug)]
pub(crate) struct SourceMetrics {
    changes: Counter,
    transactions: Counter,
    bytes_received: Counter,
    reconnects: Counter,
    lag_bytes: Gauge,
    queued_bytes: Gauge,
    held_bytes: Gauge,
    subscribers: Gauge,
    retained_wal_bytes: Gauge,
    last_commit: Gauge,
    up: Gauge,
}

impl SourceMetrics {
    /// Registers the figures of source `id` with the installed recorder.
    pub(crate) fn new(id: &str) -> Self {
        let l = || [("source", id.to_owned())];
        SourceMetrics {
            changes: counter!(names::CHANGES, &l()),
            transactions: counter!(names::TRANSACTIONS, &l()),
            bytes_received: counter!(names::BYTES_RECEIVED, &l()),
            reconnects: counter!(names::RECONNECTS, &l()),
            lag_bytes: gauge!(names::LAG_BYTES, &l()),
            queued_bytes: gauge!(names::QUEUED_BYTES, &l()),
            held_bytes: gauge!(names::HELD_BYTES, &l()),
            subscribers: gauge!(names::SUBSCRIBERS, &l()),
            retained_wal_bytes: gauge!(names::RETAINED_WAL_BYTES, &l()),
            last_commit: gauge!(names::LAST_COMMIT_TIMESTAMP, &l()),
            up: gauge!(names::UP, &l()),
        }
    }

    /// Hands the status's figures to the recorder.
    pub(crate) fn publish(&self, s: &SourceStatus) {
        self.changes.absolute(s.changes);
        self.transactions.absolute(s.transactions);
        self.bytes_received.absolute(s.bytes_received);
        self.reconnects.absolute(s.reconnects);
        self.lag_bytes.set(s.lag_bytes as f64);
        self.queued_bytes.set(s.queued_bytes as f64);
        self.held_bytes.set(s.held_bytes as f64);
        self.subscribers.set(s.subscribers as f64);
        if let Some(r) = s.retained_wal_bytes {
            self.retained_wal_bytes.set(r as f64);
        }
        if let Some(t) = s.last_commit_time
            && let Ok(d) = t.duration_since(UNIX_EPOCH)
        {
            self.last_commit.set(d.as_secs_f64());
        }
        self.up.set(if s.state == SourceState::Running {
            1.0
        } else {
            0.0
        });
    }
}
