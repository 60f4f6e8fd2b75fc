//! The connection state machine: TLS negotiation step, startup, authentication, simple
//! queries.
//!
//! # Run-loop contract
//!
//! [`Connection`] owns no socket. A driver:
//!
//! 1. creates it with [`Connection::new`], then repeatedly
//! 2. writes out everything [`Connection::poll_transmit`] yields,
//! 3. handles every [`Connection::poll_event`] (on [`ConnectionEvent::StartTls`] it performs the TLS
//!    handshake on the socket and calls [`Connection::handle_tls_established`]),
//! 4. waits for socket input or [`Connection::poll_timeout`], then calls
//!    [`Connection::handle_input`], [`Connection::handle_eof`] or
//!    [`Connection::handle_timeout`].
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use pgcdc_core::connection::{Connection, ConnectionEvent};
//! use pgcdc_core::startup::ConnectParams;
//! use pgcdc_core::SslMode;
//!
//! let params = ConnectParams::new("app").database("app").ssl_mode(SslMode::Disable);
//! let mut conn = Connection::new(params, [7; 18], Instant::now()).unwrap();
//! let mut out = BytesMut::new();
//! while conn.poll_transmit(&mut out) {}
//! // `out` now holds the startup packet; write it to the socket, then feed replies:
//! let mut input = BytesMut::from(&b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I"[..]);
//! conn.handle_input(&mut input, Instant::now()).unwrap();
//! assert!(matches!(conn.poll_event(), Some(ConnectionEvent::Ready)));
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::auth::{
    AuthError, AuthStatus, Authenticator, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, TlsInfo,
};
use crate::error::{ProtocolError, ServerError};
use crate::query::QueryResult;
use crate::startup::{ConnectParams, ServerParams};
use crate::wire::{
    Authentication, BackendMessage, CopyResponse, EncodeError, Framer, TransactionStatus, frontend,
};

/// Why a connection failed. After any of these the connection is unusable.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The server reported an error that ends the connection (or the startup).
    #[error("server error: {0}")]
    Server(Box<ServerError>),
    /// Authentication could not complete.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The server broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A value could not be encoded (it contains a NUL byte).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// TLS is required by `sslmode` but the server does not offer it.
    #[error(
        "the server does not accept TLS connections, but sslmode={mode} requires TLS: enable ssl on the server or use sslmode=prefer"
    )]
    TlsNotOffered {
        /// The configured mode.
        mode: crate::SslMode,
    },
    /// The server answered the TLS request with an error message (its text is not shown,
    /// CVE-2024-10977).
    #[error(
        "the server rejected the TLS request with an error; check that it is a PostgreSQL server and supports SSLRequest"
    )]
    TlsRequestRejected,
    /// The startup deadline passed.
    #[error(
        "connection startup did not finish within the deadline (while {during}); check that the server is reachable and responsive, or raise the connect timeout"
    )]
    Timeout {
        /// What was being waited for.
        during: &'static str,
    },
    /// The server closed the connection.
    #[error("the server closed the connection unexpectedly (while {during})")]
    Closed {
        /// What was happening.
        during: &'static str,
    },
    /// The application called a method that is not valid in the current state.
    #[error("invalid use of the connection: {0}")]
    Usage(&'static str),
}

impl ConnectionError {
    /// The server error, if this came from an ErrorResponse.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ConnectionError::Server(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

/// Something the driver or the application must act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The server accepted TLS: perform the handshake now, then call
    /// [`Connection::handle_tls_established`].
    StartTls,
    /// Startup finished; queries can be sent.
    Ready,
    /// A query finished; one result per statement.
    QueryComplete(Vec<QueryResult>),
    /// A query failed; the connection is ready again.
    QueryFailed(ServerError),
    /// The server started a COPY to the client (COPY … TO STDOUT) or a CopyBoth stream
    /// (START_REPLICATION); [`ConnectionEvent::CopyData`] follows.
    CopyStarted(CopyResponse),
    /// One CopyData payload.
    CopyData(Bytes),
    /// The server ended its side of the COPY.
    CopyDone,
    /// A NoticeResponse (or a WARNING), which may arrive at any time.
    Notice(ServerError),
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// SSLRequest sent; waiting for the one-byte answer.
    SslResponse,
    /// Waiting for the driver to finish the TLS handshake.
    TlsHandshake,
    /// Startup packet sent; authenticating.
    Authenticating,
    /// Authenticated; waiting for BackendKeyData and ReadyForQuery.
    AwaitingReady,
    /// Idle, ready for a query.
    Ready,
    /// A simple query is running.
    Querying,
    /// In COPY OUT or CopyBoth mode.
    Copy,
    /// Closed, after an error or Terminate.
    Closed,
}

