//! A scripted fake walsender driving [`ReplicationSession`] with virtual time.

mod handoff;
mod lifecycle;
mod setup;
mod stream;
mod types;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

use super::{ReplicationOptions, ReplicationSession, SessionError, SessionEvent};
use crate::SslMode;
use crate::assemble::{Pipeline, PipelineConfig};
use crate::connection::{Connection, Event};
use crate::lsn::Lsn;
use crate::pgoutput::{
    Column, ColumnValue, Oid, PgOutputMessage, RelationBody, ReplicaIdentity, ReplicationMessage,
    StandbyStatusUpdate, TupleData, Xid, encode,
};
use crate::startup::ConnectParams;

// ------------------------------------------------------------------ backend message encoders

pub(super) fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(s.as_bytes());
    b.push(0);
}

pub(super) fn param(name: &str, value: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, value);
    msg(b'S', &b)
}

pub(super) fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

pub(super) fn row_description(names: &[&str]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(names.len() as i16);
    for n in names {
        b.put_slice(n.as_bytes());
        b.put_u8(0);
        b.put_u32(0);
        b.put_i16(0);
        b.put_u32(25);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i16(0);
    }
    msg(b'T', &b)
}

pub(super) fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(values.len() as i16);
    for v in values {
        match v {
            None => b.put_i32(-1),
            Some(s) => {
                b.put_i32(s.len() as i32);
                b.put_slice(s.as_bytes());
            }
        }
    }
    msg(b'D', &b)
}

pub(super) fn complete(tag: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, tag);
    msg(b'C', &b)
}

pub(super) fn error(code: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', text)] {
        b.push(k);
        cstr(&mut b, v);
    }
    b.push(0);
    msg(b'E', &b)
}

pub(super) fn copy_both() -> Vec<u8> {
    msg(b'W', &[0, 0, 0])
}

pub(super) fn copy_data(payload: &[u8]) -> Vec<u8> {
    msg(b'd', payload)
}

pub(super) fn copy_done() -> Vec<u8> {
    msg(b'c', &[])
}

/// A result set: RowDescription, DataRows, CommandComplete, ReadyForQuery.
pub(super) fn rows(names: &[&str], rows: &[Vec<Option<&str>>], tag: &str) -> Vec<u8> {
    let mut v = row_description(names);
    for r in rows {
        v.extend(data_row(r));
    }
    v.extend(complete(tag));
    v.extend(ready());
    v
}

// ------------------------------------------------------------------- walsender payloads

pub(super) fn xlog(lsn: Lsn, m: &PgOutputMessage) -> Vec<u8> {
    let mut data = BytesMut::new();
    encode::message(m, &mut data).unwrap();
    let mut payload = BytesMut::new();
    encode::replication_message(
        &ReplicationMessage::XLogData {
            wal_start: lsn,
            wal_end: lsn,
            send_time: 0,
            data: data.freeze(),
        },
        &mut payload,
    );
    copy_data(&payload)
}

pub(super) fn keepalive(wal_end: Lsn, reply: bool) -> Vec<u8> {
    let mut payload = BytesMut::new();
    encode::replication_message(
        &ReplicationMessage::Keepalive {
            wal_end,
            send_time: 0,
            reply_requested: reply,
        },
        &mut payload,
    );
    copy_data(&payload)
}

pub(super) const USERS: Oid = Oid(16402);

pub(super) use super::catalog::USER_TYPE_COLUMNS;

pub(super) fn relation() -> PgOutputMessage {
    PgOutputMessage::Relation(RelationBody {
        xid: None,
        oid: USERS,
        namespace: "public".into(),
        name: "users".into(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![
            Column {
                flags: 1,
                name: "id".into(),
                type_oid: Oid(23),
                type_modifier: -1,
            },
            Column {
                flags: 0,
                name: "name".into(),
                type_oid: Oid(25),
                type_modifier: -1,
            },
        ],
    })
}

pub(super) fn insert(id: u32) -> PgOutputMessage {
    let id = id.to_string();
    PgOutputMessage::Insert {
        xid: None,
        rel: USERS,
        new: TupleData::from_values([ColumnValue::Text(id.as_bytes()), ColumnValue::Text(b"x")])
            .unwrap(),
    }
}

/// A whole transaction: Begin at `commit - 0x100`, Relation, `rows` inserts, Commit at
/// `end` (its XLogData start is the end LSN, as a walsender sends it).
pub(super) fn txn(xid: u32, commit: u64, end: u64, ids: &[u32]) -> Vec<u8> {
    let mut v = xlog(
        Lsn(commit - 0x100),
        &PgOutputMessage::Begin {
            final_lsn: Lsn(commit),
            commit_time: 0,
            xid: Xid(xid),
        },
    );
    v.extend(xlog(Lsn::ZERO, &relation()));
    for (i, id) in ids.iter().enumerate() {
        v.extend(xlog(Lsn(commit - 0x100 + 8 * (i as u64 + 1)), &insert(*id)));
    }
    v.extend(xlog(Lsn(end), &commit_msg(commit, end)));
    v
}

pub(super) fn commit_msg(commit: u64, end: u64) -> PgOutputMessage {
    PgOutputMessage::Commit {
        flags: 0,
        commit_lsn: Lsn(commit),
        end_lsn: Lsn(end),
        commit_time: 0,
    }
}

// ------------------------------------------------------------------ frontend messages

/// A message the session sent.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Sent {
    Query(String),
    CopyData(Vec<u8>),
    CopyDone,
    Terminate,
    Other(u8),
}

