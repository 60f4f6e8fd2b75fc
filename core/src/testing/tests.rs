//! The fake walsender driven by the core's own connection and replication session, bytes
//! moved by hand.

use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::BytesMut;

use super::frontend::{Frontend, take_frontend};
use super::{FakeServer, FakeWalsender, QueryCut, Sent, WalsenderEvent};
use crate::SslMode;
use crate::assemble::{Pipeline, PipelineConfig};
use crate::connection::{Connection, ConnectionEvent};
use crate::lsn::Lsn;
use crate::replication::{ReplicationOptions, ReplicationSession, SessionEvent};
use crate::startup::ConnectParams;

struct Pair {
    server: FakeServer,
    walsender: FakeWalsender,
    session: ReplicationSession,
    now: Instant,
}

fn params(ssl: SslMode) -> ConnectParams {
    ConnectParams::new("u")
        .database("app")
        .replication(true)
        .ssl_mode(ssl)
}

/// Runs a connection against `ws` until Ready.
fn ready_connection(server: &mut FakeServer, ws: &mut FakeWalsender, ssl: SslMode) -> Connection {
    let now = Instant::now();
    let mut c = Connection::new(params(ssl), [1; 18], now).unwrap();
    for _ in 0..10 {
        let mut out = BytesMut::new();
        while c.poll_transmit(&mut out) {}
        ws.handle_input(server, &out).unwrap();
        let mut back = Vec::new();
        while ws.poll_output(server, &mut back) {}
        c.handle_input(&mut BytesMut::from(&back[..]), now).unwrap();
        while let Some(ev) = c.poll_event() {
            if matches!(ev, ConnectionEvent::Ready) {
                return c;
            }
        }
    }
    panic!("the connection never became ready");
}

impl Pair {
    fn new(server: FakeServer) -> Pair {
        let session = ReplicationSession::new(
            ReplicationOptions {
                tables: vec!["users".into()],
                ..ReplicationOptions::default()
            },
            Pipeline::new("src", PipelineConfig::default()),
            Box::new(|| UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        );
        Pair {
            server,
            walsender: FakeWalsender::new(77),
            session,
            now: Instant::now(),
        }
    }

    fn connect(&mut self) {
        self.walsender = FakeWalsender::new(77);
        let c = ready_connection(&mut self.server, &mut self.walsender, SslMode::Disable);
        self.session.attach(c, self.now).unwrap();
        self.pump();
    }

    /// Moves bytes both ways, one byte at a time towards the session, until both are quiet.
    fn pump(&mut self) {
        loop {
            let mut out = BytesMut::new();
            while self.session.poll_transmit(&mut out) {}
            self.walsender.handle_input(&mut self.server, &out).unwrap();
            let mut back = Vec::new();
            while self.walsender.poll_output(&self.server, &mut back) {}
            if out.is_empty() && back.is_empty() {
                return;
            }
            let mut buf = BytesMut::new();
            for b in back {
                buf.extend_from_slice(&[b]);
                self.session.handle_input(&mut buf, self.now).unwrap();
            }
        }
    }

    /// The session's events; batches and messages are handed over as they are polled.
    fn events(&mut self) -> Vec<SessionEvent> {
        let evs: Vec<SessionEvent> = std::iter::from_fn(|| self.session.poll_event()).collect();
        for e in &evs {
            if matches!(e, SessionEvent::Transaction(_) | SessionEvent::Message(_)) {
                self.session.handed().unwrap();
            }
        }
        evs
    }

    /// Delivered transactions: (xid, rows, ack LSN of the last chunk).
    fn delivered(&mut self) -> Vec<(u32, usize, Option<Lsn>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SessionEvent::Transaction(b) => Some((b.xid.0, b.changes.len(), b.ack_lsn())),
                _ => None,
            })
            .collect()
    }

    fn walsender_events(&mut self) -> Vec<WalsenderEvent> {
        std::iter::from_fn(|| self.walsender.poll_event()).collect()
    }
}

#[test]
fn a_session_streams_the_script_and_confirms_it() {
    let mut p = Pair::new(FakeServer::new("15.4"));
    p.connect();
    assert!(p.walsender.is_streaming());
    assert!(
        p.events()
            .iter()
            .any(|e| matches!(e, SessionEvent::StreamingStarted { .. }))
    );
    let t1 = p.server.commit(700, &[1, 2, 3]);
    let t2 = p.server.commit(701, &[4]);
    p.pump();
    assert_eq!(
        p.delivered(),
        [(700, 3, Some(t1.end)), (701, 1, Some(t2.end))]
    );
    assert_eq!(p.walsender.sent_lsn(), t2.end);
    assert!(p.walsender.is_caught_up(&p.server));
    p.session.ack(t1.end);
    p.now += Duration::from_secs(1);
    p.session.handle_timeout(p.now).unwrap();
    p.pump();
    assert_eq!(p.server.slot.as_ref().unwrap().confirmed, t1.end);
    assert!(
        p.walsender_events()
            .iter()
            .any(|e| matches!(e, WalsenderEvent::Status(s) if s.flush == t1.end))
    );
}