impl State {
    fn phase(self) -> &'static str {
        match self {
            State::SslResponse => "negotiating TLS",
            State::TlsHandshake => "performing the TLS handshake",
            State::Authenticating => "authenticating",
            State::AwaitingReady => "waiting for the server to become ready",
            State::Ready => "idle",
            State::Querying => "running a query",
            State::Copy => "copying data",
            State::Closed => "closed",
        }
    }

    fn in_startup(self) -> bool {
        matches!(
            self,
            State::SslResponse | State::TlsHandshake | State::Authenticating | State::AwaitingReady
        )
    }
}

/// A PostgreSQL connection as a sans-IO state machine; see the module docs for the loop.
#[derive(Debug)]
pub struct Connection {
    params: ConnectParams,
    state: State,
    framer: Framer,
    nonce: [u8; 18],
    tls_active: bool,
    auth: Option<Authenticator>,
    auth_method: Option<&'static str>,
    server_params: ServerParams,
    backend_pid: Option<i32>,
    backend_key: Option<Bytes>,
    tx_status: Option<TransactionStatus>,
    deadline: Option<Instant>,
    transmit: BytesMut,
    events: VecDeque<ConnectionEvent>,
    results: Vec<QueryResult>,
    current: Option<QueryResult>,
    query_error: Option<ServerError>,
    client_copy_done: bool,
}

impl Connection {
    /// A new connection that starts with the TLS request (or the startup packet when
    /// `sslmode=disable`). `nonce` is 18 random bytes for SCRAM; `now` starts the deadline.
    /// Fails only when a parameter cannot be encoded (it contains a NUL byte).
    pub fn new(
        params: ConnectParams,
        nonce: [u8; 18],
        now: Instant,
    ) -> Result<Self, ConnectionError> {
        // Validate the startup packet now so that later steps cannot fail on it.
        frontend::startup(params.startup_params(), &mut BytesMut::new())?;
        let deadline = params.startup_timeout.and_then(|t| now.checked_add(t));
        let mut conn = Connection {
            framer: Framer::for_startup(params.max_frame_len),
            params,
            state: State::SslResponse,
            nonce,
            tls_active: false,
            auth: None,
            auth_method: None,
            server_params: ServerParams::default(),
            backend_pid: None,
            backend_key: None,
            tx_status: None,
            deadline,
            transmit: BytesMut::new(),
            events: VecDeque::new(),
            results: Vec::new(),
            current: None,
            query_error: None,
            client_copy_done: false,
        };
        if conn.params.ssl_mode.attempts_tls() {
            frontend::ssl_request(&mut conn.transmit);
        } else {
            conn.send_startup(None)?;
        }
        Ok(conn)
    }

    // ----- getters -----

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The parameters this connection was opened with.
    pub fn params(&self) -> &ConnectParams {
        &self.params
    }