fn parse_frontend(mut b: &[u8]) -> Vec<Sent> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = b[0];
        let len = i32::from_be_bytes(b[1..5].try_into().unwrap()) as usize;
        let body = &b[5..1 + len];
        out.push(match tag {
            b'Q' => Sent::Query(String::from_utf8(body[..body.len() - 1].to_vec()).unwrap()),
            b'd' => Sent::CopyData(body.to_vec()),
            b'c' => Sent::CopyDone,
            b'X' => Sent::Terminate,
            t => Sent::Other(t),
        });
        b = &b[1 + len..];
    }
    out
}

pub(super) fn decode_status(p: &[u8]) -> Option<StandbyStatusUpdate> {
    if p.len() != StandbyStatusUpdate::LEN || p[0] != b'r' {
        return None;
    }
    let u = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap());
    Some(StandbyStatusUpdate {
        write: Lsn(u(1)),
        flush: Lsn(u(9)),
        apply: Lsn(u(17)),
        client_time: u(25) as i64,
        reply_requested: p[33] != 0,
    })
}

// ------------------------------------------------------------------------ fake walsender

#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub plugin: String,
    pub slot_type: String,
    pub database: String,
    pub active_pid: Option<i32>,
    pub confirmed: Lsn,
}

impl Slot {
    pub(super) fn pgoutput(confirmed: u64) -> Slot {
        Slot {
            plugin: "pgoutput".into(),
            slot_type: "logical".into(),
            database: "app".into(),
            active_pid: None,
            confirmed: Lsn(confirmed),
        }
    }
}

/// The catalog and slot state of a scripted walsender, answering the session's queries.
#[derive(Clone, Debug)]
pub(super) struct FakeServer {
    pub version: String,
    pub system_id: u64,
    pub timeline: u64,
    pub dbname: String,
    pub wal_level: String,
    pub wal_sender_timeout_ms: u64,
    /// `Some(all_tables)` when the publication exists.
    pub publication: Option<bool>,
    pub tables: Vec<(String, String)>,
    pub published: Vec<(String, String)>,
    pub pks: Vec<(String, String, String)>,
    /// Rows of the user types query: oid, nspname, typname, typtype, typcategory, typelem,
    /// typbasetype, rngsubtype, rngtypid.
    pub user_types: Vec<[&'static str; 9]>,
    pub slot: Option<Slot>,
    pub next_consistent_point: Lsn,
    /// IDENTIFY_SYSTEM's xlogpos: the server's WAL end, above every position the tests use.
    pub xlogpos: Lsn,
    /// One-shot failures: (command prefix, SQLSTATE, message).
    pub failures: Vec<(String, String, String)>,
    pub queries: Vec<String>,
}

impl FakeServer {
    pub(super) fn new(version: &str) -> FakeServer {
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
            xlogpos: Lsn(0x100_0000),
            failures: Vec::new(),
            queries: Vec::new(),
        }
    }

    pub(super) fn fail(&mut self, prefix: &str, code: &str, message: &str) {
        self.failures
            .push((prefix.into(), code.into(), message.into()));
    }

    pub(super) fn respond(&mut self, sql: &str) -> Vec<u8> {
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
                .map(|(s, t, c)| vec![Some(s.as_str()), Some(t.as_str()), Some(c.as_str())])
                .collect();
            return rows(&["nspname", "relname", "attname"], &r, "SELECT");
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
            ];
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
                    ]
                })
                .collect();
            let r: Vec<Vec<Option<&str>>> = r
                .iter()
                .map(|row| row.iter().map(|v| v.as_deref()).collect())
                .collect();
            return rows(&cols, &r, "SELECT");
        }
        if sql.starts_with("DROP_REPLICATION_SLOT") {
            self.slot = None;
            let mut v = complete("DROP_REPLICATION_SLOT");
            v.extend(ready());
            return v;
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
                Some(s) if s.active_pid.is_some() => {
                    let mut v = error(
                        "55006",
                        &format!(
                            "replication slot \"s\" is active for PID {}",
                            s.active_pid.unwrap()
                        ),
                    );
                    v.extend(ready());
                    v
                }
                _ => copy_both(),
            };
        }
        panic!("unexpected query {sql}");
    }
}

// -------------------------------------------------------------------------------- harness

pub(super) struct Harness {
    pub session: ReplicationSession,
    pub server: FakeServer,
    pub now: Instant,
    pub clock: Arc<Mutex<SystemTime>>,
    /// Non-query messages the session sent, in order.
    pub sent: Vec<Sent>,
    /// Report every emitted batch and message handed over as soon as the session emits it
    /// (a driver whose subscriber queue always has room); off to test hand-over itself.
    pub auto_hand: bool,
}

