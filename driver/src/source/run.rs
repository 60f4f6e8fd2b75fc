//! The source's background task: connect, hand the connection to the core's replication
//! session, move bytes, fire timers, deliver batches, reconnect. Every decision — what to
//! send, when, what an error means, how long to wait — is the core's.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use futures_core::Stream;
use futures_io::AsyncRead;
use futures_util::io::AsyncWriteExt;
use pgcdc_core::Lsn;
use pgcdc_core::replication::{
    Decision, Failure, ReconnectPolicy, Reconnector, ReplicationOptions, ReplicationSession,
    SessionError, SessionEvent,
};
use pgcdc_core::source_config::{AckMode, PostgresSourceConfig};

use super::batch::{AckHandle, ChangeBatch};
use super::bootstrap::{
    self, BootstrapContext, BootstrapPhase, BootstrapProgress, BootstrapProvider,
};
use super::dispatch::Dispatcher;
use super::status::{SourceState, SourceStatus};
use crate::conn::{ConnectOptions, PgConnection};
use crate::error::Error;
use crate::runtime::{BoxFuture, Runtime};
use crate::tls;
use crate::transport::Transport;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Messages from the source handle to the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// The application processed everything up to this transaction end LSN.
    Ack(Lsn),
    /// Stop cleanly.
    Stop,
}

/// The command receiver, pinned once (it is not `Unpin`).
type Cmds = Pin<Box<async_channel::Receiver<Command>>>;

/// What the task needs, fixed for one start.
pub(crate) struct RunConfig<R: Runtime> {
    pub(crate) connect: ConnectOptions,
    pub(crate) replication: ReplicationOptions,
    pub(crate) pipeline: pgcdc_core::assemble::PipelineConfig,
    pub(crate) source_id: String,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) ack_mode: AckMode,
    pub(crate) bootstrap: Option<Arc<dyn BootstrapProvider<R>>>,
    pub(crate) config: PostgresSourceConfig,
}

/// State shared between the handle and the task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) status: Mutex<SourceStatus>,
    pub(crate) dispatcher: Arc<Dispatcher>,
}

impl Shared {
    pub(crate) fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut st);
    }
}

/// How the first attempt went, reported to `start()`.
pub(crate) type StartReport = Result<(), String>;

/// Why an attempt ended.
enum AttemptEnd {
    /// Stopped cleanly on request.
    Stopped,
    /// Failed; the session decides whether to retry.
    Failed(AttemptError),
}

#[derive(Debug)]
enum AttemptError {
    Driver(Error),
    Session(SessionError),
    /// The bootstrap failed; its slot was dropped. Fatal: the start fails.
    Bootstrap(String),
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Driver(e) => e.fmt(f),
            AttemptError::Session(e) => e.fmt(f),
            AttemptError::Bootstrap(e) => e.fmt(f),
        }
    }
}

impl AttemptError {
    /// The message, with pgcdc's advice when the server's error has a known remedy.
    fn report(&self) -> String {
        let server = match self {
            AttemptError::Driver(e) => e.server_error(),
            AttemptError::Session(e) => e.server_error(),
            AttemptError::Bootstrap(_) => None,
        };
        match server.and_then(|e| e.advice()) {
            Some(advice) if server.is_some_and(|e| e.hint.is_none()) => {
                format!("{self}; hint: {advice}")
            }
            _ => self.to_string(),
        }
    }
}

impl From<Error> for AttemptError {
    fn from(e: Error) -> Self {
        AttemptError::Driver(e)
    }
}

impl From<SessionError> for AttemptError {
    fn from(e: SessionError) -> Self {
        AttemptError::Session(e)
    }
}

