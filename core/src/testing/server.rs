//! The catalog, the replication slot and the WAL of a scripted server.

use super::backend::{complete, copy_both, error, ready, rows};
use super::wal::WalTxn;
use crate::lsn::Lsn;
use crate::replication::USER_TYPE_COLUMNS;

/// A replication slot as `pg_replication_slots` shows it.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Output plugin.
    pub plugin: String,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// The database of a logical slot.
    pub database: String,
    /// The process streaming from it, if any.
    pub active_pid: Option<i32>,
    /// `confirmed_flush_lsn`: where streaming resumes, and what the server may free before.
    pub confirmed: Lsn,
    /// `wal_status` (PostgreSQL 13+): `reserved`, or `lost` once the server invalidated it.
    pub wal_status: String,
    /// `synced` (PostgreSQL 17+): a failover slot synchronized onto a standby.
    pub synced: bool,
}

impl Slot {
    /// A logical pgoutput slot of database `app`, confirmed at `confirmed`.
    pub fn pgoutput(confirmed: u64) -> Slot {
        Slot {
            plugin: "pgoutput".into(),
            slot_type: "logical".into(),
            database: "app".into(),
            active_pid: None,
            confirmed: Lsn(confirmed),
            wal_status: "reserved".into(),
            synced: false,
        }
    }
}

/// Where a [`FakeWalsender`](super::FakeWalsender) drops its connection at a scripted
/// command ([`FakeServer::cut`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryCut {
    /// On receipt: the command does not run.
    Before,
    /// After running the command, before any of its answer is sent.
    After,
}

/// The catalog, slot and WAL state of a scripted server: it answers every query of the
/// replication session's setup ([`respond`](Self::respond)) and holds the transactions a
/// walsender streams ([`wal`](Self::wal)). It outlives connections.
#[derive(Clone, Debug)]
pub struct FakeServer {
    /// `server_version`, e.g. `"15.18"`.
    pub version: String,
    /// IDENTIFY_SYSTEM's `systemid`.
    pub system_id: u64,
    /// IDENTIFY_SYSTEM's `timeline`.
    pub timeline: u64,
    /// IDENTIFY_SYSTEM's `dbname`.
    pub dbname: String,
    /// The `wal_level` setting.
    pub wal_level: String,
    /// The `wal_sender_timeout` setting, in milliseconds.
    pub wal_sender_timeout_ms: u64,
    /// `Some(all_tables)` when the publication exists.
    pub publication: Option<bool>,
    /// Tables that exist: (schema, name).
    pub tables: Vec<(String, String)>,
    /// Tables in the publication: (schema, name).
    pub published: Vec<(String, String)>,
    /// Primary key columns: (schema, table, column).
    pub pks: Vec<(String, String, String)>,
    /// Rows of the user types query: oid, nspname, typname, typtype, typcategory, typelem,
    /// typbasetype, rngsubtype, rngtypid.
    pub user_types: Vec<[&'static str; 9]>,
    /// The replication slot, once it exists.
    pub slot: Option<Slot>,
    /// The consistent point of the next slot created.
    pub next_consistent_point: Lsn,
    /// The temporary slot a bootstrap exports its snapshot from (a name ending in `_boot`),
    /// while it exists.
    pub bootstrap_slot: Option<Slot>,
    /// IDENTIFY_SYSTEM's `xlogpos`: the server's WAL end, above every position the tests
    /// use unless a test lowers it.
    pub xlogpos: Lsn,
    /// One-shot failures: (command prefix, SQLSTATE, message).
    pub failures: Vec<(String, String, String)>,
    /// One-shot connection drops at a command (see [`cut`](Self::cut)).
    pub cuts: Vec<(String, QueryCut)>,
    /// Every query received, in order.
    pub queries: Vec<String>,
    /// Queries no rule answers; each got a 42601 error.
    pub unexpected: Vec<String>,
    /// The committed transactions, in commit order, that walsenders stream.
    pub wal: Vec<WalTxn>,
}

impl FakeServer {
    /// A server of `version` with database `app`, `wal_level = logical`, an existing
    /// publication and the table `public.users` (primary key `id`), published; no slot.
    pub fn new(version: &str) -> FakeServer {
        let users = ("public".to_owned(), "users".to_owned());
        FakeServer {
            version: version.into(),
            system_id: 7312345678901234567,
            timeline: 1,
            dbname: "app".into(),
            wal_level: "logical".into(),
            wal_sender_timeout_ms: 60_000,
            publication: Some(false),
            tables: vec![users.clone()],
            published: vec![users],
            pks: vec![("public".into(), "users".into(), "id".into())],
            user_types: Vec::new(),
            slot: None,
            next_consistent_point: Lsn(0x1000),
            bootstrap_slot: None,
            xlogpos: Lsn(0x100_0000),
            failures: Vec::new(),
            cuts: Vec::new(),
            queries: Vec::new(),
            unexpected: Vec::new(),
            wal: Vec::new(),
        }
    }

