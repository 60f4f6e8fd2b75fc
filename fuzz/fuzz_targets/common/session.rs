//! A replication session attached to the scripted server of `pgcdc_core::testing`, with
//! virtual time: what the session and feedback targets drive.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use pgcdc_core::Lsn;
use pgcdc_core::SslMode;
use pgcdc_core::assemble::{Pipeline, PipelineConfig};
use pgcdc_core::connection::{Connection, ConnectionEvent};
use pgcdc_core::replication::{ReplicationOptions, ReplicationSession, SessionError, SessionEvent};
use pgcdc_core::startup::ConnectParams;
use pgcdc_core::testing::FakeServer;
use pgcdc_core::testing::Frontend;
use pgcdc_core::testing::backend::startup_reply;
use pgcdc_core::testing::frontend::{decode_status, parse_frontend};

thread_local! {
    /// The scripted server's answers to the setup queries that read only its catalog, which
    /// no target changes: built by the first [`FakeServer::respond`] to each query, then
    /// replayed byte for byte (building them was about a third of a setup).
    static CATALOG_REPLIES: RefCell<HashMap<String, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// Whether the answer to `sql` depends only on the fixed catalog of
/// [`FakeServer::new`] (not on the slot, which the session creates and confirms).
fn reads_fixed_catalog(sql: &str) -> bool {
    sql == "IDENTIFY_SYSTEM"
        || ((sql.starts_with("SELECT") || sql.starts_with("WITH"))
            && !sql.contains("pg_replication_slots")
            && !sql.contains("pg_copy_logical_replication_slot"))
}

pub struct Harness {
    pub session: ReplicationSession,
    pub server: FakeServer,
    pub now: Instant,
    pub clock: Arc<Mutex<SystemTime>>,
    /// The highest flush position a status update carried.
    pub sent_flush: Lsn,
    /// The START_REPLICATION position of the last attach (0/0: the slot's).
    pub requested: Option<Lsn>,
    /// Bytes read and not yet consumed by the session.
    pub input: BytesMut,
    pub events: Vec<SessionEvent>,
    /// Connections attached so far ([`reconnect`](Self::reconnect) calls).
    pub attaches: u32,
    /// The server bytes of a startup under `trust` (built once per harness).
    startup: Vec<u8>,
    /// What the session writes, reused between pumps.
    out: BytesMut,
}

impl Harness {
    pub fn new(options: ReplicationOptions, config: PipelineConfig, version: &str) -> Harness {
        let clock = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        let c = clock.clone();
        let session = ReplicationSession::new(
            options,
            Pipeline::new("src", config),
            Box::new(move || *c.lock().unwrap_or_else(|e| e.into_inner())),
        );
        Harness {
            session,
            startup: startup_reply(version, 4242),
            server: FakeServer::new(version),
            now: Instant::now(),
            clock,
            sent_flush: Lsn::ZERO,
            requested: None,
            input: BytesMut::new(),
            events: Vec::new(),
            attaches: 0,
            out: BytesMut::new(),
        }
    }

    /// A connection in state Ready, as a driver hands it over.
    pub fn ready_connection(&self) -> Connection {
        let p = ConnectParams::new("u")
            .database("app")
            .replication(true)
            .ssl_mode(SslMode::Disable);
        let mut c = Connection::new(p, [1; 18], self.now).expect("a connection starts");
        let mut out = BytesMut::new();
        while c.poll_transmit(&mut out) {}
        c.handle_input(&mut BytesMut::from(&self.startup[..]), self.now)
            .expect("the startup reply is accepted");
        assert!(matches!(c.poll_event(), Some(ConnectionEvent::Ready)));
        c
    }

    /// Detaches (if attached) and attaches a new connection, answering the setup queries.
    pub fn reconnect(&mut self) -> Result<(), SessionError> {
        self.session.detach();
        self.input.clear();
        self.requested = None;
        self.attaches += 1;
        let conn = self.ready_connection();
        self.session.attach(conn, self.now)?;
        self.pump()
    }

    /// Sends out what the session has to send; the scripted server answers queries.
    pub fn pump(&mut self) -> Result<(), SessionError> {
        for _ in 0..64 {
            self.out.clear();
            while self.session.poll_transmit(&mut self.out) {}
            self.drain();
            if self.out.is_empty() {
                return Ok(());
            }
            let msgs =
                parse_frontend(&self.out).expect("the session writes whole frontend messages");
            for m in msgs {
                match m {
                    Frontend::Query(sql) => {
                        if sql.starts_with("START_REPLICATION") {
                            self.requested = sql.split(' ').nth(4).and_then(|l| l.parse().ok());
                        }
                        let mut reply = self.answer(&sql);
                        self.session.handle_input(&mut reply, self.now)?;
                    }
                    Frontend::CopyData(p) => {
                        if let Some(u) = decode_status(&p) {
                            assert!(
                                u.flush >= self.sent_flush,
                                "a status update sent flush {} after {}",
                                u.flush,
                                self.sent_flush
                            );
                            self.sent_flush = u.flush;
                            self.server.confirm(u.flush);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The scripted server's answer to `sql`.
    fn answer(&mut self, sql: &str) -> BytesMut {
        if !reads_fixed_catalog(sql) {
            return BytesMut::from(&self.server.respond(sql)[..]);
        }
        CATALOG_REPLIES.with_borrow_mut(|replies| {
            if let Some(r) = replies.get(sql) {
                return BytesMut::from(&r[..]);
            }
            let r = self.server.respond(sql);
            let out = BytesMut::from(&r[..]);
            replies.insert(sql.to_owned(), r);
            out
        })
    }

    /// Moves the session's events into `events`. After a
    /// [`PositionReset`](SessionEvent::PositionReset) the flush starts over on the new
    /// history: the status updates that follow are measured from there.
    pub fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            if matches!(e, SessionEvent::PositionReset { .. }) {
                self.sent_flush = Lsn::ZERO;
            }
            self.events.push(e);
        }
    }

    /// Feeds server bytes.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.input.extend_from_slice(bytes);
        self.session.handle_input(&mut self.input, self.now)?;
        self.pump()
    }

    /// Moves virtual time (and the wall clock) forward and fires the timer.
    pub fn advance(&mut self, d: Duration) -> Result<(), SessionError> {
        self.now += d;
        let mut c = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        *c += d;
        drop(c);
        self.session.handle_timeout(self.now)?;
        self.pump()
    }
}