impl AttemptError {
    /// The core's view of the failure; only socket-level facts are translated here.
    fn decide(&self, reconnector: &mut Reconnector, random: u64) -> Decision {
        match self {
            AttemptError::Bootstrap(_) => Decision::Fatal,
            AttemptError::Session(e) => reconnector.on_failure(&Failure::Session(e), random),
            AttemptError::Driver(e) => match e {
                Error::Connect { source, .. } | Error::Io { source, .. } => {
                    reconnector.on_failure(&Failure::Io(source.kind()), random)
                }
                Error::TlsHandshake { source, .. }
                    if source.kind() == std::io::ErrorKind::InvalidData =>
                {
                    // A certificate the configuration rejects stays rejected.
                    reconnector.on_failure(&Failure::TlsRejected, random)
                }
                Error::TlsHandshake { .. } => reconnector.on_failure(&Failure::Tls, random),
                Error::Timeout(_) => reconnector.on_failure(&Failure::Timeout, random),
                Error::Connection(c) => reconnector.on_failure(&Failure::Connection(c), random),
                _ => Decision::Fatal,
            },
        }
    }
}

/// The background task of one `start()`.
pub(crate) async fn run<R: Runtime>(
    rt: R,
    cfg: RunConfig<R>,
    shared: Arc<Shared>,
    commands: async_channel::Receiver<Command>,
    acker: AckHandle,
    started: async_channel::Sender<StartReport>,
) {
    let mut pipeline =
        pgcdc_core::assemble::Pipeline::new(cfg.source_id.as_str(), cfg.pipeline.clone());
    pipeline = pipeline.with_id_generator(random_u128);
    let mut session = ReplicationSession::new(cfg.replication.clone(), pipeline, {
        let clock = rt.clone();
        Box::new(move || clock.wall_clock())
    });
    let mut reconnector = Reconnector::new(cfg.reconnect.clone());
    let mut started = Some(started);
    let mut commands: Cmds = Box::pin(commands);
    let mut stop_requested = false;
    loop {
        shared.update(|s| s.state = SourceState::Starting);
        let end = attempt(
            &rt,
            &cfg,
            &mut session,
            &shared,
            &mut commands,
            &acker,
            &mut started,
            &mut reconnector,
            &mut stop_requested,
        )
        .await;
        session.detach();
        let err = match end {
            AttemptEnd::Stopped => break,
            AttemptEnd::Failed(e) => e,
        };
        let message = err.report();
        let decision = err.decide(&mut reconnector, random_u64());
        match decision {
            Decision::RetryAfter(delay) if !stop_requested => {
                let attempt = reconnector.attempts();
                tracing::warn!(error = %message, attempt, delay_ms = delay.as_millis() as u64, "replication connection failed; reconnecting");
                shared.update(|s| {
                    s.state = SourceState::Reconnecting {
                        attempt,
                        delay_ms: delay.as_millis() as u64,
                    };
                    s.reconnects += 1;
                    s.last_error = Some(message.clone());
                });
                if let Some(tx) = started.take() {
                    // The source is up and keeps trying; start() does not wait forever.
                    let _ = tx.try_send(Ok(()));
                }
                if wait_or_stop(&rt, delay, &mut commands, &mut session).await {
                    break;
                }
            }
            Decision::RetryAfter(_) => break,
            Decision::GiveUp { attempts } => {
                let message = format!("{message} (gave up after {attempts} attempts)");
                fail(&shared, &mut started, message);
                return;
            }
            _ => {
                fail(&shared, &mut started, message);
                return;
            }
        }
    }
    tracing::info!("replication source stopped");
    shared.update(|s| s.state = SourceState::Stopped);
    shared.dispatcher.close();
    if let Some(tx) = started.take() {
        let _ = tx.try_send(Ok(()));
    }
}

fn fail(
    shared: &Shared,
    started: &mut Option<async_channel::Sender<StartReport>>,
    message: String,
) {
    tracing::error!(error = %message, "replication source failed");
    shared.update(|s| {
        s.state = SourceState::Failed(message.clone());
        s.last_error = Some(message.clone());
    });
    shared.dispatcher.close();
    if let Some(tx) = started.take() {
        let _ = tx.try_send(Err(message));
    }
}

