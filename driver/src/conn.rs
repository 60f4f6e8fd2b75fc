//! A connection driven by the core's [`Connection`] state machine over a runtime's socket.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::{Either, select};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use pgcdc_core::auth::tls_server_end_point;
use pgcdc_core::commands::IdentifySystem;
use pgcdc_core::connection::{Connection, ConnectionEvent};
use pgcdc_core::query::QueryResult;
use pgcdc_core::startup::{ConnectParams, ServerParams};
use pgcdc_core::{ServerError, SslMode};

use crate::error::Error;
use crate::runtime::Runtime;
use crate::tls::{self, RootCerts};
use crate::transport::Transport;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Where to connect and how.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Host name or IP address; also the name the server certificate is checked against.
    pub host: String,
    /// Numeric address to connect to instead of resolving `host` (libpq's `hostaddr`);
    /// `host` is still used for certificate verification.
    pub hostaddr: Option<String>,
    /// TCP port.
    pub port: u16,
    /// Startup parameters, credentials, TLS and channel-binding policy.
    pub params: ConnectParams,
    /// Trusted roots (libpq's `sslrootcert`); see [`RootCerts`] for what each mode checks.
    pub root_certs: RootCerts,
    /// Deadline for the TCP connect.
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    /// The options of a source configuration's connections: its host, address, TLS mode and
    /// roots, connect timeout and startup parameters; a replication connection when
    /// `replication`, an ordinary one otherwise.
    pub fn from_config(
        cfg: &pgcdc_core::source_config::PostgresSourceConfig,
        replication: bool,
    ) -> Self {
        let mut connect =
            ConnectOptions::new(cfg.host.clone(), cfg.port, cfg.connect_params(replication));
        if let Some(addr) = cfg.hostaddr {
            connect = connect.hostaddr(addr.to_string());
        }
        if let Some(timeout) = cfg.connect_timeout() {
            connect.connect_timeout = timeout;
        }
        connect.root_certs(RootCerts::from_setting(cfg.ssl_root_cert.as_deref()))
    }

    /// Options for `host:port` with the given parameters, platform roots and a 10 s TCP
    /// connect deadline.
    pub fn new(host: impl Into<String>, port: u16, params: ConnectParams) -> Self {
        ConnectOptions {
            host: host.into(),
            hostaddr: None,
            port,
            params,
            root_certs: RootCerts::NotSet,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Connects to `addr` while verifying the certificate against `host`.
    pub fn hostaddr(mut self, addr: impl Into<String>) -> Self {
        self.hostaddr = Some(addr.into());
        self
    }

    /// Sets the trusted roots.
    pub fn root_certs(mut self, roots: RootCerts) -> Self {
        self.root_certs = roots;
        self
    }

    /// The Unix-domain socket to connect to: a `host` that is an absolute path (and no
    /// `hostaddr`) names the server's socket directory, as with libpq, and the socket is
    /// `<host>/.s.PGSQL.<port>`.
    pub fn unix_socket_path(&self) -> Option<std::path::PathBuf> {
        (self.hostaddr.is_none() && self.host.starts_with('/'))
            .then(|| std::path::Path::new(&self.host).join(format!(".s.PGSQL.{}", self.port)))
    }
}

/// An open, authenticated connection.
#[derive(Debug)]
pub struct PgConnection<R: Runtime> {
    rt: R,
    io: Transport<R::Tcp>,
    conn: Connection,
    read_buf: BytesMut,
    write_buf: BytesMut,
    notices: VecDeque<ServerError>,
}

/// How many notices a [`PgConnection`] keeps until [`take_notices`](PgConnection::take_notices)
/// drains them; beyond it the oldest are dropped (each is still logged when it arrives), so a
/// server sending notices in a loop cannot grow the connection's memory.
pub const MAX_KEPT_NOTICES: usize = 100;

impl<R: Runtime> PgConnection<R> {
    /// Connects, negotiates TLS, authenticates and waits for ReadyForQuery.
    ///
    /// With `sslmode=prefer`, a server that accepts TLS but whose handshake fails is retried
    /// once over plaintext, as libpq does. With [`RootCerts::Platform`] every mode but
    /// `disable` is `verify-full`; see [`RootCerts`].
    pub async fn connect(rt: R, opts: &ConnectOptions) -> Result<Self, Error> {
        let mode = opts.root_certs.effective_mode(opts.params.ssl_mode);
        match Self::connect_once(rt.clone(), opts, mode).await {
            Err(Error::TlsHandshake { host, source }) if mode == SslMode::Prefer => {
                tracing::warn!(%host, error = %source, "TLS handshake failed; sslmode=prefer falls back to plaintext");
                Self::connect_once(rt, opts, SslMode::Disable).await
            }
            other => other,
        }
    }

    async fn connect_once(rt: R, opts: &ConnectOptions, mode: SslMode) -> Result<Self, Error> {
        if let Some(path) = opts.unix_socket_path() {
            return Self::connect_unix(rt, opts, mode, path).await;
        }
        let tls_config = if mode.attempts_tls() {
            Some(tls::client_config(mode, &opts.root_certs)?)
        } else {
            None
        };
        let tcp = with_deadline(
            &rt,
            opts.connect_timeout,
            rt.connect(
                opts.hostaddr.clone().unwrap_or_else(|| opts.host.clone()),
                opts.port,
            ),
            "opening the TCP connection",
        )
        .await?
        .map_err(|source| Error::Connect {
            host: opts.host.clone(),
            port: opts.port,
            source,
        })?;

        let mut this = Self::start(rt, Transport::Plain(tcp), opts, mode)?;
        loop {
            match this.next_event().await? {
                ConnectionEvent::StartTls => {
                    let Some(config) = tls_config.clone() else {
                        return Err(Error::Tls(
                            "server started TLS that was not requested".into(),
                        ));
                    };
                    this.start_tls(config, &opts.host).await?;
                }
                ConnectionEvent::Ready => return Ok(this),
                other => tracing::debug!(?other, "ignoring event during startup"),
            }
        }
    }

    /// A connection over `io` whose startup (with TLS policy `mode`) is about to begin.
    fn start(
        rt: R,
        io: Transport<R::Tcp>,
        opts: &ConnectOptions,
        mode: SslMode,
    ) -> Result<Self, Error> {
        let mut nonce = [0u8; 18];
        tls::random_bytes(&mut nonce)?;
        let mut params = opts.params.clone();
        params.ssl_mode = mode;
        let conn = Connection::new(params, nonce, rt.now())?;
        Ok(PgConnection {
            rt,
            io,
            conn,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::new(),
            notices: VecDeque::new(),
        })
    }

    /// Connects over the Unix-domain socket `path`. TLS is not negotiated there (as with
    /// libpq): `prefer` goes without it, a mode that requires it fails.
    async fn connect_unix(
        rt: R,
        opts: &ConnectOptions,
        mode: SslMode,
        path: std::path::PathBuf,
    ) -> Result<Self, Error> {
        if mode.requires_tls() {
            return Err(Error::Config(format!(
                "sslmode={mode} needs TLS, which is not used over the Unix-domain socket {}: \
                 use sslmode=prefer or disable, or give a TCP host",
                path.display()
            )));
        }
        let shown = path.display().to_string();
        let socket = with_deadline(
            &rt,
            opts.connect_timeout,
            rt.connect_unix(path),
            "opening the Unix-domain socket",
        )
        .await?
        .map_err(|source| Error::ConnectUnix {
            path: shown,
            source,
        })?;
        let mut this = Self::start(rt, Transport::Unix(socket), opts, SslMode::Disable)?;
        loop {
            match this.next_event().await? {
                ConnectionEvent::StartTls => {
                    return Err(Error::Tls(
                        "server started TLS over a Unix-domain socket".into(),
                    ));
                }
                ConnectionEvent::Ready => return Ok(this),
                other => tracing::debug!(?other, "ignoring event during startup"),
            }
        }
    }

    async fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        host: &str,
    ) -> Result<(), Error> {
        let name = tls::server_name(host)?;
        let Transport::Plain(tcp) = std::mem::replace(&mut self.io, Transport::Detached) else {
            return Err(Error::Tls("TLS requested twice".into()));
        };
        let connector = futures_rustls::TlsConnector::from(config);
        let remaining = self
            .conn
            .poll_timeout()
            .map(|d| d.saturating_duration_since(self.rt.now()))
            .unwrap_or(Duration::from_secs(3600));
        let stream = with_deadline(
            &self.rt,
            remaining,
            connector.connect(name, tcp),
            "performing the TLS handshake",
        )
        .await?
        .map_err(|source| Error::TlsHandshake {
            host: host.to_owned(),
            source,
        })?;
        let end_point = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|leaf| match tls_server_end_point(leaf.as_ref()) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::debug!(error = %e, "no channel binding possible with this certificate");
                    None
                }
            });
        self.io = Transport::Tls(Box::new(stream));
        self.conn.handle_tls_established(end_point)?;
        Ok(())
    }

    /// Takes the connection apart for a caller that drives the core itself (the replication
    /// session): the byte stream, the ready core connection and any bytes already read but
    /// not yet handled.
    pub fn into_parts(self) -> (Transport<R::Tcp>, Connection, BytesMut) {
        (self.io, self.conn, self.read_buf)
    }

    /// ParameterStatus values the server reported.
    pub fn server_params(&self) -> &ServerParams {
        self.conn.server_params()
    }

    /// How the server authenticated this connection (`"SCRAM-SHA-256"`,
    /// `"SCRAM-SHA-256-PLUS"`, `"cleartext"`, or `None` for trust).
    pub fn authentication_method(&self) -> Option<&'static str> {
        self.conn.authentication_method()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// The backend process id.
    pub fn backend_pid(&self) -> Option<i32> {
        self.conn.backend_pid()
    }

    /// The notices received since the last call, oldest first (drained); at most
    /// [`MAX_KEPT_NOTICES`], the newest.
    pub fn take_notices(&mut self) -> Vec<ServerError> {
        std::mem::take(&mut self.notices).into()
    }

    /// Runs `sql` with the simple query protocol and returns one result per statement.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>, Error> {
        self.conn.send_query(sql)?;
        loop {
            match self.next_event().await? {
                ConnectionEvent::QueryComplete(r) => return Ok(r),
                ConnectionEvent::QueryFailed(e) => return Err(Error::Query(Box::new(e))),
                ConnectionEvent::CopyStarted(_) => {
                    return Err(Error::Usage(
                        "simple_query does not run COPY or START_REPLICATION",
                    ));
                }
                other => tracing::debug!(?other, "ignoring event during query"),
            }
        }
    }

    /// Starts a `COPY … TO STDOUT`; read its rows with [`copy_out_next`](Self::copy_out_next).
    ///
    /// # Errors
    ///
    /// The server's error when the statement fails, [`Error::Usage`] when it is not a COPY
    /// to the client.
    pub async fn copy_out_start(&mut self, sql: &str) -> Result<(), Error> {
        self.conn.send_query(sql)?;
        loop {
            match self.next_event().await? {
                ConnectionEvent::CopyStarted(_) => return Ok(()),
                ConnectionEvent::QueryFailed(e) => return Err(Error::Query(Box::new(e))),
                ConnectionEvent::QueryComplete(_) => {
                    return Err(Error::Usage(
                        "copy_out_start needs a COPY … TO STDOUT statement, and this one returned \
                         no copy data",
                    ));
                }
                other => tracing::debug!(?other, "ignoring event before COPY"),
            }
        }
    }

    /// The next CopyData payload of a COPY started with
    /// [`copy_out_start`](Self::copy_out_start) (in text format: one row), or `None` once
    /// the COPY is complete and the connection is ready again.
    ///
    /// # Errors
    ///
    /// The server's error when the COPY fails part-way.
    pub async fn copy_out_next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.next_event().await? {
                ConnectionEvent::CopyData(row) => return Ok(Some(row)),
                ConnectionEvent::CopyDone => {}
                ConnectionEvent::QueryComplete(_) => return Ok(None),
                ConnectionEvent::QueryFailed(e) => return Err(Error::Query(Box::new(e))),
                other => tracing::debug!(?other, "ignoring event during COPY"),
            }
        }
    }

    /// Runs `IDENTIFY_SYSTEM` (replication connections only).
    pub async fn identify_system(&mut self) -> Result<IdentifySystem, Error> {
        let results = self.simple_query(IdentifySystem::COMMAND).await?;
        let r = results
            .first()
            .ok_or(Error::Unexpected("IDENTIFY_SYSTEM returned no result"))?;
        Ok(IdentifySystem::from_result(r)?)
    }

    /// Sends Terminate and closes the socket.
    pub async fn close(mut self) -> Result<(), Error> {
        self.conn.close();
        self.flush().await?;
        let _ = self.io.close().await;
        Ok(())
    }

    /// Writes every pending transmit.
    async fn flush(&mut self) -> Result<(), Error> {
        while self.conn.poll_transmit(&mut self.write_buf) {}
        if !self.write_buf.is_empty() {
            self.io
                .write_all(&self.write_buf)
                .await
                .map_err(|source| Error::Io {
                    context: "writing to the server",
                    source,
                })?;
            self.write_buf.clear();
            self.io.flush().await.map_err(|source| Error::Io {
                context: "flushing to the server",
                source,
            })?;
        }
        Ok(())
    }

    /// Drives the connection until the core yields an event.
    async fn next_event(&mut self) -> Result<ConnectionEvent, Error> {
        loop {
            if let Some(ev) = self.conn.poll_event() {
                if let ConnectionEvent::Notice(n) = ev {
                    tracing::info!(notice = %n, "server notice");
                    if self.notices.len() >= MAX_KEPT_NOTICES {
                        let _oldest = self.notices.pop_front();
                    }
                    self.notices.push_back(n);
                    continue;
                }
                return Ok(ev);
            }
            self.flush().await?;
            let n = self.read_some().await?;
            if n == 0 {
                return Err(self.conn.handle_eof().into());
            }
            if self.conn.is_ready() {
                self.conn.handle_input(&mut self.read_buf, self.rt.now())?;
            } else {
                self.handle_startup_input().await?;
            }
        }
    }

    /// Handles input before the connection is ready off the executor thread
    /// ([`Runtime::unblock`]): one of these messages may make the core derive the SCRAM key,
    /// up to a million PBKDF2 rounds (about a second), which would stall every task of the
    /// executor. The startup has few messages, so the hop costs nothing that matters.
    async fn handle_startup_input(&mut self) -> Result<(), Error> {
        let now = self.rt.now();
        // A stand-in for the moment the connection is on the blocking thread; if this future
        // is dropped meanwhile, the connection attempt is abandoned anyway.
        let stand_in = Connection::new(self.conn.params().clone(), [0; 18], now)?;
        let conn = std::mem::replace(&mut self.conn, stand_in);
        let input = std::mem::take(&mut self.read_buf);
        let (conn, input, result) = self
            .rt
            .unblock(move || {
                let (mut conn, mut input) = (conn, input);
                let result = conn.handle_input(&mut input, now);
                (conn, input, result)
            })
            .await
            .ok_or(Error::Usage(
                "the runtime is shutting down: the connection cannot authenticate",
            ))?;
        self.conn = conn;
        self.read_buf = input;
        result.map_err(Into::into)
    }

    /// Reads once from the socket into the read buffer, honouring the core's deadline.
    /// Returns 0 at end of stream.
    async fn read_some(&mut self) -> Result<usize, Error> {
        loop {
            let start = self.read_buf.len();
            self.read_buf.resize(start + READ_CHUNK, 0);
            let deadline = self.conn.poll_timeout();
            let tail = self.read_buf.get_mut(start..).unwrap_or_default();
            let read = self.io.read(tail);
            let result = match deadline {
                None => Some(read.await),
                Some(d) => {
                    let wait = d.saturating_duration_since(self.rt.now());
                    match select(read, self.rt.sleep(wait)).await {
                        Either::Left((r, _)) => Some(r),
                        Either::Right(((), _)) => None,
                    }
                }
            };
            match result {
                Some(Ok(n)) => {
                    self.read_buf.truncate(start + n);
                    return Ok(n);
                }
                Some(Err(source)) => {
                    self.read_buf.truncate(start);
                    return Err(Error::Io {
                        context: "reading from the server",
                        source,
                    });
                }
                None => {
                    self.read_buf.truncate(start);
                    self.conn.handle_timeout(self.rt.now())?;
                }
            }
        }
    }
}

/// Runs `fut`, failing with a timeout error after `limit`.
async fn with_deadline<R: Runtime, T>(
    rt: &R,
    limit: Duration,
    fut: impl std::future::Future<Output = T>,
    what: &'static str,
) -> Result<T, Error> {
    match select(Box::pin(fut), rt.sleep(limit)).await {
        Either::Left((v, _)) => Ok(v),
        Either::Right(((), _)) => Err(Error::Timeout(what)),
    }
}
