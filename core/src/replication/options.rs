//! What a replication session asks of the server, and which of it the server version allows.

use std::time::Duration;

use crate::lsn::Lsn;

use super::SessionError;
use super::catalog::{TableName, quote_ident};
use crate::source_config::StreamingMode;

/// PostgreSQL 11: TRUNCATE in pgoutput.
const PG11: u32 = 110_000;
/// PostgreSQL 14: proto 2, `streaming`, `binary`, `messages`.
const PG14: u32 = 140_000;
/// PostgreSQL 15: proto 3, `two_phase`, parenthesized slot options.
const PG15: u32 = 150_000;
/// PostgreSQL 16: proto 4, `streaming 'parallel'`, `origin`.
const PG16: u32 = 160_000;

/// What a [`ReplicationSession`](super::ReplicationSession) sets up and asks the server for.
///
/// `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationOptions {
    /// The logical replication slot (`drasi_slot`). Only `a-z`, `0-9` and `_`, at most 63
    /// bytes, as PostgreSQL requires.
    pub slot_name: String,
    /// The publication (`drasi_publication`).
    pub publication_name: String,
    /// Tables to check: `table` (in `public`) or `schema.table`, taken literally
    /// (case-sensitive; double quotes allow dots in a part). Empty: whatever the publication
    /// has.
    pub tables: Vec<String>,
    /// Create the slot when it is missing (true); otherwise a missing slot is a fatal
    /// [`SlotMissing`](SessionError::SlotMissing).
    pub create_slot: bool,
    /// Create the slot as TEMPORARY: dropped when the connection ends **or on any error in
    /// it**, so every reconnect starts from a fresh slot and reports a
    /// [`ResumeGap`](super::SessionEvent::ResumeGap). Default false.
    pub temporary_slot: bool,
    /// Create the publication when it is missing: `FOR TABLE` the configured tables, or
    /// `FOR ALL TABLES` (superuser only) when none are configured. Default false.
    pub create_publication: bool,
    /// Before the first streaming: stand by while another consumer holds the slot
    /// ([`SlotActive`](SessionError::SlotActive), retryable), or fail
    /// ([`SlotBusy`](SessionError::SlotBusy)).
    pub slot_in_use: crate::source_config::SlotInUse,
    /// Create the slot with `FAILOVER true` (PostgreSQL 17+).
    pub failover: bool,
    /// The first attempt's start position, normally the end LSN of the last transaction the
    /// application processed before it restarted: transactions ending at or before it are
    /// dropped. `None`: the slot's confirmed position (`0/0` is sent).
    pub start_lsn: Option<Lsn>,
    /// The pgoutput protocol version. `None`: the highest the server supports (PostgreSQL
    /// 16+: 4, 15: 3, 14: 2, older: 1).
    pub proto_version: Option<u32>,
    /// Ask for binary column values (PostgreSQL 14+). Default false.
    pub binary: bool,
    /// Streaming of in-progress transactions. Default off.
    pub streaming: StreamingMode,
    /// Two-phase commit decoding (PostgreSQL 15+, proto 3+); new slots are created with
    /// TWO_PHASE. Default false.
    pub two_phase: bool,
    /// `origin`: `None` (server default, `any`), `Some("any")` or `Some("none")`
    /// (PostgreSQL 16+).
    pub origin: Option<String>,
    /// Ask for logical decoding messages (`pg_logical_emit_message`). Default true. Ignored
    /// before PostgreSQL 14, which has no such option.
    pub messages: bool,
    /// How often a standby status update is sent (10 s). The session uses
    /// `min(status_interval, wal_sender_timeout / 3)` when the server's timeout is on, and at
    /// least 10 ms.
    pub status_interval: Duration,
    /// Create the slot with an exported snapshot and hold the connection idle until
    /// [`release_snapshot`](super::ReplicationSession::release_snapshot) (for the bootstrap).
    /// An existing slot is dropped and recreated (so the snapshot and the stream meet
    /// exactly) when [`snapshot_existing_slot`](Self::snapshot_existing_slot) is set; otherwise
    /// it is reused, no snapshot is taken, and [`SessionEvent::SnapshotSkipped`](super::SessionEvent::SnapshotSkipped)
    /// says so. Only the first attempt that reaches streaming does this. Default false.
    pub export_snapshot: bool,
    /// With [`export_snapshot`](Self::export_snapshot): drop and recreate an existing slot to
    /// take a fresh snapshot (a forced re-bootstrap). Default false: an existing slot means
    /// the bootstrap already happened, and streaming resumes from it.
    pub snapshot_existing_slot: bool,
    /// Check that the configured tables exist and are in the publication. Default true.
    pub check_tables: bool,
    /// Read the database's user-defined types (enums, domains, ranges, multiranges,
    /// composites, arrays) from the catalog during setup and register them with the
    /// pipeline's type registry, so their values decode to typed values (an enum to
    /// `Value::Enum`, a domain as its base type …) rather than from what pgoutput Type
    /// messages alone tell. Default true.
    pub load_user_types: bool,
    /// The longest wait for the answer to a command during setup (IDENTIFY_SYSTEM, catalog
    /// queries, START_REPLICATION), not slot creation, which waits for running
    /// transactions. `None`: no limit. Default 60 s.
    pub command_timeout: Option<Duration>,
    /// How long [`stop`](super::ReplicationSession::stop) waits for the server to end the
    /// stream cleanly before closing anyway. Default 5 s.
    pub stop_timeout: Duration,
}

