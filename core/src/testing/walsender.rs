//! The byte-level fake walsender of one connection.

use std::collections::VecDeque;

use super::backend::{complete, copy_done, error, ready, split_messages, startup_messages};
use super::frontend::{Frontend, FrontendError, decode_status, take_frontend};
use super::server::{FakeServer, QueryCut};
use super::wal::{TxnPart, keepalive};
use crate::lsn::Lsn;
use crate::pgoutput::StandbyStatusUpdate;

/// What one message a [`FakeWalsender`] sends is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// The one-byte `N` refusing an SSLRequest or GSSENCRequest.
    EncryptionRefused,
    /// Part of the answer to the startup packet.
    Startup,
    /// Part of the answer to a command (named by its first word).
    Reply(String),
    /// XLogData of a scripted transaction.
    Wal {
        /// The transaction.
        xid: u32,
        /// Which of its messages.
        part: TxnPart,
    },
    /// A primary keepalive.
    Keepalive {
        /// Its `wal_end`: the end of what this walsender sent.
        wal_end: Lsn,
        /// Whether it asks for a status update at once.
        reply_requested: bool,
    },
    /// The end of the stream after the client's CopyDone (CopyDone, CommandComplete,
    /// ReadyForQuery).
    StreamEnd,
}

/// One backend message, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// What it is.
    pub sent: Sent,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What happened on a [`FakeWalsender`]'s connection ([`FakeWalsender::poll_event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalsenderEvent {
    /// The startup packet arrived with these parameters.
    Startup(Vec<(String, String)>),
    /// A command arrived (and ran, unless a [`Cut`](Self::Cut) follows with
    /// [`QueryCut::Before`]).
    Query(String),
    /// A scripted cut ([`FakeServer::cut`]) closed the connection at this command.
    Cut(String, QueryCut),
    /// Streaming began at `start`: `requested`, or the slot's confirmed position when that
    /// is later (or `requested` is 0/0), as PostgreSQL does.
    StreamingStarted {
        /// The LSN in START_REPLICATION.
        requested: Lsn,
        /// Where streaming starts.
        start: Lsn,
    },
    /// A standby status update arrived; the slot's confirmed position moved to its flush.
    Status(StandbyStatusUpdate),
    /// The client ended the stream (CopyDone).
    StreamEnded,
    /// The client sent Terminate.
    Terminated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the startup packet (SSL/GSS requests are answered here).
    Startup,
    /// Idle, answering commands.
    Ready,
    /// In CopyBoth, sending the script.
    Streaming,
    /// Terminated or cut: nothing more is read or sent.
    Closed,
}

/// The walsender end of one replication connection, as a sans-IO state machine: feed it the
/// client's bytes with [`handle_input`](Self::handle_input), write out what
/// [`poll_message`](Self::poll_message) yields, watch [`poll_event`](Self::poll_event), and
/// call [`close`](Self::close) when the connection ends, from either side. The
/// [`FakeServer`] it is handed holds what outlives the connection: the catalog, the slot and
/// the WAL script.
///
/// * The startup packet is answered as under `trust` (AuthenticationOk, ParameterStatus,
///   BackendKeyData, ReadyForQuery); SSLRequest and GSSENCRequest with `N`.
/// * Commands are answered by [`FakeServer::respond`], one-shot failures and cuts included.
/// * `START_REPLICATION SLOT s LOGICAL X/Y` answers CopyBothResponse and streams every
///   transaction of [`FakeServer::wal`] that ends after the start position (the requested
///   LSN, or the slot's confirmed position when that is later or the request is 0/0),
///   including transactions committed while streaming. The slot is active meanwhile.
/// * Standby status updates move the slot's confirmed position to their flush.
/// * CopyDone ends the stream (CopyDone, CommandComplete, ReadyForQuery); Terminate closes.
///
/// ```
/// use pgcdc_core::testing::{FakeServer, FakeWalsender, backend};
///
/// let mut server = FakeServer::new("15.4");
/// let mut ws = FakeWalsender::new(4242);
/// let mut startup = Vec::new();
/// let body = [&196_608i32.to_be_bytes()[..], b"user\0u\0\0"].concat();
/// startup.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
/// startup.extend_from_slice(&body);
/// ws.handle_input(&mut server, &startup)?;
/// let mut out = Vec::new();
/// while ws.poll_output(&server, &mut out) {}
/// assert!(out.ends_with(&backend::ready()));
/// # Ok::<(), pgcdc_core::testing::FrontendError>(())
/// ```
#[derive(Debug)]
pub struct FakeWalsender {
    pid: i32,
    state: State,
    input: Vec<u8>,
    out: VecDeque<Outgoing>,
    events: VecDeque<WalsenderEvent>,
    /// The index in the script of the next transaction to send.
    next_txn: usize,
    /// The end of the last transaction sent in full, or the start position.
    sent_lsn: Lsn,
    /// The end of the transaction being sent.
    sending_end: Option<Lsn>,
    /// A keepalive to send before the next transaction: whether it requests a reply.
    keepalive: Option<bool>,
    /// The last status update received.
    status: Option<StandbyStatusUpdate>,
}