    /// The next command starting with `prefix` fails with `code` and `message`.
    pub fn fail(&mut self, prefix: &str, code: &str, message: &str) {
        self.failures
            .push((prefix.into(), code.into(), message.into()));
    }

    /// The next command starting with `prefix` drops the walsender's connection, before or
    /// after it runs.
    pub fn cut(&mut self, prefix: &str, at: QueryCut) {
        self.cuts.push((prefix.into(), at));
    }

    /// Takes the cut rule that applies to `sql`, if any.
    pub fn take_cut(&mut self, sql: &str) -> Option<QueryCut> {
        let i = self.cuts.iter().position(|c| sql.starts_with(&c.0))?;
        Some(self.cuts.remove(i).1)
    }

    /// Commits a transaction inserting `ids` into `users` after the last one (and after the
    /// current consistent point), and returns it. A slot created later starts after it.
    /// Up to 31 rows keep every row's LSN below the commit's.
    pub fn commit(&mut self, xid: u32, ids: &[u32]) -> WalTxn {
        let base = self
            .wal
            .last()
            .map_or(self.next_consistent_point, |t| t.end)
            .max(self.next_consistent_point);
        let commit = Lsn(base.0 + 0x200);
        let t = WalTxn {
            xid,
            commit,
            end: Lsn(commit.0 + 0x30),
            ids: ids.to_vec(),
        };
        self.next_consistent_point = t.end;
        self.wal.push(t.clone());
        t
    }

    /// Moves the slot's confirmed position to `flush` (never backwards), as a standby status
    /// update does.
    pub fn confirm(&mut self, flush: Lsn) {
        if let Some(s) = self.slot.as_mut() {
            s.confirmed = s.confirmed.max(flush);
        }
    }