/// Sleeps for the reconnect delay; acknowledgements received meanwhile are applied. Returns
/// true when a stop was requested.
async fn wait_or_stop<R: Runtime>(
    rt: &R,
    delay: Duration,
    commands: &mut Cmds,
    session: &mut ReplicationSession,
) -> bool {
    let mut sleep = rt.sleep(delay);
    loop {
        let next = std::future::poll_fn(|cx| {
            if let Poll::Ready(cmd) = commands.as_mut().poll_next(cx) {
                return Poll::Ready(cmd);
            }
            sleep.as_mut().poll(cx).map(|()| None)
        });
        match next.await {
            Some(Command::Ack(lsn)) => session.ack(lsn),
            Some(Command::Stop) => return true,
            None => return false,
        }
    }
}

/// What woke the attempt's loop.
enum Wake {
    Command(Option<Command>),
    Delivered,
    Read(std::io::Result<usize>),
    Timer,
}

#[allow(clippy::too_many_arguments)]
async fn attempt<R: Runtime>(
    rt: &R,
    cfg: &RunConfig<R>,
    session: &mut ReplicationSession,
    shared: &Arc<Shared>,
    commands: &mut Cmds,
    acker: &AckHandle,
    started: &mut Option<async_channel::Sender<StartReport>>,
    reconnector: &mut Reconnector,
    stop_requested: &mut bool,
) -> AttemptEnd {
    // Connect, racing a stop request.
    let connecting = PgConnection::connect(rt.clone(), &cfg.connect);
    let conn = {
        let mut connecting = std::pin::pin!(connecting);
        let raced = std::future::poll_fn(|cx| {
            if let Poll::Ready(cmd) = commands.as_mut().poll_next(cx) {
                if let Some(Command::Stop) | None = cmd {
                    return Poll::Ready(None);
                }
                if let Some(Command::Ack(lsn)) = cmd {
                    session.ack(lsn);
                }
            }
            connecting.as_mut().poll(cx).map(Some)
        })
        .await;
        match raced {
            None => {
                *stop_requested = true;
                return AttemptEnd::Stopped;
            }
            Some(Err(e)) => return AttemptEnd::Failed(e.into()),
            Some(Ok(c)) => c,
        }
    };
    let tls = conn.is_tls();
    let (mut io, core_conn, mut rbuf) = conn.into_parts();
    tracing::info!(tls, "replication connection established");
    if let Err(e) = session.attach(core_conn, rt.now()) {
        return AttemptEnd::Failed(e.into());
    }
    if *stop_requested {
        session.stop(rt.now());
    }
    let mut wbuf = BytesMut::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut outbox: VecDeque<ChangeBatch> = VecDeque::new();
    let mut delivering: Option<(BoxFuture<'static, ()>, ChangeBatch)> = None;
    let mut delivered_lsn = shared
        .status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last_delivered_lsn;
    let mut handed_lsn = delivered_lsn;
    if !rbuf.is_empty() {
        if let Err(e) = session.handle_input(&mut rbuf, rt.now()) {
            return AttemptEnd::Failed(e.into());
        }
    }
    loop {
        // 1. Events from the session.
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::Transaction(batch) => {
                    outbox.push_back(ChangeBatch::new(batch, acker.clone()));
                }
                SessionEvent::Message(msg) => {
                    outbox.push_back(ChangeBatch::from_message(msg, acker.clone()));
                }
                SessionEvent::StreamingStarted {
                    requested_lsn,
                    slot_confirmed_lsn,
                    proto_version,
                } => {
                    let slot_confirmed =
                        slot_confirmed_lsn.map_or_else(|| "-".to_owned(), |l| l.to_string());
                    tracing::info!(%requested_lsn, %slot_confirmed, proto_version, "streaming started");
                    reconnector.on_streaming();
                    shared.update(|s| s.state = SourceState::Running);
                    if let Some(tx) = started.take() {
                        let _ = tx.try_send(Ok(()));
                    }
                }
                SessionEvent::ResumeGap {
                    requested,
                    server_start,
                } => {
                    tracing::warn!(%requested, %server_start, "the slot's confirmed position is past the requested start: changes in between will not arrive");
                    shared.update(|s| s.resume_gap = Some((requested, server_start)));
                }
                SessionEvent::Identified {
                    system_id,
                    timeline,
                    xlogpos,
                    server_version_num,
                } => {
                    tracing::debug!(system_id, timeline, %xlogpos, server_version_num, "identified the server");
                }
                SessionEvent::SlotCreated {
                    slot_name,
                    consistent_point,
                    ..
                } => {
                    tracing::info!(slot = %slot_name, %consistent_point, "replication slot created");
                }
                SessionEvent::SnapshotHeld {
                    snapshot_name,
                    consistent_point,
                } => {
                    if let Some(provider) = cfg.bootstrap.as_deref() {
                        shared.update(|s| s.state = SourceState::Bootstrapping);
                        tracing::info!(provider = provider.name(), %snapshot_name, %consistent_point, "bootstrap: starting");
                        let ctx = BootstrapContext {
                            rt: rt.clone(),
                            source_id: cfg.source_id.clone(),
                            config: cfg.config.clone(),
                            connect: cfg.connect.clone(),
                            pipeline: cfg.pipeline.clone(),
                            snapshot_name,
                            consistent_point,
                            shared: Arc::clone(shared),
                            acker: acker.clone(),
                        };
                        let outcome = {
                            let mut work = std::pin::pin!(bootstrap::run_provider(provider, &ctx));
                            std::future::poll_fn(|cx| {
                                if let Poll::Ready(Some(Command::Stop) | None) =
                                    commands.as_mut().poll_next(cx)
                                {
                                    return Poll::Ready(Err(
                                        "stopped during the bootstrap".to_owned()
                                    ));
                                }
                                work.as_mut().poll(cx)
                            })
                            .await
                        };
                        if let Err(message) = outcome {
                            // Streaming after a partial copy would lose rows: drop the slot so
                            // the next start takes a new snapshot.
                            let _ = io.close().await;
                            bootstrap::drop_slot(rt, &cfg.connect, &cfg.replication.slot_name)
                                .await;
                            return AttemptEnd::Failed(AttemptError::Bootstrap(message));
                        }
                        shared.update(|s| s.state = SourceState::Starting);
                    }
                    if let Err(e) = session.release_snapshot(rt.now()) {
                        return AttemptEnd::Failed(e.into());
                    }
                }
                SessionEvent::SnapshotSkipped { slot_confirmed_lsn } => {
                    let slot_confirmed =
                        slot_confirmed_lsn.map_or_else(|| "-".to_owned(), |l| l.to_string());
                    tracing::info!(%slot_confirmed, "the slot exists: no bootstrap, streaming resumes from it");
                    if let Some(provider) = cfg.bootstrap.as_deref() {
                        shared.update(|s| {
                            s.bootstrap = Some(BootstrapProgress {
                                provider: provider.name().to_owned(),
                                phase: BootstrapPhase::Skipped,
                                tables: Vec::new(),
                                rows: 0,
                            });
                        });
                    }
                }
                SessionEvent::Warning(w) => tracing::warn!("{w}"),
                SessionEvent::Notice(n) => tracing::info!(notice = %n, "server notice"),
                SessionEvent::Stopped => {
                    let _ = write_out(session, &mut io, &mut wbuf).await;
                    let _ = io.close().await;
                    return AttemptEnd::Stopped;
                }
                _ => {}
            }
        }
        // 2. Bytes to the server.
        if let Err(e) = write_out(session, &mut io, &mut wbuf).await {
            return AttemptEnd::Failed(e.into());
        }
        // 3. Hand the next batch to the dispatcher.
        if delivering.is_none() {
            if let Some(batch) = outbox.pop_front() {
                // From here a subscriber may hold the batch and acknowledge it.
                if let Some(lsn) = batch.ack_lsn() {
                    handed_lsn = handed_lsn.max(lsn);
                }
                let fut = shared.dispatcher.deliver(rt, batch.clone());
                delivering = Some((fut, batch));
            }
        }
        publish_stats(shared, session);
        // 4. Wait for input, a delivery, a command or the session's deadline. The socket is
        // read only when nothing waits for delivery: that is the backpressure.
        let reading = outbox.is_empty() && delivering.is_none();
        let mut sleep = session
            .poll_timeout()
            .map(|d| rt.sleep(d.saturating_duration_since(rt.now())));
        let wake = std::future::poll_fn(|cx| {
            if let Poll::Ready(cmd) = commands.as_mut().poll_next(cx) {
                return Poll::Ready(Wake::Command(cmd));
            }
            if let Some((fut, _)) = delivering.as_mut() {
                if fut.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Delivered);
                }
            }
            if reading {
                if let Poll::Ready(r) = Pin::new(&mut io).poll_read(cx, &mut scratch) {
                    return Poll::Ready(Wake::Read(r));
                }
            }
            if let Some(s) = sleep.as_mut() {
                if s.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
            }
            Poll::Pending
        })
        .await;
        let now = rt.now();
        let result = match wake {
            Wake::Command(Some(Command::Ack(lsn))) => {
                // Never past what a subscriber could have received.
                session.ack(lsn.min(handed_lsn));
                Ok(())
            }
            Wake::Command(Some(Command::Stop)) | Wake::Command(None) => {
                *stop_requested = true;
                shared.update(|s| s.state = SourceState::Stopping);
                outbox.clear();
                delivering = None;
                session.stop(now);
                Ok(())
            }
            Wake::Delivered => {
                if let Some((_, batch)) = delivering.take() {
                    on_delivered(
                        shared,
                        session,
                        cfg.ack_mode,
                        &batch,
                        &mut delivered_lsn,
                        rt.wall_clock(),
                    );
                }
                Ok(())
            }
            Wake::Read(Ok(0)) => return AttemptEnd::Failed(session.handle_eof().into()),
            Wake::Read(Ok(n)) => {
                rbuf.extend_from_slice(scratch.get(..n).unwrap_or_default());
                session.handle_input(&mut rbuf, now)
            }
            Wake::Read(Err(source)) => {
                return AttemptEnd::Failed(
                    Error::Io {
                        context: "reading from the server",
                        source,
                    }
                    .into(),
                );
            }
            Wake::Timer => session.handle_timeout(now),
        };
        if let Err(e) = result {
            return AttemptEnd::Failed(e.into());
        }
    }
}