    /// Whether the session runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls_active
    }

    /// How the server authenticated this connection: `"SCRAM-SHA-256"`,
    /// `"SCRAM-SHA-256-PLUS"`, `"cleartext"`, or `None` (trust).
    pub fn authentication_method(&self) -> Option<&'static str> {
        self.auth_method
    }

    /// ParameterStatus values reported by the server.
    pub fn server_params(&self) -> &ServerParams {
        &self.server_params
    }

    /// The backend's process id (from BackendKeyData).
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// The transaction status of the last ReadyForQuery.
    pub fn transaction_status(&self) -> Option<TransactionStatus> {
        self.tx_status
    }

    /// Whether the connection is idle and can take a query.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The next deadline, if any (the startup deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state.in_startup() {
            self.deadline
        } else {
            None
        }
    }

    // ----- input -----

    /// Feeds bytes read from the socket (after TLS decryption), consuming whole messages.
    /// An error closes the connection.
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        let _ = now;
        let r = self.process_input(buf);
        if r.is_err() {
            self.state = State::Closed;
        }
        r
    }

    fn process_input(&mut self, buf: &mut BytesMut) -> Result<(), ConnectionError> {
        loop {
            match self.state {
                State::Closed => return Ok(()),
                State::TlsHandshake => {
                    if buf.is_empty() {
                        return Ok(());
                    }
                    return Err(ProtocolError::DataAfterSslResponse.into());
                }
                State::SslResponse => {
                    let Some((&b, rest)) = buf.split_first() else {
                        return Ok(());
                    };
                    let rest_empty = rest.is_empty();
                    match b {
                        b'S' => {
                            if !rest_empty {
                                return Err(ProtocolError::DataAfterSslResponse.into());
                            }
                            let _ = buf.split_to(1);
                            self.state = State::TlsHandshake;
                            self.events.push_back(ConnectionEvent::StartTls);
                            return Ok(());
                        }
                        b'N' => {
                            let _ = buf.split_to(1);
                            if self.params.ssl_mode.requires_tls() {
                                return Err(ConnectionError::TlsNotOffered {
                                    mode: self.params.ssl_mode,
                                });
                            }
                            self.send_startup(None)?;
                        }
                        b'E' => return Err(ConnectionError::TlsRequestRejected),
                        other => return Err(ProtocolError::InvalidSslResponse(other).into()),
                    }
                }
                _ => {
                    let Some(msg) = self.framer.parse(buf)? else {
                        return Ok(());
                    };
                    self.handle_message(msg)?;
                }
            }
        }
    }

    /// Reports that the TLS handshake finished. `server_end_point` is the
    /// tls-server-end-point channel-binding hash of the server certificate, when the driver
    /// could compute it.
    pub fn handle_tls_established(
        &mut self,
        server_end_point: Option<Vec<u8>>,
    ) -> Result<(), ConnectionError> {
        if self.state != State::TlsHandshake {
            return Err(ConnectionError::Usage(
                "TLS established outside the TLS step",
            ));
        }
        self.tls_active = true;
        self.send_startup(server_end_point)
    }

    /// Reports that the server closed the connection; returns the error describing it.
    pub fn handle_eof(&mut self) -> ConnectionError {
        let phase = self.state.phase();
        self.state = State::Closed;
        ConnectionError::Closed { during: phase }
    }

    /// Reports that time has passed; safe to call early. Fails once the startup deadline
    /// has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if let Some(d) = self.poll_timeout()
            && now >= d
        {
            let phase = self.state.phase();
            self.state = State::Closed;
            return Err(ConnectionError::Timeout { during: phase });
        }
        Ok(())
    }

    // ----- commands -----

    /// Sends a simple query; [`ConnectionEvent::QueryComplete`] or [`ConnectionEvent::QueryFailed`] follows (or
    /// [`ConnectionEvent::CopyStarted`] for COPY … TO STDOUT and START_REPLICATION).
    pub fn send_query(&mut self, sql: &str) -> Result<(), ConnectionError> {
        if self.state != State::Ready {
            return Err(ConnectionError::Usage(
                "a query was sent while the connection is not idle",
            ));
        }
        frontend::query(sql, &mut self.transmit)?;
        self.state = State::Querying;
        self.results.clear();
        self.current = None;
        self.query_error = None;
        self.client_copy_done = false;
        Ok(())
    }

    /// Sends CopyData to the server (CopyBoth mode only).
    pub fn send_copy_data(&mut self, data: &[u8]) -> Result<(), ConnectionError> {
        if self.state != State::Copy || self.client_copy_done {
            return Err(ConnectionError::Usage(
                "CopyData sent outside a CopyBoth stream",
            ));
        }
        frontend::copy_data(data, &mut self.transmit);
        Ok(())
    }

    /// Ends the client's side of a CopyBoth stream.
    pub fn send_copy_done(&mut self) -> Result<(), ConnectionError> {
        if self.state != State::Copy {
            return Err(ConnectionError::Usage("CopyDone sent outside a COPY"));
        }
        if !self.client_copy_done {
            frontend::copy_done(&mut self.transmit);
            self.client_copy_done = true;
        }
        Ok(())
    }

    /// Sends Terminate and closes the connection.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            frontend::terminate(&mut self.transmit);
            self.state = State::Closed;
        }
    }

    // ----- output -----

    /// Moves pending outbound bytes into `out`; returns whether anything was added.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> bool {
        if self.transmit.is_empty() {
            return false;
        }
        if out.is_empty() {
            // Hand the buffer over instead of copying it.
            std::mem::swap(out, &mut self.transmit);
        } else {
            out.extend_from_slice(&self.transmit);
            self.transmit.clear();
        }
        true
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.events.pop_front()
    }

    // ----- internals -----

    fn send_startup(&mut self, end_point: Option<Vec<u8>>) -> Result<(), ConnectionError> {
        frontend::startup(self.params.startup_params(), &mut self.transmit)?;
        let tls = if self.tls_active {
            TlsInfo::Tls {
                server_end_point: end_point,
            }
        } else {
            TlsInfo::Plaintext
        };
        self.auth = Some(
            Authenticator::new(
                self.params.password.clone(),
                self.params.channel_binding,
                tls,
                self.nonce,
            )
            .require_auth(self.params.require_auth.clone()),
        );
        self.state = State::Authenticating;
        Ok(())
    }

    fn handle_message(&mut self, msg: BackendMessage) -> Result<(), ConnectionError> {
        match msg {
            BackendMessage::NoticeResponse(n) => {
                self.events.push_back(ConnectionEvent::Notice(n));
                return Ok(());
            }
            BackendMessage::ParameterStatus { name, value } => {
                // A full map drops new names (see `ServerParams`); nothing else depends on them.
                let _kept = self.server_params.set(name, value);
                return Ok(());
            }
            BackendMessage::NotificationResponse { .. } => return Ok(()),
            _ => {}
        }
        match self.state {
            State::Authenticating => self.on_authenticating(msg),
            State::AwaitingReady => self.on_awaiting_ready(msg),
            State::Querying => self.on_querying(msg),
            State::Copy => self.on_copy(msg),
            State::Ready => match msg {
                BackendMessage::ErrorResponse(e) if e.is_fatal() => {
                    Err(ConnectionError::Server(Box::new(e)))
                }
                BackendMessage::ErrorResponse(e) => {
                    self.events.push_back(ConnectionEvent::Notice(e));
                    Ok(())
                }
                other => Err(unexpected(&other, "while idle")),
            },
            State::SslResponse | State::TlsHandshake | State::Closed => Ok(()),
        }
    }

    fn on_authenticating(&mut self, msg: BackendMessage) -> Result<(), ConnectionError> {
        match msg {
            BackendMessage::Authentication(a) => {
                let auth = self.auth.as_mut().ok_or(ConnectionError::Usage(
                    "authentication without a startup packet",
                ))?;
                let status = auth.handle(&a, &mut self.transmit)?;
                match a {
                    Authentication::CleartextPassword => self.auth_method = Some("cleartext"),
                    Authentication::Sasl { .. } => {
                        self.auth_method = Some(if auth.used_channel_binding() {
                            SCRAM_SHA_256_PLUS
                        } else {
                            SCRAM_SHA_256
                        });
                    }
                    _ => {}
                }
                if status == AuthStatus::Done {
                    self.state = State::AwaitingReady;
                    self.framer.authenticated();
                }
                Ok(())
            }
            BackendMessage::ErrorResponse(e) => Err(ConnectionError::Server(Box::new(e))),
            BackendMessage::NegotiateProtocolVersion { .. } => Ok(()),
            other => Err(unexpected(&other, "during authentication")),
        }
    }

    fn on_awaiting_ready(&mut self, msg: BackendMessage) -> Result<(), ConnectionError> {
        match msg {
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => {
                self.backend_pid = Some(process_id);
                self.backend_key = Some(secret_key);
                Ok(())
            }
            BackendMessage::ReadyForQuery(s) => {
                self.tx_status = Some(s);
                self.state = State::Ready;
                self.auth = None;
                self.events.push_back(ConnectionEvent::Ready);
                Ok(())
            }
            BackendMessage::ErrorResponse(e) => Err(ConnectionError::Server(Box::new(e))),
            BackendMessage::NegotiateProtocolVersion { .. } => Ok(()),
            // A second AuthenticationOk is harmless; anything else is out of order.
            BackendMessage::Authentication(Authentication::Ok) => Ok(()),
            other => Err(unexpected(&other, "after authentication")),
        }
    }

    fn on_querying(&mut self, msg: BackendMessage) -> Result<(), ConnectionError> {
        match msg {
            BackendMessage::RowDescription(d) => {
                self.current = Some(QueryResult {
                    columns: d.fields,
                    ..Default::default()
                });
            }
            BackendMessage::DataRow(r) => match &mut self.current {
                Some(cur) => cur.rows.push(r),
                None => return Err(unexpected_kind('D', "DataRow before RowDescription")),
            },
            BackendMessage::CommandComplete { tag } => {
                let mut cur = self.current.take().unwrap_or_default();
                cur.tag = tag;
                self.results.push(cur);
            }
            BackendMessage::EmptyQueryResponse => {
                self.current = None;
                self.results.push(QueryResult::default());
            }
            BackendMessage::ErrorResponse(e) => {
                if e.is_fatal() {
                    return Err(ConnectionError::Server(Box::new(e)));
                }
                self.current = None;
                self.query_error = Some(e);
            }
            BackendMessage::ReadyForQuery(s) => {
                self.tx_status = Some(s);
                self.state = State::Ready;
                let ev = match self.query_error.take() {
                    Some(e) => ConnectionEvent::QueryFailed(e),
                    None => ConnectionEvent::QueryComplete(std::mem::take(&mut self.results)),
                };
                self.events.push_back(ev);
            }
            BackendMessage::CopyBothResponse(c) | BackendMessage::CopyOutResponse(c) => {
                self.state = State::Copy;
                self.client_copy_done = false;
                self.events.push_back(ConnectionEvent::CopyStarted(c));
            }
            other => return Err(unexpected(&other, "while running a query")),
        }
        Ok(())
    }

    fn on_copy(&mut self, msg: BackendMessage) -> Result<(), ConnectionError> {
        match msg {
            BackendMessage::CopyData(d) => {
                self.events.push_back(ConnectionEvent::CopyData(d));
            }
            BackendMessage::CopyDone => {
                self.events.push_back(ConnectionEvent::CopyDone);
            }
            BackendMessage::CommandComplete { tag } => {
                // The copy is over; back to collecting the query's remaining results.
                self.results.push(QueryResult {
                    tag,
                    ..Default::default()
                });
                self.state = State::Querying;
            }
            BackendMessage::ErrorResponse(e) => {
                if e.is_fatal() {
                    return Err(ConnectionError::Server(Box::new(e)));
                }
                self.query_error = Some(e);
                self.state = State::Querying;
            }
            other => return Err(unexpected(&other, "during COPY")),
        }
        Ok(())
    }
}

fn unexpected(msg: &BackendMessage, context: &'static str) -> ConnectionError {
    unexpected_kind(msg.kind(), context)
}

fn unexpected_kind(kind: char, context: &'static str) -> ConnectionError {
    ConnectionError::Protocol(ProtocolError::UnexpectedMessage { kind, context })
}