impl Default for ReplicationOptions {
    fn default() -> Self {
        ReplicationOptions {
            slot_name: crate::source_config::DEFAULT_SLOT_NAME.to_owned(),
            publication_name: crate::source_config::DEFAULT_PUBLICATION_NAME.to_owned(),
            tables: Vec::new(),
            create_slot: true,
            temporary_slot: false,
            create_publication: false,
            slot_in_use: crate::source_config::SlotInUse::Wait,
            failover: false,
            start_lsn: None,
            proto_version: None,
            binary: false,
            streaming: StreamingMode::Off,
            two_phase: false,
            origin: None,
            messages: true,
            status_interval: Duration::from_millis(
                crate::source_config::DEFAULT_STATUS_INTERVAL_MS,
            ),
            export_snapshot: false,
            snapshot_existing_slot: false,
            check_tables: true,
            load_user_types: true,
            command_timeout: Some(Duration::from_secs(60)),
            stop_timeout: Duration::from_secs(5),
        }
    }
}

/// What START_REPLICATION will ask for on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StartPlan {
    pub(crate) proto_version: u32,
    pub(crate) options: Vec<(&'static str, String)>,
    /// What this server version will not deliver although the options ask for it.
    pub(crate) warnings: Vec<String>,
}

impl ReplicationOptions {
    /// Checks what does not depend on the server: the slot name, the publication name, the
    /// table names, `origin`, `proto_version`.
    pub fn validate(&self) -> Result<(), SessionError> {
        let slot = &self.slot_name;
        if slot.is_empty()
            || slot.len() > 63
            || !slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(SessionError::InvalidOption {
                option: "slot_name",
                reason: format!(
                    "{slot:?} is not a valid replication slot name: use 1 to 63 characters \
                     from a-z, 0-9 and _"
                ),
            });
        }
        if self.publication_name.is_empty() || self.publication_name.len() > 63 {
            return Err(SessionError::InvalidOption {
                option: "publication_name",
                reason: format!("{:?} must be 1 to 63 bytes long", self.publication_name),
            });
        }
        quote_ident(&self.publication_name)?;
        self.table_names()?;
        if let Some(o) = &self.origin
            && o != "any"
            && o != "none"
        {
            return Err(SessionError::InvalidOption {
                option: "origin",
                reason: format!("{o:?} is not valid: use \"any\" or \"none\""),
            });
        }
        if let Some(v) = self.proto_version
            && !(1..=4).contains(&v)
        {
            return Err(SessionError::InvalidOption {
                option: "proto_version",
                reason: format!("{v} is not a pgoutput protocol version: use 1 to 4"),
            });
        }
        Ok(())
    }

    /// The configured tables, parsed.
    pub fn table_names(&self) -> Result<Vec<TableName>, SessionError> {
        self.tables
            .iter()
            .map(|t| {
                TableName::parse(t)
                    .map(TableName::resolved)
                    .map_err(|reason| SessionError::InvalidOption {
                        option: "tables",
                        reason: format!("{t:?} {reason}; write \"table\" or \"schema.table\""),
                    })
            })
            .collect()
    }

    /// The highest pgoutput protocol version of a server.
    pub fn max_proto_version(server_version: u32) -> u32 {
        match server_version {
            v if v >= PG16 => 4,
            v if v >= PG15 => 3,
            v if v >= PG14 => 2,
            _ => 1,
        }
    }

    /// The protocol version and START_REPLICATION options for a server, or why the options
    /// cannot work on it.
    pub(crate) fn plan(&self, server_version: u32) -> Result<StartPlan, SessionError> {
        let unsupported = |option: String, requires: &'static str| {
            Err(SessionError::UnsupportedOption {
                option,
                requires,
                server_version,
            })
        };
        if server_version < 100_000 {
            return unsupported(
                "pgoutput logical replication".to_owned(),
                "PostgreSQL 10 or later",
            );
        }
        let max = Self::max_proto_version(server_version);
        match self.streaming {
            StreamingMode::On if server_version < PG14 => {
                return unsupported("streaming 'on'".into(), "PostgreSQL 14 or later");
            }
            StreamingMode::Parallel if server_version < PG16 => {
                return unsupported("streaming 'parallel'".into(), "PostgreSQL 16 or later");
            }
            _ => {}
        }
        if self.two_phase && server_version < PG15 {
            return unsupported("two_phase".into(), "PostgreSQL 15 or later");
        }
        if self.binary && server_version < PG14 {
            return unsupported("binary".into(), "PostgreSQL 14 or later");
        }
        if self.failover && server_version < 170_000 {
            return unsupported("failover".into(), "PostgreSQL 17 or later");
        }
        if self.origin.is_some() && server_version < PG16 {
            return unsupported("origin".into(), "PostgreSQL 16 or later");
        }
        let proto = match self.proto_version {
            None => max,
            Some(v) if v > max => {
                return unsupported(
                    format!("proto_version {v}"),
                    match v {
                        2 => "PostgreSQL 14 or later",
                        3 => "PostgreSQL 15 or later",
                        _ => "PostgreSQL 16 or later",
                    },
                );
            }
            Some(v) => v,
        };
        let needs = match (self.streaming, self.two_phase) {
            (StreamingMode::Parallel, _) => Some(("streaming 'parallel'", 4, "proto_version 4")),
            (_, true) if proto < 3 => Some(("two_phase", 3, "proto_version 3 or higher")),
            (StreamingMode::On, _) => Some(("streaming 'on'", 2, "proto_version 2 or higher")),
            _ => None,
        };
        if let Some((option, min, requires)) = needs
            && proto < min
        {
            return unsupported(format!("{option} with proto_version {proto}"), requires);
        }

        let mut options = vec![
            ("proto_version", proto.to_string()),
            ("publication_names", quote_ident(&self.publication_name)?),
        ];
        if server_version >= PG14 {
            if self.messages {
                options.push(("messages", "true".to_owned()));
            }
            if self.binary {
                options.push(("binary", "true".to_owned()));
            }
        }
        match self.streaming {
            StreamingMode::Off => {}
            StreamingMode::On => options.push(("streaming", "on".to_owned())),
            StreamingMode::Parallel => options.push(("streaming", "parallel".to_owned())),
        }
        if self.two_phase {
            options.push(("two_phase", "on".to_owned()));
        }
        if let Some(o) = &self.origin {
            options.push(("origin", o.clone()));
        }
        let version = format!("{}.{}", server_version / 10_000, server_version % 10_000);
        let mut warnings = Vec::new();
        if self.messages && server_version < PG14 {
            warnings.push(format!(
                "logical messages (pg_logical_emit_message) are decoded from PostgreSQL 14 on; \
                 this server runs {version}, so none will arrive (set messages = false to \
                 acknowledge)"
            ));
        }
        if server_version < PG11 {
            warnings.push(format!(
                "TRUNCATE is replicated from PostgreSQL 11 on; this server runs {version}, so a \
                 TRUNCATE will not arrive and the rows it removes stay in what consumers hold"
            ));
        }
        Ok(StartPlan {
            proto_version: proto,
            options,
            warnings,
        })
    }

    /// The status interval given the server's `wal_sender_timeout` (`None` or zero: off).
    pub fn effective_status_interval(&self, wal_sender_timeout: Option<Duration>) -> Duration {
        let mut interval = self.status_interval;
        if let Some(t) = wal_sender_timeout
            && !t.is_zero()
        {
            interval = interval.min(t / 3);
        }
        interval.max(Duration::from_millis(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReplicationOptions {
        ReplicationOptions::default()
    }

    fn names(p: &StartPlan) -> Vec<String> {
        p.options.iter().map(|(n, v)| format!("{n}={v}")).collect()
    }

    #[test]
    fn proto_by_version() {
        for (v, p) in [
            (100000, 1),
            (130004, 1),
            (140000, 2),
            (150018, 3),
            (160000, 4),
            (180000, 4),
        ] {
            assert_eq!(opts().plan(v).unwrap().proto_version, p, "{v}");
        }
        assert!(opts().plan(90624).is_err());
    }

    #[test]
    fn options_by_version() {
        assert_eq!(
            names(&opts().plan(130000).unwrap()),
            ["proto_version=1", "publication_names=\"drasi_publication\""]
        );
        assert_eq!(
            names(&opts().plan(140000).unwrap()),
            [
                "proto_version=2",
                "publication_names=\"drasi_publication\"",
                "messages=true"
            ]
        );
        let o = ReplicationOptions {
            binary: true,
            streaming: StreamingMode::Parallel,
            two_phase: true,
            origin: Some("none".into()),
            messages: false,
            ..opts()
        };
        assert_eq!(
            names(&o.plan(160000).unwrap()),
            [
                "proto_version=4",
                "publication_names=\"drasi_publication\"",
                "binary=true",
                "streaming=parallel",
                "two_phase=on",
                "origin=none"
            ]
        );
    }

    #[test]
    fn too_old_servers() {
        let check = |o: ReplicationOptions, v: u32, needle: &str| {
            let e = o.plan(v).unwrap_err();
            assert!(matches!(e, SessionError::UnsupportedOption { .. }), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        };
        check(
            ReplicationOptions {
                streaming: StreamingMode::On,
                ..opts()
            },
            130000,
            "PostgreSQL 14",
        );
        check(
            ReplicationOptions {
                streaming: StreamingMode::Parallel,
                ..opts()
            },
            150000,
            "PostgreSQL 16",
        );
        check(
            ReplicationOptions {
                two_phase: true,
                ..opts()
            },
            140000,
            "PostgreSQL 15",
        );
        check(
            ReplicationOptions {
                binary: true,
                ..opts()
            },
            130000,
            "PostgreSQL 14",
        );
        check(
            ReplicationOptions {
                origin: Some("any".into()),
                ..opts()
            },
            150000,
            "PostgreSQL 16",
        );
        check(
            ReplicationOptions {
                proto_version: Some(4),
                ..opts()
            },
            150000,
            "PostgreSQL 16",
        );
        check(
            ReplicationOptions {
                proto_version: Some(1),
                streaming: StreamingMode::On,
                ..opts()
            },
            160000,
            "proto_version 2",
        );
        check(
            ReplicationOptions {
                proto_version: Some(2),
                two_phase: true,
                ..opts()
            },
            160000,
            "proto_version 3",
        );
    }

    #[test]
    fn validation() {
        assert!(opts().validate().is_ok());
        for slot in ["", "Bad", "a-b", &"x".repeat(64)] {
            let o = ReplicationOptions {
                slot_name: slot.into(),
                ..opts()
            };
            assert!(o.validate().is_err(), "{slot}");
        }
        let o = ReplicationOptions {
            origin: Some("all".into()),
            ..opts()
        };
        assert!(o.validate().is_err());
        let o = ReplicationOptions {
            proto_version: Some(5),
            ..opts()
        };
        assert!(o.validate().is_err());
        let o = ReplicationOptions {
            tables: vec!["a.b.c".into()],
            ..opts()
        };
        assert!(o.validate().is_err());
        let o = ReplicationOptions {
            publication_name: "p\0".into(),
            ..opts()
        };
        assert!(o.validate().is_err());
    }

    #[test]
    fn status_interval() {
        let o = opts();
        assert_eq!(o.effective_status_interval(None), Duration::from_secs(10));
        assert_eq!(
            o.effective_status_interval(Some(Duration::ZERO)),
            Duration::from_secs(10)
        );
        assert_eq!(
            o.effective_status_interval(Some(Duration::from_secs(6))),
            Duration::from_secs(2)
        );
        assert_eq!(
            o.effective_status_interval(Some(Duration::from_secs(120))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn warnings_for_what_a_version_does_not_deliver() {
        let w = |v| opts().plan(v).unwrap().warnings;
        assert!(w(140_000).is_empty());
        let pg13 = w(130_009);
        assert_eq!(pg13.len(), 1);
        assert!(
            pg13[0].contains("logical messages") && pg13[0].contains("13.9"),
            "{pg13:?}"
        );
        let pg10 = w(100_023);
        assert_eq!(pg10.len(), 2);
        assert!(
            pg10[1].contains("TRUNCATE") && pg10[1].contains("10.23"),
            "{pg10:?}"
        );
        let mut quiet = opts();
        quiet.messages = false;
        assert!(quiet.plan(110_000).unwrap().warnings.is_empty());
    }

    #[test]
    fn slot_health_warnings() {
        use crate::replication::SlotHealth;
        let h = |b, st: Option<&str>| SlotHealth {
            retained_bytes: Some(b),
            wal_status: st.map(str::to_owned),
        };
        assert_eq!(h(10, Some("reserved")).warning("s", 100), None);
        assert!(
            h(101, Some("reserved"))
                .warning("s", 100)
                .unwrap()
                .contains("retains 101")
        );
        assert_eq!(h(101, None).warning("s", 0), None);
        assert!(
            h(1, Some("unreserved"))
                .warning("s", 0)
                .unwrap()
                .contains("unreserved")
        );
        assert!(
            SlotHealth::query("s", 120_000)
                .unwrap()
                .contains("NULL::text AS wal_status")
        );
        assert!(
            SlotHealth::query("s", 130_000)
                .unwrap()
                .contains(", wal_status FROM")
        );
    }
}