fn on_delivered(
    shared: &Shared,
    session: &mut ReplicationSession,
    ack_mode: AckMode,
    batch: &ChangeBatch,
    delivered_lsn: &mut Lsn,
    now_wall: SystemTime,
) {
    let ack = batch.ack_lsn();
    if let Some(lsn) = ack {
        *delivered_lsn = (*delivered_lsn).max(lsn);
        if ack_mode == AckMode::OnDelivery {
            session.ack(lsn);
        }
    }
    let n = batch.changes.len() as u64;
    let last = batch.last_chunk && ack.is_some();
    let delivered = *delivered_lsn;
    shared.update(|s| {
        s.changes += n;
        if last {
            s.transactions += 1;
        }
        s.last_delivered_lsn = delivered;
        s.last_change_at = Some(now_wall);
    });
}

fn publish_stats(shared: &Shared, session: &ReplicationSession) {
    let st = session.stats();
    shared.update(|s| {
        s.last_received_lsn = st.received_lsn;
        s.acked_lsn = st.acked_lsn;
        s.flush_lsn = st.flush_lsn;
        s.server_wal_end = st.server_wal_end;
        s.lag_bytes = st.lag_bytes;
        s.bytes_received = st.bytes_received;
        s.subscribers = shared.dispatcher.subscribers();
    });
}

async fn write_out<T>(
    session: &mut ReplicationSession,
    io: &mut Transport<T>,
    wbuf: &mut BytesMut,
) -> Result<(), Error>
where
    T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    while session.poll_transmit(wbuf) {}
    if wbuf.is_empty() {
        return Ok(());
    }
    io.write_all(wbuf).await.map_err(|source| Error::Io {
        context: "writing to the server",
        source,
    })?;
    wbuf.clear();
    io.flush().await.map_err(|source| Error::Io {
        context: "flushing to the server",
        source,
    })
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if tls::random_bytes(&mut b).is_err() {
        // The jitter only spreads reconnects out; a clock-derived value does that too.
        return SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

pub(crate) fn random_u128() -> u128 {
    (u128::from(random_u64()) << 64) | u128::from(random_u64())
}
