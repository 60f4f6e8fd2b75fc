//! The source's background task: connect, hand the connection to the core's replication
//! session, move bytes, fire timers, deliver batches, reconnect. Every decision — what to
//! send, when, what an error means, how long to wait — is the core's.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

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

use super::batch::ChangeBatch;
use super::bootstrap::{
    self, BootstrapContext, BootstrapProgress, BootstrapProvider, BootstrapStage,
};
use super::command::{AckHandle, Command};
use super::shared::Shared;
use super::status::SourceState;
use crate::conn::{ConnectOptions, PgConnection};
use crate::error::{BootstrapError, Error, StartCause, StartError};
use crate::runtime::{BoxFuture, Runtime};
use crate::transport::Transport;

/// How often the end of a bootstrap looks whether the subscribers took every row.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// Bytes asked of the socket per read: a read takes whatever the socket has gathered, up to
/// this.
const READ_CHUNK: usize = 256 * 1024;

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
    /// How long `start()` retries before the capture point is fixed (`None`: forever).
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) bootstrap: Option<Arc<dyn BootstrapProvider<R>>>,
    pub(crate) config: PostgresSourceConfig,
}

/// How the first attempt went, reported to `start()`.
pub(crate) type StartReport = Result<(), StartError>;

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
    Bootstrap(BootstrapError),
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
            AttemptError::Bootstrap(e) => e.server_error(),
        };
        match server.and_then(|e| e.advice()) {
            Some(advice) if server.is_some_and(|e| e.hint.is_none()) => {
                format!("{self}; hint: {advice}")
            }
            _ => self.to_string(),
        }
    }
}