#[test]
fn a_new_connection_resumes_after_what_was_delivered() {
    let mut p = Pair::new(FakeServer::new("15.4"));
    p.connect();
    p.server.commit(700, &[1]);
    let t2 = p.server.commit(701, &[2]);
    p.pump();
    assert_eq!(p.delivered().len(), 2);
    p.walsender.close(&mut p.server);
    p.session.detach();
    let t3 = p.server.commit(702, &[3]);
    p.connect();
    let started = p.walsender_events().into_iter().find_map(|e| match e {
        WalsenderEvent::StreamingStarted { requested, start } => Some((requested, start)),
        _ => None,
    });
    assert_eq!(started, Some((t2.end, t2.end)));
    assert_eq!(p.delivered(), [(702, 1, Some(t3.end))]);
}

#[test]
fn streaming_starts_at_the_slot_when_it_is_later() {
    let mut server = FakeServer::new("15.4");
    server.commit(700, &[1]);
    let t2 = server.commit(701, &[2]);
    let mut slot = super::Slot::pgoutput(0);
    slot.confirmed = server.wal[0].end;
    server.slot = Some(slot);
    let mut p = Pair::new(server);
    p.connect();
    assert_eq!(p.delivered(), [(701, 1, Some(t2.end))]);
}

#[test]
fn ssl_requests_are_refused_and_the_session_goes_on_in_plaintext() {
    let mut server = FakeServer::new("15.4");
    let mut ws = FakeWalsender::new(5);
    let c = ready_connection(&mut server, &mut ws, SslMode::Prefer);
    assert_eq!(c.server_params().get("server_version"), Some("15.4"));
    assert_eq!(c.backend_pid(), Some(5));
}

#[test]
fn a_cut_before_a_command_leaves_it_undone() {
    let mut server = FakeServer::new("15.4");
    server.cut("CREATE_REPLICATION_SLOT", QueryCut::Before);
    let mut p = Pair::new(server);
    p.connect();
    assert!(p.walsender.is_closed());
    assert!(p.server.slot.is_none());
    assert!(
        p.walsender_events().iter().any(|e| matches!(
            e,
            WalsenderEvent::Cut(sql, QueryCut::Before) if sql.starts_with("CREATE_REPLICATION_SLOT")
        )),
        "the cut is reported"
    );
    assert!(p.server.cuts.is_empty(), "a cut fires once");
}

#[test]
fn a_cut_after_a_command_ran_sends_nothing_of_its_answer() {
    let mut server = FakeServer::new("15.4");
    server.cut("CREATE_REPLICATION_SLOT", QueryCut::After);
    let mut ws = FakeWalsender::new(9);
    let _ = ready_connection(&mut server, &mut ws, SslMode::Disable);
    let mut q = b"Q".to_vec();
    let sql = "CREATE_REPLICATION_SLOT \"s\" LOGICAL pgoutput (SNAPSHOT 'nothing')\0";
    q.extend_from_slice(&(sql.len() as i32 + 4).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    ws.handle_input(&mut server, &q).unwrap();
    assert!(ws.is_closed());
    assert!(server.slot.is_some(), "the slot was created");
    assert_eq!(ws.poll_message(&server), None);
}

#[test]
fn copy_done_ends_the_stream_and_releases_the_slot() {
    let mut p = Pair::new(FakeServer::new("15.4"));
    p.connect();
    assert_eq!(p.server.slot.as_ref().unwrap().active_pid, Some(77));
    p.session.stop(p.now);
    let mut out = BytesMut::new();
    while p.session.poll_transmit(&mut out) {}
    p.walsender.handle_input(&mut p.server, &out).unwrap();
    let m = p.walsender.poll_message(&p.server).unwrap();
    assert_eq!(m.sent, Sent::StreamEnd);
    assert_eq!(p.server.slot.as_ref().unwrap().active_pid, None);
    p.session
        .handle_input(&mut BytesMut::from(&m.bytes[..]), p.now)
        .unwrap();
    let mut out = BytesMut::new();
    while p.session.poll_transmit(&mut out) {}
    let mut rest = out.to_vec();
    let mut last = None;
    while let Some(m) = take_frontend(&mut rest, false).unwrap() {
        last = Some(m);
    }
    assert_eq!(last, Some(Frontend::Terminate));
    p.walsender.handle_input(&mut p.server, &out).unwrap();
    assert!(p.walsender.is_closed());
}