pub(super) fn wall_start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

impl Harness {
    pub(super) fn new(options: ReplicationOptions, server: FakeServer) -> Harness {
        Harness::with_pipeline(options, server, PipelineConfig::default())
    }

    pub(super) fn with_pipeline(
        options: ReplicationOptions,
        server: FakeServer,
        config: PipelineConfig,
    ) -> Harness {
        let clock = Arc::new(Mutex::new(wall_start()));
        let c = clock.clone();
        let session = ReplicationSession::new(
            options,
            Pipeline::new("src", config),
            Box::new(move || *c.lock().unwrap()),
        );
        Harness {
            session,
            server,
            now: Instant::now(),
            clock,
            sent: Vec::new(),
            auto_hand: true,
        }
    }

    /// A connection in state Ready, as the driver hands it over.
    pub(super) fn ready_connection(&self) -> Connection {
        let p = ConnectParams::new("u")
            .database("app")
            .replication(true)
            .ssl_mode(SslMode::Disable);
        let mut c = Connection::new(p, [1; 18], self.now).unwrap();
        let mut out = BytesMut::new();
        while c.poll_transmit(&mut out) {}
        let mut script = msg(b'R', &0i32.to_be_bytes());
        script.extend(param("server_version", &self.server.version));
        script.extend(msg(b'K', &[0, 0, 0x10, 0x92, 1, 2, 3, 4]));
        script.extend(ready());
        c.handle_input(&mut BytesMut::from(&script[..]), self.now)
            .unwrap();
        assert!(matches!(c.poll_event(), Some(Event::Ready)));
        c
    }

    /// Attaches a new connection and answers queries until the session waits.
    pub(super) fn connect(&mut self) -> Result<(), SessionError> {
        let conn = self.ready_connection();
        self.session.attach(conn, self.now)?;
        self.pump()
    }

    /// Drains the session's output; the fake server answers queries.
    pub(super) fn pump(&mut self) -> Result<(), SessionError> {
        loop {
            while self.auto_hand && self.session.unhanded() > 0 {
                self.session.handed()?;
            }
            let mut out = BytesMut::new();
            while self.session.poll_transmit(&mut out) {}
            if out.is_empty() {
                return Ok(());
            }
            for m in parse_frontend(&out) {
                match m {
                    Sent::Query(sql) => {
                        let reply = self.server.respond(&sql);
                        self.session
                            .handle_input(&mut BytesMut::from(&reply[..]), self.now)?;
                    }
                    other => self.sent.push(other),
                }
            }
        }
    }

    /// Feeds server bytes (split into two reads to exercise incremental input).
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let mut buf = BytesMut::new();
        let mid = bytes.len() / 2;
        buf.extend_from_slice(&bytes[..mid]);
        self.session.handle_input(&mut buf, self.now)?;
        buf.extend_from_slice(&bytes[mid..]);
        self.session.handle_input(&mut buf, self.now)?;
        assert!(buf.is_empty());
        self.pump()
    }

    /// Moves virtual time (and the wall clock) forward and fires the timer.
    pub(super) fn advance(&mut self, d: Duration) -> Result<(), SessionError> {
        self.now += d;
        *self.clock.lock().unwrap() += d;
        self.session.handle_timeout(self.now)?;
        self.pump()
    }

    /// Fires the timer whenever `poll_timeout` is due, up to `until` from now.
    pub(super) fn run_for(&mut self, d: Duration) -> Result<(), SessionError> {
        let end = self.now + d;
        while let Some(t) = self.session.poll_timeout() {
            if t > end {
                break;
            }
            let step = t.saturating_duration_since(self.now);
            self.advance(step)?;
        }
        let rest = end.saturating_duration_since(self.now);
        self.advance(rest)
    }

    pub(super) fn events(&mut self) -> Vec<SessionEvent> {
        std::iter::from_fn(|| self.session.poll_event()).collect()
    }

    pub(super) fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    pub(super) fn status_updates(&mut self) -> Vec<StandbyStatusUpdate> {
        self.take_sent()
            .iter()
            .filter_map(|m| match m {
                Sent::CopyData(p) => decode_status(p),
                _ => None,
            })
            .collect()
    }

    pub(super) fn queries(&mut self) -> Vec<String> {
        std::mem::take(&mut self.server.queries)
    }

    /// Connects and checks that streaming started.
    pub(super) fn stream(&mut self) {
        self.connect().unwrap();
        let evs = self.events();
        assert!(
            evs.iter()
                .any(|e| matches!(e, SessionEvent::StreamingStarted { .. })),
            "{evs:?}"
        );
        self.queries();
    }

    /// Transactions delivered since the last call: (xid, chunk index, last, ack LSN).
    pub(super) fn batches(&mut self) -> Vec<(u32, u32, bool, Option<Lsn>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SessionEvent::Transaction(b) => {
                    Some((b.xid.0, b.chunk_index, b.last_chunk, b.ack_lsn()))
                }
                _ => None,
            })
            .collect()
    }
}