impl AttemptError {
    fn into_cause(self) -> StartCause {
        match self {
            AttemptError::Driver(e) => StartCause::Driver(e),
            AttemptError::Session(e) => StartCause::Session(e),
            AttemptError::Bootstrap(e) => StartCause::Bootstrap(e),
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
    /// The core's view of the failure: the driver's errors are only translated into the
    /// core's [`Failure`]s; which of them are worth a reconnect is the core's rule.
    fn decide(&self, reconnector: &mut Reconnector, random: u64) -> Decision {
        let failure = match self {
            AttemptError::Bootstrap(_) => Failure::Local,
            AttemptError::Session(e) => Failure::Session(e),
            AttemptError::Driver(e) => match e {
                Error::Connect { source, .. }
                | Error::ConnectUnix { source, .. }
                | Error::Io { source, .. } => Failure::Io(source.kind()),
                Error::TlsHandshake { source, .. } => Failure::Tls(source.kind()),
                Error::Timeout(_) => Failure::Timeout,
                Error::Connection(c) => Failure::Connection(c),
                _ => Failure::Local,
            },
        };
        reconnector.on_failure(&failure, random)
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
    let ids = rt.clone();
    pipeline = pipeline.with_id_generator(move || random_u128(&ids));
    if cfg.pipeline.spill_threshold_bytes != 0 {
        pipeline = pipeline.with_spill_store(super::spill::TempFileStore::new(
            cfg.config.spill_dir.as_deref(),
        ));
    }
    let clock = rt.clone();
    let session = ReplicationSession::new(
        cfg.replication.clone(),
        pipeline,
        Box::new(move || clock.wall_clock()),
    );
    let reconnector = Reconnector::new(cfg.reconnect.clone());
    let start_deadline = cfg.start_timeout.and_then(|t| rt.now().checked_add(t));
    let delivered_lsn = shared
        .status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last_delivered_lsn;
    let alive = Arc::new(AtomicBool::new(true));
    if let Some(every) = cfg.config.slot_check_interval() {
        rt.spawn(Box::pin(super::monitor::watch_slot(
            rt.clone(),
            cfg.connect.clone(),
            cfg.replication.slot_name.clone(),
            cfg.config.slot_lag_warn_bytes,
            every,
            Arc::clone(&shared),
            Arc::clone(&alive),
        )));
    }
    let _alive = super::monitor::ClearOnDrop(alive);
    let driver = Driver {
        rt,
        cfg,
        shared,
        commands: Box::pin(commands),
        acker,
        session,
        reconnector,
        started: Some(started),
        start_deadline,
        capture_fixed: false,
        stop_requested: false,
        outbox: VecDeque::new(),
        delivering: None,
        handed_lsn: delivered_lsn,
        delivered_lsn,
    };
    driver.run().await;
}

/// The task's state: the session, the delivery pipeline and the start report. Each session
/// event, command, delivery, read and timer is one method.
///
/// Delivery accounting: a batch the session emits waits in `outbox`, then in `delivering`
/// while the dispatcher offers it to the subscriber queues; only when every queue took it
/// is it reported to the session ([`ReplicationSession::handed`]). When a connection breaks,
/// a delivery that some queue already holds is completed (the others must get it too); one
/// no queue took yet is dropped with the rest of the outbox: the session resumes before
/// those batches, so the server sends them again.
struct Driver<R: Runtime> {
    rt: R,
    cfg: RunConfig<R>,
    shared: Arc<Shared>,
    commands: Cmds,
    acker: AckHandle,
    session: ReplicationSession,
    reconnector: Reconnector,
    /// `start()` waits on this until the capture point is fixed, or the start fails.
    started: Option<async_channel::Sender<StartReport>>,
    /// When `start()` gives up retrying.
    start_deadline: Option<Instant>,
    /// The slot exists and its position is known: every change from here is delivered or
    /// still in the slot.
    capture_fixed: bool,
    stop_requested: bool,
    outbox: VecDeque<ChangeBatch>,
    /// The delivery on offer, and whether a queue holds the batch already.
    delivering: Option<(BoxFuture<'static, ()>, ChangeBatch, Arc<AtomicBool>)>,
    /// The highest ack LSN a subscriber may hold.
    handed_lsn: Lsn,
    /// The highest ack LSN handed over, for the status.
    delivered_lsn: Lsn,
}

/// One connection's socket and buffers.
struct Link<T> {
    io: Transport<T>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    scratch: Vec<u8>,
    /// No read before this ([`ReplicationSession::read_pause`]: the server sends a backlog).
    read_paused_until: Option<std::time::Instant>,
}

/// What to do after a session event.
enum Flow {
    Continue,
    End(AttemptEnd),
}

impl<R: Runtime> Driver<R> {
    async fn run(mut self) {
        loop {
            self.shared.update(|s| s.state = SourceState::Starting);
            let end = self.attempt().await;
            if !matches!(end, AttemptEnd::Stopped) {
                // A delivery that began completes: some subscriber queues may hold the batch
                // already, and the server would send it again to all of them.
                self.finish_delivery().await;
            }
            self.outbox.clear();
            self.delivering = None;
            self.session.detach();
            let err = match end {
                AttemptEnd::Stopped => break,
                AttemptEnd::Failed(e) => e,
            };
            if !self.on_failure(err).await {
                return;
            }
        }
        tracing::info!("replication source stopped");
        self.shared.update(|s| s.state = SourceState::Stopped);
        self.shared.dispatcher.close();
        if let Some(tx) = self.started.take() {
            let _ = tx.try_send(Ok(()));
        }
    }

    /// Decides after a failed attempt: waits for the retry and returns true, or ends the
    /// source (false). Before the capture point is fixed, transient failures are retried
    /// inside `start()` until its deadline.
    async fn on_failure(&mut self, err: AttemptError) -> bool {
        let message = err.report();
        let decision = err.decide(&mut self.reconnector, self.rt.random());
        match decision {
            Decision::RetryAfter(mut delay) if !self.stop_requested => {
                let attempt = self.reconnector.attempts();
                let now = self.rt.now();
                let deadline = self
                    .start_deadline
                    .filter(|_| self.started.is_some() && !self.capture_fixed);
                if let Some(d) = deadline {
                    // The last attempt is made at the deadline.
                    delay = delay.min(d.saturating_duration_since(now));
                }
                if deadline.is_some_and(|d| now >= d) {
                    let message = format!(
                        "{message} (no replication slot position could be fixed within the start \
                         timeout, start_timeout_ms = {}; {attempt} attempt(s))",
                        self.cfg.start_timeout.map_or(0, |d| d.as_millis())
                    );
                    self.fail(StartError::new(message, err.into_cause(), true));
                    return false;
                }
                let standby = match &err {
                    AttemptError::Session(SessionError::SlotActive { pid, .. })
                        if !self.capture_fixed =>
                    {
                        Some(*pid)
                    }
                    _ => None,
                };
                match standby {
                    Some(pid) => {
                        tracing::info!(error = %message, holder_pid = ?pid, attempt, delay_ms = delay.as_millis() as u64, "standing by: another consumer holds the slot; taking it over once it is free")
                    }
                    None => {
                        tracing::warn!(error = %message, attempt, delay_ms = delay.as_millis() as u64, "replication connection failed; reconnecting")
                    }
                }
                self.shared.update(|s| {
                    s.state = match standby {
                        Some(holder_pid) => SourceState::Standby {
                            attempt,
                            holder_pid,
                        },
                        None => SourceState::Reconnecting {
                            attempt,
                            delay_ms: delay.as_millis() as u64,
                        },
                    };
                    s.reconnects += 1;
                    s.last_error = Some(message.clone());
                });
                if self.capture_fixed
                    && let Some(tx) = self.started.take()
                {
                    // Every change from the slot's position on will be delivered: start() may
                    // return while the source reconnects.
                    let _ = tx.try_send(Ok(()));
                }
                !self.wait_or_stop(delay).await
            }
            Decision::RetryAfter(_) => {
                self.finish_stopped();
                false
            }
            Decision::GiveUp { attempts } => {
                let message = format!("{message} (gave up after {attempts} attempts)");
                self.fail(StartError::new(message, err.into_cause(), true));
                false
            }
            _ => {
                self.fail(StartError::new(message, err.into_cause(), false));
                false
            }
        }
    }

    fn finish_stopped(&mut self) {
        tracing::info!("replication source stopped");
        self.shared.update(|s| s.state = SourceState::Stopped);
        self.shared.dispatcher.close();
        if let Some(tx) = self.started.take() {
            let _ = tx.try_send(Ok(()));
        }
    }

    fn fail(&mut self, error: StartError) {
        let message = error.message().to_owned();
        tracing::error!(error = %message, "replication source failed");
        self.shared.update(|s| {
            s.state = SourceState::Failed(message.clone());
            s.last_error = Some(message.clone());
        });
        self.shared.dispatcher.close();
        if let Some(tx) = self.started.take() {
            let _ = tx.try_send(Err(error));
        }
    }

    /// Runs `fut` to its end while applying the commands that arrive (acknowledgements);
    /// `None` when a stop was requested (or every handle is gone) first.
    async fn unless_stopped<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            loop {
                match self.commands.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Command::Stop) | None) => return Poll::Ready(None),
                    Poll::Ready(Some(cmd)) => self.on_command(cmd),
                    Poll::Pending => break,
                }
            }
            fut.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// Sleeps for the reconnect delay; commands received meanwhile are applied. Returns
    /// true when a stop was requested.
    async fn wait_or_stop(&mut self, delay: Duration) -> bool {
        let sleep = self.rt.sleep(delay);
        self.unless_stopped(sleep).await.is_none()
    }

    /// Completes the delivery in progress once a queue holds its batch (a stop request
    /// abandons it: the subscriptions end anyway). One that no queue took yet is dropped:
    /// the server sends the batch again.
    async fn finish_delivery(&mut self) {
        let Some((mut fut, batch, taken)) = self.delivering.take() else {
            return;
        };
        if !taken.load(Ordering::Acquire) {
            return;
        }
        if self.unless_stopped(fut.as_mut()).await.is_some() {
            self.on_handed(&batch);
        } else {
            self.stop_requested = true;
        }
    }

    /// One connection: connect, attach, then move bytes, events, deliveries and commands
    /// until it ends.
    async fn attempt(&mut self) -> AttemptEnd {
        let conn = {
            let options = self.cfg.connect.clone();
            let connecting = PgConnection::connect(self.rt.clone(), &options);
            match self.unless_stopped(connecting).await {
                None => {
                    self.stop_requested = true;
                    return AttemptEnd::Stopped;
                }
                Some(Err(e)) => return AttemptEnd::Failed(e.into()),
                Some(Ok(c)) => c,
            }
        };
        let tls = conn.is_tls();
        let (io, core_conn, rbuf) = conn.into_parts();
        tracing::info!(tls, "replication connection established");
        if let Err(e) = self.session.attach(core_conn, self.rt.now()) {
            return AttemptEnd::Failed(e.into());
        }
        if self.stop_requested {
            self.session.stop(self.rt.now());
        }
        let mut link = Link {
            io,
            rbuf,
            wbuf: BytesMut::new(),
            scratch: vec![0u8; READ_CHUNK],
            read_paused_until: None,
        };
        if !link.rbuf.is_empty()
            && let Err(e) = self.session.handle_input(&mut link.rbuf, self.rt.now())
        {
            return AttemptEnd::Failed(e.into());
        }
        loop {
            // 1. Events from the session. A held transaction the server completed is read
            // back one chunk at a time, only when the outbox is empty: what waits for
            // delivery stays one batch.
            while let Some(ev) = if self.outbox.is_empty() {
                self.session.poll_event()
            } else {
                self.session.poll_ready_event()
            } {
                if let Flow::End(end) = self.on_session_event(ev, &mut link).await {
                    return end;
                }
            }
            if let Some(e) = self.session.take_error() {
                return AttemptEnd::Failed(e.into());
            }
            // 2. Bytes to the server.
            if let Err(e) = write_out(&mut self.session, &mut link.io, &mut link.wbuf).await {
                return AttemptEnd::Failed(e.into());
            }
            // 3. Offer the next batch to the subscribers.
            self.start_delivery();
            publish_stats(&self.shared, &self.session);
            // 4. Wait for input, a delivery, a command or the session's deadline. The
            // socket is read only when nothing waits for delivery: that is the backpressure.
            let wake = self.wait(&mut link).await;
            let now = self.rt.now();
            let result = match wake {
                Wake::Command(Some(Command::Stop) | None) => {
                    self.stop_requested = true;
                    self.shared.update(|s| s.state = SourceState::Stopping);
                    self.outbox.clear();
                    self.delivering = None;
                    self.session.stop(now);
                    Ok(())
                }
                Wake::Command(Some(cmd)) => {
                    self.on_command(cmd);
                    Ok(())
                }
                Wake::Delivered => {
                    if let Some((_, batch, _)) = self.delivering.take() {
                        self.on_handed(&batch);
                    }
                    Ok(())
                }
                Wake::Read(Ok(0)) => return AttemptEnd::Failed(self.session.handle_eof().into()),
                Wake::Read(Ok(n)) => {
                    link.rbuf
                        .extend_from_slice(link.scratch.get(..n).unwrap_or_default());
                    let handled = self.session.handle_input(&mut link.rbuf, now);
                    if n < pgcdc_core::replication::COALESCE_READ_BYTES {
                        link.read_paused_until = self.session.read_pause().map(|d| now + d);
                    }
                    handled
                }
                Wake::ReadPauseOver => {
                    link.read_paused_until = None;
                    Ok(())
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
                Wake::Timer => self.session.handle_timeout(now),
            };
            if let Err(e) = result {
                return AttemptEnd::Failed(e.into());
            }
        }
    }

    /// Waits for the next thing to do.
    async fn wait(&mut self, link: &mut Link<R::Tcp>) -> Wake {
        let would_read =
            self.outbox.is_empty() && self.delivering.is_none() && !self.session.has_backlog();
        let now = self.rt.now();
        let paused = link.read_paused_until.filter(|t| *t > now);
        let reading = would_read && paused.is_none();
        let mut pause = paused
            .filter(|_| would_read)
            .map(|t| self.rt.sleep(t.saturating_duration_since(now)));
        let mut sleep = self
            .session
            .poll_timeout()
            .map(|d| self.rt.sleep(d.saturating_duration_since(now)));
        let commands = &mut self.commands;
        let delivering = &mut self.delivering;
        let io = &mut link.io;
        let scratch = &mut link.scratch;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(cmd) = commands.as_mut().poll_next(cx) {
                return Poll::Ready(Wake::Command(cmd));
            }
            if let Some((fut, _, _)) = delivering.as_mut()
                && fut.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Wake::Delivered);
            }
            if reading && let Poll::Ready(r) = Pin::new(&mut *io).poll_read(cx, scratch) {
                return Poll::Ready(Wake::Read(r));
            }
            if let Some(s) = sleep.as_mut()
                && s.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Wake::Timer);
            }
            if let Some(p) = pause.as_mut()
                && p.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Wake::ReadPauseOver);
            }
            Poll::Pending
        })
        .await
    }

    /// Offers the oldest waiting batch to the dispatcher, when none is on offer.
    fn start_delivery(&mut self) {
        if self.delivering.is_some() {
            return;
        }
        if let Some(batch) = self.outbox.pop_front() {
            // From here a subscriber may hold the batch and acknowledge it.
            if let Some(lsn) = batch.ack_lsn() {
                self.handed_lsn = self.handed_lsn.max(lsn);
            }
            let taken = Arc::new(AtomicBool::new(false));
            let fut = self
                .shared
                .dispatcher
                .deliver(&self.rt, batch.clone(), Arc::clone(&taken));
            self.delivering = Some((fut, batch, taken));
        }
    }

    /// Every subscriber queue took `batch`: it is delivered.
    fn on_handed(&mut self, batch: &ChangeBatch) {
        if let Err(e) = self.session.handed() {
            tracing::error!(error = %e, "delivery accounting out of step");
        }
        let ack = batch.ack_lsn();
        if let Some(lsn) = ack {
            self.delivered_lsn = self.delivered_lsn.max(lsn);
            self.shared.dispatcher.note_handed(lsn);
            if self.cfg.ack_mode == AckMode::OnDelivery {
                self.session.ack(lsn);
            }
        }
        let delivered = self.delivered_lsn;
        let at = self.rt.wall_clock();
        let committed = (batch.commit_time_ns > 0)
            .then(|| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(batch.commit_time_ns));
        self.shared.update(|s| {
            s.last_delivered_lsn = delivered;
            s.last_change_at = Some(at);
            if committed.is_some() {
                s.last_commit_time = committed;
            }
        });
        // The counts are the session's.
        publish_stats(&self.shared, &self.session);
    }

    /// An acknowledgement (or a subscriber leaving).
    fn on_command(&mut self, cmd: Command) {
        let confirmed = match cmd {
            Command::Ack { subscriber, lsn } => {
                // Never past what a subscriber could have received.
                self.shared
                    .dispatcher
                    .ack(subscriber, lsn.min(self.handed_lsn))
            }
            Command::Recompute => self.shared.dispatcher.acked(),
            Command::Stop => None,
        };
        if let Some(lsn) = confirmed {
            self.session.ack(lsn);
        }
    }

    async fn on_session_event(&mut self, ev: SessionEvent, link: &mut Link<R::Tcp>) -> Flow {
        match ev {
            SessionEvent::Transaction(batch) => {
                self.outbox
                    .push_back(ChangeBatch::new(batch, self.acker.clone()));
            }
            SessionEvent::Message(msg) => {
                self.outbox
                    .push_back(ChangeBatch::from_message(msg, self.acker.clone()));
            }
            SessionEvent::StreamingStarted {
                requested_lsn,
                slot_confirmed_lsn,
                proto_version,
            } => {
                let slot_confirmed =
                    slot_confirmed_lsn.map_or_else(|| "-".to_owned(), |l| l.to_string());
                tracing::info!(%requested_lsn, %slot_confirmed, proto_version, "streaming started");
                self.reconnector.on_streaming();
                self.capture_fixed = true;
                self.shared.update(|s| s.state = SourceState::Running);
                if let Some(tx) = self.started.take() {
                    let _ = tx.try_send(Ok(()));
                }
            }
            SessionEvent::ResumeGap {
                requested,
                server_start,
            } => {
                tracing::warn!(%requested, %server_start, "the slot's confirmed position is past the requested start: changes in between will not arrive");
                self.shared
                    .update(|s| s.resume_gap = Some((requested, server_start)));
            }
            SessionEvent::PositionReset {
                previous,
                slot_position,
                reason,
            } => {
                let slot = slot_position.map_or_else(|| "-".to_owned(), |l| l.to_string());
                tracing::warn!(%previous, slot_position = %slot, "{reason}: streaming restarts from the slot's position; changes after it may arrive again");
                self.shared.update(|s| {
                    s.last_error = Some(format!(
                        "{reason}: restarted from the slot's position {slot} (was {previous})"
                    ));
                });
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
                temporary,
                ..
            } => {
                tracing::info!(slot = %slot_name, %consistent_point, temporary, "replication slot created");
                if !temporary {
                    self.capture_fixed = true;
                }
            }
            SessionEvent::SnapshotHeld {
                snapshot_name,
                consistent_point,
            } => {
                if let Flow::End(end) = self.bootstrap(link, snapshot_name, consistent_point).await
                {
                    return Flow::End(end);
                }
                if let Err(e) = self.session.release_snapshot(self.rt.now()) {
                    return Flow::End(AttemptEnd::Failed(e.into()));
                }
            }
            SessionEvent::SnapshotSkipped { slot_confirmed_lsn } => {
                let slot_confirmed =
                    slot_confirmed_lsn.map_or_else(|| "-".to_owned(), |l| l.to_string());
                tracing::info!(%slot_confirmed, "the slot exists: no bootstrap, streaming resumes from it");
                if let Some(provider) = self.cfg.bootstrap.as_deref() {
                    let name = provider.name().to_owned();
                    self.shared.update(|s| {
                        s.bootstrap = Some(BootstrapProgress {
                            provider: name,
                            stage: BootstrapStage::Skipped,
                            tables: Vec::new(),
                            rows: 0,
                        });
                    });
                }
            }
            SessionEvent::Warning(w) => tracing::warn!("{w}"),
            SessionEvent::Notice(n) => tracing::info!(notice = %n, "server notice"),
            SessionEvent::Stopped => {
                let _ = write_out(&mut self.session, &mut link.io, &mut link.wbuf).await;
                let _ = link.io.close().await;
                return Flow::End(AttemptEnd::Stopped);
            }
            _ => {}
        }
        Flow::Continue
    }

    /// Runs the bootstrap provider inside the held snapshot. A failure drops the slot, so
    /// the next start takes a new snapshot.
    async fn bootstrap(
        &mut self,
        link: &mut Link<R::Tcp>,
        snapshot_name: String,
        consistent_point: Lsn,
    ) -> Flow {
        let Some(provider) = self.cfg.bootstrap.clone() else {
            return Flow::Continue;
        };
        self.shared.update(|s| s.state = SourceState::Bootstrapping);
        tracing::info!(provider = provider.name(), %snapshot_name, %consistent_point, "bootstrap: starting");
        let ctx = BootstrapContext {
            rt: self.rt.clone(),
            source_id: self.cfg.source_id.clone(),
            config: self.cfg.config.clone(),
            connect: self.cfg.connect.clone(),
            pipeline: self.cfg.pipeline.clone(),
            snapshot_name,
            consistent_point,
            shared: Arc::clone(&self.shared),
            acker: self.acker.clone(),
        };
        let outcome = self
            .unless_stopped(bootstrap::run_provider(provider.as_ref(), &ctx))
            .await
            .unwrap_or(Err(BootstrapError::Stopped("stopped during the bootstrap")));
        let outcome = match outcome {
            Ok(()) => {
                // Every row is in the subscriber queues and the temporary slot holds the
                // stream's start: start() may return (the application may read only after
                // it does). Losing the connection now bootstraps again on the next attempt.
                self.capture_fixed = true;
                if let Some(tx) = self.started.take() {
                    let _ = tx.try_send(Ok(()));
                }
                // The permanent slot is created only once the subscribers took every row:
                // a process that dies before that bootstraps again on its next start.
                self.wait_drained().await
            }
            Err(e) => Err(e),
        };
        if let Err(mut failure) = outcome {
            // Streaming after a partial copy would lose rows: the slot must go, so the next
            // start takes a new snapshot. A temporary bootstrap slot ends with its
            // connection; a permanent one is dropped.
            let slot = self
                .session
                .bootstrap_slot()
                .unwrap_or(&self.cfg.replication.slot_name)
                .to_owned();
            let _ = link.io.close().await;
            if let Err(drop_error) = bootstrap::drop_slot(&self.rt, &self.cfg.connect, &slot).await
            {
                failure = BootstrapError::SlotNotDropped {
                    cause: Box::new(failure),
                    drop_error,
                };
            }
            return Flow::End(AttemptEnd::Failed(AttemptError::Bootstrap(failure)));
        }
        self.shared.update(|s| s.state = SourceState::Starting);
        Flow::Continue
    }

    /// Waits until the subscribers took every bootstrap row (a stop request ends the wait
    /// with an error).
    async fn wait_drained(&mut self) -> Result<(), BootstrapError> {
        while !self.shared.dispatcher.drained() {
            let sleep = self.rt.sleep(DRAIN_POLL);
            if self.unless_stopped(sleep).await.is_none() {
                return Err(BootstrapError::Stopped(
                    "stopped before the subscribers took the bootstrap's rows",
                ));
            }
        }
        Ok(())
    }
}

/// What woke the attempt's loop.
enum Wake {
    Command(Option<Command>),
    Delivered,
    Read(std::io::Result<usize>),
    Timer,
    /// The pause between reads of a backlog is over.
    ReadPauseOver,
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
        // Counted once, by the session; bootstrap rows come on top.
        s.changes = st.changes + s.bootstrap.as_ref().map_or(0, |b| b.rows);
        s.transactions = st.transactions;
        s.subscribers = shared.dispatcher.subscribers();
        s.queued_bytes = shared.dispatcher.queued_bytes();
        let pipeline = session.pipeline();
        s.held_bytes = pipeline.held_bytes();
        s.peak_held_bytes = s.peak_held_bytes.max(pipeline.peak_held_bytes());
        s.spilled_bytes = pipeline.stats().spilled_bytes;
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

/// A 128-bit random value from the runtime, for generated element ids.
pub(crate) fn random_u128<R: Runtime>(rt: &R) -> u128 {
    (u128::from(rt.random()) << 64) | u128::from(rt.random())
}