    /// The answer to `sql`: a result set, a command completion or an error, each followed
    /// by ReadyForQuery, or CopyBothResponse for START_REPLICATION.
    pub fn respond(&mut self, sql: &str) -> Vec<u8> {
        self.queries.push(sql.to_owned());
        if let Some(i) = self.failures.iter().position(|f| sql.starts_with(&f.0)) {
            let (_, code, text) = self.failures.remove(i);
            let mut v = error(&code, &text);
            v.extend(ready());
            return v;
        }
        if sql == "IDENTIFY_SYSTEM" {
            let id = self.system_id.to_string();
            let tl = self.timeline.to_string();
            let xlogpos = self.xlogpos.to_string();
            return rows(
                &["systemid", "timeline", "xlogpos", "dbname"],
                &[vec![
                    Some(&id),
                    Some(&tl),
                    Some(&xlogpos),
                    Some(&self.dbname),
                ]],
                "IDENTIFY_SYSTEM",
            );
        }
        if sql.contains("pg_settings") {
            let wst = self.wal_sender_timeout_ms.to_string();
            return rows(
                &["name", "setting"],
                &[
                    vec![Some("wal_level"), Some(&self.wal_level)],
                    vec![Some("wal_sender_timeout"), Some(&wst)],
                ],
                "SELECT 2",
            );
        }
        if sql.starts_with("WITH RECURSIVE seed") && sql.contains("pg_catalog.pg_type") {
            let r: Vec<Vec<Option<&str>>> = self
                .user_types
                .iter()
                .map(|row| row.iter().map(|v| Some(*v)).collect())
                .collect();
            return rows(&USER_TYPE_COLUMNS, &r, "SELECT");
        }
        if sql.contains("FROM pg_catalog.pg_class") {
            let r: Vec<_> = self
                .tables
                .iter()
                .map(|(s, t)| vec![Some(s.as_str()), Some(t.as_str())])
                .collect();
            return rows(&["nspname", "relname"], &r, "SELECT");
        }
        if sql.contains("FROM pg_catalog.pg_publication WHERE") {
            let r: Vec<_> = self
                .publication
                .iter()
                .map(|all| vec![Some("p"), Some(if *all { "t" } else { "f" })])
                .collect();
            return rows(&["pubname", "puballtables"], &r, "SELECT");
        }
        if sql.starts_with("CREATE PUBLICATION") {
            self.publication = Some(sql.ends_with("ALL TABLES"));
            let mut v = complete("CREATE PUBLICATION");
            v.extend(ready());
            return v;
        }
        if sql.starts_with("SELECT schemaname") {
            let r: Vec<_> = self
                .published
                .iter()
                .map(|(s, t)| vec![Some(s.as_str()), Some(t.as_str())])
                .collect();
            return rows(&["schemaname", "tablename"], &r, "SELECT");
        }
        if sql.contains("pg_index") {
            let r: Vec<_> = self
                .pks
                .iter()
                .map(|(s, t, c)| vec![None, Some(s.as_str()), Some(t.as_str()), Some(c.as_str())])
                .collect();
            return rows(&["oid", "nspname", "relname", "attname"], &r, "SELECT");
        }
        if sql.contains("pg_replication_slots") {
            let cols = [
                "slot_name",
                "plugin",
                "slot_type",
                "database",
                "active",
                "active_pid",
                "confirmed_flush_lsn",
                "wal_status",
                "synced",
            ];
            let asked: Vec<&str> = cols
                .iter()
                .copied()
                .filter(|c| !matches!(*c, "wal_status" | "synced") || sql.contains(*c))
                .collect();
            let r: Vec<Vec<Option<String>>> = self
                .slot
                .iter()
                .map(|s| {
                    vec![
                        Some("s".to_owned()),
                        Some(s.plugin.clone()),
                        Some(s.slot_type.clone()),
                        Some(s.database.clone()),
                        Some(if s.active_pid.is_some() { "t" } else { "f" }.to_owned()),
                        s.active_pid.map(|p| p.to_string()),
                        Some(s.confirmed.to_string()),
                        Some(s.wal_status.clone()),
                        Some(if s.synced { "t" } else { "f" }.to_owned()),
                    ]
                    .into_iter()
                    .zip(cols)
                    .filter(|(_, c)| asked.contains(c))
                    .map(|(v, _)| v)
                    .collect()
                })
                .collect();
            let r: Vec<Vec<Option<&str>>> = r
                .iter()
                .map(|row| row.iter().map(|v| v.as_deref()).collect())
                .collect();
            return rows(&asked, &r, "SELECT");
        }
        if sql.contains("pg_copy_logical_replication_slot(") {
            let Some(boot) = self.bootstrap_slot.clone() else {
                let mut v = error("42704", "replication slot does not exist");
                v.extend(ready());
                return v;
            };
            if self.slot.is_some() {
                let mut v = error("42710", "replication slot \"s\" already exists");
                v.extend(ready());
                return v;
            }
            let lsn = boot.confirmed.to_string();
            self.slot = Some(boot);
            return rows(
                &["slot_name", "lsn"],
                &[vec![Some("s"), Some(&lsn)]],
                "SELECT 1",
            );
        }
        if sql.starts_with("DROP_REPLICATION_SLOT") && quoted_name(sql).ends_with("_boot") {
            self.bootstrap_slot = None;
            let mut v = complete("DROP_REPLICATION_SLOT");
            v.extend(ready());
            return v;
        }
        if sql.starts_with("DROP_REPLICATION_SLOT") {
            self.slot = None;
            let mut v = complete("DROP_REPLICATION_SLOT");
            v.extend(ready());
            return v;
        }
        if sql.starts_with("CREATE_REPLICATION_SLOT") && quoted_name(sql).ends_with("_boot") {
            let cp = self.next_consistent_point;
            self.bootstrap_slot = Some(Slot::pgoutput(cp.0));
            let name = quoted_name(sql).to_owned();
            let cp = cp.to_string();
            return rows(
                &[
                    "slot_name",
                    "consistent_point",
                    "snapshot_name",
                    "output_plugin",
                ],
                &[vec![
                    Some(&name),
                    Some(&cp),
                    Some("00000003-0000000D-1"),
                    Some("pgoutput"),
                ]],
                "CREATE_REPLICATION_SLOT",
            );
        }
        if sql.starts_with("CREATE_REPLICATION_SLOT") {
            if self.slot.is_some() {
                let mut v = error("42710", "replication slot \"s\" already exists");
                v.extend(ready());
                return v;
            }
            let cp = self.next_consistent_point;
            self.slot = Some(Slot::pgoutput(cp.0));
            let export = sql.contains("'export'") || sql.contains(" EXPORT_SNAPSHOT");
            let cp = cp.to_string();
            return rows(
                &[
                    "slot_name",
                    "consistent_point",
                    "snapshot_name",
                    "output_plugin",
                ],
                &[vec![
                    Some("drasi_slot"),
                    Some(&cp),
                    export.then_some("00000003-0000000D-1"),
                    Some("pgoutput"),
                ]],
                "CREATE_REPLICATION_SLOT",
            );
        }
        if sql.starts_with("START_REPLICATION") {
            return match &self.slot {
                Some(Slot {
                    active_pid: Some(pid),
                    ..
                }) => {
                    let mut v = error(
                        "55006",
                        &format!("replication slot \"s\" is active for PID {pid}"),
                    );
                    v.extend(ready());
                    v
                }
                _ => copy_both(),
            };
        }
        self.unexpected.push(sql.to_owned());
        let mut v = error("42601", &format!("the fake server has no answer to: {sql}"));
        v.extend(ready());
        v
    }
}

/// The first double-quoted name of a replication command (`""` when there is none).
fn quoted_name(sql: &str) -> &str {
    sql.split('"').nth(1).unwrap_or("")
}