impl FakeWalsender {
    /// A walsender process `pid` for a new connection.
    pub fn new(pid: i32) -> FakeWalsender {
        FakeWalsender {
            pid,
            state: State::Startup,
            input: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_txn: 0,
            sent_lsn: Lsn::ZERO,
            sending_end: None,
            keepalive: None,
            status: None,
        }
    }

    // ------------------------------------------------------------------------ getters

    /// The process id (BackendKeyData, the slot's `active_pid`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the stream is running.
    pub fn is_streaming(&self) -> bool {
        self.state == State::Streaming
    }

    /// Whether the connection is over (Terminate or a scripted cut): close the socket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The end of the last transaction sent in full (or the start position).
    pub fn sent_lsn(&self) -> Lsn {
        self.sent_lsn
    }

    /// Whether everything queued is sent and, when streaming, every transaction of `server`'s
    /// script too.
    pub fn is_caught_up(&self, server: &FakeServer) -> bool {
        self.out.is_empty()
            && self.keepalive.is_none()
            && (self.state != State::Streaming || self.next_txn >= server.wal.len())
    }

    /// The last standby status update received.
    pub fn last_status(&self) -> Option<StandbyStatusUpdate> {
        self.status
    }

    // ------------------------------------------------------------------------ input

    /// Reads the client's bytes and acts on every complete message.
    ///
    /// # Errors
    ///
    /// A malformed message (the connection should then be closed).
    pub fn handle_input(
        &mut self,
        server: &mut FakeServer,
        bytes: &[u8],
    ) -> Result<(), FrontendError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.input.extend_from_slice(bytes);
        while self.state != State::Closed {
            let Some(m) = take_frontend(&mut self.input, self.state == State::Startup)? else {
                break;
            };
            self.on_message(server, m)?;
        }
        Ok(())
    }

    fn on_message(&mut self, server: &mut FakeServer, m: Frontend) -> Result<(), FrontendError> {
        match (self.state, m) {
            (State::Startup, Frontend::SslRequest | Frontend::GssEncRequest) => {
                self.out.push_back(Outgoing {
                    sent: Sent::EncryptionRefused,
                    bytes: vec![b'N'],
                });
            }
            (State::Startup, Frontend::Startup(params)) => {
                self.events.push_back(WalsenderEvent::Startup(params));
                for bytes in startup_messages(&server.version, self.pid) {
                    self.out.push_back(Outgoing {
                        sent: Sent::Startup,
                        bytes,
                    });
                }
                self.state = State::Ready;
            }
            (State::Startup, other) => {
                return Err(FrontendError(format!(
                    "{other:?} before the startup packet"
                )));
            }
            (_, Frontend::Terminate) => {
                self.events.push_back(WalsenderEvent::Terminated);
                self.close(server);
            }
            (State::Ready, Frontend::Query(sql)) => self.on_query(server, sql),
            (State::Streaming, Frontend::CopyData(payload)) => {
                if let Some(status) = decode_status(&payload) {
                    server.confirm(status.flush);
                    self.status = Some(status);
                    self.events.push_back(WalsenderEvent::Status(status));
                }
            }
            (State::Streaming, Frontend::CopyDone) => {
                // What was not sent yet is not sent: the client is leaving.
                self.out.clear();
                self.sending_end = None;
                self.keepalive = None;
                self.release_slot(server);
                self.state = State::Ready;
                self.events.push_back(WalsenderEvent::StreamEnded);
                let end = [copy_done(), complete("START_STREAMING"), ready()].concat();
                self.out.push_back(Outgoing {
                    sent: Sent::StreamEnd,
                    bytes: end,
                });
            }
            (state, other) => {
                return Err(FrontendError(format!("{other:?} while {state:?}")));
            }
        }
        Ok(())
    }

    fn on_query(&mut self, server: &mut FakeServer, sql: String) {
        self.events.push_back(WalsenderEvent::Query(sql.clone()));
        let cut = server.take_cut(&sql);
        if cut == Some(QueryCut::Before) {
            self.events
                .push_back(WalsenderEvent::Cut(sql, QueryCut::Before));
            self.close(server);
            return;
        }
        let command = sql.split_whitespace().next().unwrap_or_default().to_owned();
        let reply = if command == "START_REPLICATION" {
            self.start_replication(server, &sql)
        } else {
            server.respond(&sql)
        };
        if let Some(at) = cut {
            self.events.push_back(WalsenderEvent::Cut(sql, at));
            self.close(server);
            return;
        }
        for bytes in split_messages(&reply) {
            self.out.push_back(Outgoing {
                sent: Sent::Reply(command.clone()),
                bytes,
            });
        }
    }

    fn start_replication(&mut self, server: &mut FakeServer, sql: &str) -> Vec<u8> {
        let mut words = sql.split_whitespace();
        let requested = words
            .by_ref()
            .skip_while(|w| *w != "LOGICAL")
            .nth(1)
            .and_then(|w| w.parse::<Lsn>().ok());
        let Some(requested) = requested else {
            return [
                error("42601", "START_REPLICATION without a start LSN"),
                ready(),
            ]
            .concat();
        };
        let Some(confirmed) = server.slot.as_ref().map(|s| s.confirmed) else {
            return [
                error("42704", "replication slot \"s\" does not exist"),
                ready(),
            ]
            .concat();
        };
        let reply = server.respond(sql);
        if reply.first() != Some(&b'W') {
            return reply;
        }
        let start = requested.max(confirmed);
        if let Some(s) = server.slot.as_mut() {
            s.active_pid = Some(self.pid);
        }
        self.state = State::Streaming;
        self.sent_lsn = start;
        self.next_txn = server
            .wal
            .iter()
            .position(|t| t.end > start)
            .unwrap_or(server.wal.len());
        self.events
            .push_back(WalsenderEvent::StreamingStarted { requested, start });
        reply
    }

    /// Sends a keepalive before the next transaction (now, when between transactions),
    /// while streaming.
    pub fn queue_keepalive(&mut self, reply_requested: bool) {
        if self.state == State::Streaming {
            self.keepalive = Some(self.keepalive.unwrap_or(false) || reply_requested);
        }
    }

    /// The connection ended (the client left, the socket broke, or a cut): the slot is
    /// released and nothing more is sent.
    pub fn close(&mut self, server: &mut FakeServer) {
        self.release_slot(server);
        self.state = State::Closed;
        self.out.clear();
        self.keepalive = None;
    }

    fn release_slot(&self, server: &mut FakeServer) {
        if let Some(s) = server.slot.as_mut()
            && s.active_pid == Some(self.pid)
        {
            s.active_pid = None;
        }
    }

    // ------------------------------------------------------------------------ output

    /// The next message to send, if any. While streaming, transactions of `server`'s script
    /// are sent one message at a time, a queued keepalive between two of them.
    pub fn poll_message(&mut self, server: &FakeServer) -> Option<Outgoing> {
        if self.state == State::Closed {
            return None;
        }
        if self.out.is_empty() && self.state == State::Streaming {
            if let Some(reply_requested) = self.keepalive.take() {
                return Some(Outgoing {
                    sent: Sent::Keepalive {
                        wal_end: self.sent_lsn,
                        reply_requested,
                    },
                    bytes: keepalive(self.sent_lsn, reply_requested),
                });
            }
            let t = server.wal.get(self.next_txn)?;
            self.next_txn += 1;
            self.sending_end = Some(t.end);
            for (part, bytes) in t.messages() {
                self.out.push_back(Outgoing {
                    sent: Sent::Wal { xid: t.xid, part },
                    bytes,
                });
            }
        }
        let m = self.out.pop_front()?;
        if let Sent::Wal {
            part: TxnPart::Commit,
            ..
        } = m.sent
            && let Some(end) = self.sending_end.take()
        {
            self.sent_lsn = self.sent_lsn.max(end);
        }
        Some(m)
    }

    /// Appends the next message to `out`; `false` when there is none.
    pub fn poll_output(&mut self, server: &FakeServer, out: &mut Vec<u8>) -> bool {
        match self.poll_message(server) {
            Some(m) => {
                out.extend_from_slice(&m.bytes);
                true
            }
            None => false,
        }
    }

    /// What happened, oldest first.
    pub fn poll_event(&mut self) -> Option<WalsenderEvent> {
        self.events.pop_front()
    }
}
