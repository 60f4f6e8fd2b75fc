//! A scripted fake walsender driving [`ReplicationSession`] with virtual time.

mod handoff;
mod lifecycle;
mod setup;
mod stream;
mod types;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

pub(super) use super::USER_TYPE_COLUMNS;
use super::{ReplicationOptions, ReplicationSession, SessionError, SessionEvent};
use crate::SslMode;
use crate::assemble::{Pipeline, PipelineConfig};
use crate::connection::{Connection, ConnectionEvent};
use crate::lsn::Lsn;
use crate::pgoutput::{
    Column, ColumnValue, Oid, PgOutputMessage, RelationBody, ReplicaIdentity, StandbyStatusUpdate,
    TupleData, Xid,
};
use crate::startup::ConnectParams;
pub(super) use crate::testing::backend::*;
pub(super) use crate::testing::frontend::{decode_status, parse_frontend};
pub(super) use crate::testing::wal::*;
pub(super) use crate::testing::{FakeServer, Frontend, Slot};

// -------------------------------------------------------------------------------- harness

pub(super) struct Harness {
    pub session: ReplicationSession,
    pub server: FakeServer,
    pub now: Instant,
    pub clock: Arc<Mutex<SystemTime>>,
    /// Non-query messages the session sent, in order.
    pub sent: Vec<Frontend>,
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
        let script = startup_reply(&self.server.version, 4242);
        c.handle_input(&mut BytesMut::from(&script[..]), self.now)
            .unwrap();
        assert!(matches!(c.poll_event(), Some(ConnectionEvent::Ready)));
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
            for m in parse_frontend(&out).unwrap() {
                match m {
                    Frontend::Query(sql) => {
                        let reply = self.server.respond(&sql);
                        assert!(
                            self.server.unexpected.is_empty(),
                            "the fake server has no answer to {:?}",
                            self.server.unexpected
                        );
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

    pub(super) fn take_sent(&mut self) -> Vec<Frontend> {
        std::mem::take(&mut self.sent)
    }

    pub(super) fn status_updates(&mut self) -> Vec<StandbyStatusUpdate> {
        self.take_sent()
            .iter()
            .filter_map(|m| match m {
                Frontend::CopyData(p) => decode_status(p),
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
