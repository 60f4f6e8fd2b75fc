//! The replication source: the public API shared by every runtime crate.
//!
//! A [`Source`] streams the changes of a PostgreSQL database to subscribers. It is generic over
//! the [`Runtime`]; `pgcdc-tokio` and `pgcdc-async-std` name it `PostgresReplicationSource`
//! with their runtime filled in. Everything here — configuration, validation, the run loop,
//! dispatch, acknowledgement, status — is shared; a runtime supplies only TCP connect, sleep
//! and spawn.

mod batch;
pub mod bootstrap;
mod builder;
mod command;
mod dispatch;
pub mod metrics;
mod monitor;
mod run;
mod shared;
mod spill;
mod status;

use std::sync::{Arc, Mutex, PoisonError};

use pgcdc_core::Lsn;
use pgcdc_core::source_config::PostgresSourceConfig;

pub use batch::ChangeBatch;
pub use bootstrap::{
    BootstrapContext, BootstrapProgress, BootstrapProvider, BootstrapStage, JsonlBootstrap,
    PostgresBootstrap, TableProgress,
};
pub use builder::SourceBuilder;
pub use command::AckHandle;
pub use dispatch::Subscription;
pub use status::{SourceState, SourceStatus};

use command::Command;
use dispatch::Dispatcher;
use shared::Shared;

use crate::error::{Error, StartCause, StartError};
use crate::runtime::Runtime;

/// A PostgreSQL logical-replication source on runtime `R`.
///
/// Cloning gives another handle to the same source.
///
/// * [`subscribe`](Self::subscribe) returns a stream of [`ChangeBatch`]es in commit order;
/// * [`start`](Self::start) connects, checks the configuration against the server (wal_level,
///   publication, tables, slot) and returns once the slot's position is fixed — or with the
///   error that prevents it; transient failures are retried (5 s, with backoff and jitter,
///   inside `start` until its timeout, then in the background forever by default);
/// * [`stop`](Self::stop) ends streaming cleanly (final status update, CopyDone, Terminate)
///   and ends every subscription;
/// * [`status`](Self::status) reports the state, the LSNs and the counters.
pub struct Source<R: Runtime> {
    inner: Arc<Inner<R>>,
}

impl<R: Runtime> Clone for Source<R> {
    fn clone(&self) -> Self {
        Source {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Source<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.inner.id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner<R: Runtime> {
    id: String,
    config: PostgresSourceConfig,
    rt: R,
    shared: Arc<Shared>,
    commands: (
        async_channel::Sender<Command>,
        async_channel::Receiver<Command>,
    ),
    /// Completes (closes) when the running task ends; `None` when not started.
    running: Mutex<Option<async_channel::Receiver<()>>>,
    /// Serialises start/stop.
    lifecycle: async_lock::Mutex<()>,
    /// The bootstrap provider, if any (from the configuration or the builder).
    bootstrap: Option<Arc<dyn BootstrapProvider<R>>>,
    /// Drop and recreate an existing slot to bootstrap again.
    force_bootstrap: bool,
}

impl<R: Runtime> Drop for Inner<R> {
    fn drop(&mut self) {
        // The last handle is gone: stop the task (it closes the connection cleanly).
        let _ = self.commands.0.try_send(Command::Stop);
    }
}

impl<R: Runtime + Default> Source<R> {
    /// A builder for a source named `id`, with drasi-source-postgres's defaults.
    pub fn builder(id: impl Into<String>) -> SourceBuilder<R> {
        SourceBuilder::new(id, R::default())
    }

    /// A source named `id` from a complete configuration (validated here).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the invalid field and how to fix it.
    pub fn new(id: impl Into<String>, config: PostgresSourceConfig) -> Result<Self, Error> {
        Self::with_runtime(id, config, R::default())
    }
}

impl<R: Runtime> Source<R> {
    /// A source on an explicit runtime handle.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the invalid field and how to fix it.
    pub fn with_runtime(
        id: impl Into<String>,
        config: PostgresSourceConfig,
        rt: R,
    ) -> Result<Self, Error> {
        let provider = builder::provider_from_config::<R>(&config);
        Self::assemble(id.into(), config, rt, provider, false)
    }

    pub(crate) fn assemble(
        id: String,
        config: PostgresSourceConfig,
        rt: R,
        bootstrap: Option<Arc<dyn BootstrapProvider<R>>>,
        force_bootstrap: bool,
    ) -> Result<Self, Error> {
        if id.is_empty() {
            return Err(Error::Config(
                "invalid config field `id`: the source id is empty; give the source a name".into(),
            ));
        }
        config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        let dispatcher = Arc::new(Dispatcher::new(
            config.dispatch_mode,
            config.dispatch_buffer_capacity,
            config.dispatch_buffer_bytes,
        ));
        let shared = Arc::new(Shared {
            status: Mutex::new(SourceStatus::default()),
            dispatcher,
            metrics: metrics::SourceMetrics::new(&id),
        });
        Ok(Source {
            inner: Arc::new(Inner {
                id,
                config,
                rt,
                shared,
                commands: async_channel::unbounded(),
                running: Mutex::new(None),
                lifecycle: async_lock::Mutex::new(()),
                bootstrap,
                force_bootstrap,
            }),
        })
    }

    /// The source's id (the `source_id` of every element reference).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The validated configuration.
    pub fn config(&self) -> &PostgresSourceConfig {
        &self.inner.config
    }

    /// Subscribes to the changes delivered from now on. With `auto_start`, the first
    /// subscription starts the source in the background (watch [`status`](Self::status) for
    /// failures).
    ///
    /// With no subscriber, delivery waits: a change is never handed to no one.
    pub fn subscribe(&self) -> Subscription {
        let sub = self.inner.shared.dispatcher.subscribe(&self.ack_handle());
        if self.inner.config.auto_start && !self.is_running() {
            let this = self.clone();
            self.inner.rt.spawn(Box::pin(async move {
                if let Err(e) = this.start().await {
                    tracing::error!(error = %e, "auto-start failed");
                }
            }));
        }
        sub
    }

    /// A handle to acknowledge transactions ([`AckMode::Manual`](pgcdc_core::source_config::AckMode::Manual)).
    pub fn ack_handle(&self) -> AckHandle {
        AckHandle::new(self.inner.commands.0.clone())
    }

    /// Acknowledges everything up to the transaction ending at `lsn`.
    pub fn ack(&self, lsn: Lsn) {
        self.ack_handle().ack(lsn);
    }

    /// The state and counters.
    pub fn status(&self) -> SourceStatus {
        let mut status = self
            .inner
            .shared
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        status.queued_bytes = self.inner.shared.dispatcher.queued_bytes();
        status
    }

    /// Whether the background task is running (streaming, starting or reconnecting).
    pub fn is_running(&self) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|done| !done.is_closed())
    }

    /// Starts streaming. Returns `Ok` only once the capture point is fixed — the slot exists
    /// (created or found) and its position is known — so every change committed after it
    /// returns is delivered or still in the slot, whatever fails next. Without a bootstrap
    /// that is when the server streams; with one, when every bootstrap row is in the
    /// subscriber queues (consume the subscription while it runs).
    ///
    /// Transient failures before that (the server starting up, a refused connection, the
    /// slot still in use by a previous walsender) are retried here, with the reconnect
    /// policy's delays, until `start_timeout_ms` ([`SourceBuilder::with_start_timeout`],
    /// default 60 s) passes; fatal ones (a wrong password, wal_level not logical, a missing
    /// publication …) end it at once. Failures after it are retried in the background.
    /// Starting a running source does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Start`] with the fatal error's message, or the last transient one when the
    /// start timeout passed.
    pub async fn start(&self) -> Result<(), Error> {
        let _guard = self.inner.lifecycle.lock().await;
        if self.is_running() {
            return Ok(());
        }
        // Acks left over from an earlier run refer to batches that run delivered; the new
        // run resumes from the slot, so they carry no information.
        while self.inner.commands.1.try_recv().is_ok() {}
        let mut cfg = builder::run_config(&self.inner.id, &self.inner.config)?;
        cfg.bootstrap = self.inner.bootstrap.clone();
        cfg.config = self.inner.config.clone();
        cfg.replication.export_snapshot = cfg.bootstrap.is_some();
        cfg.replication.snapshot_existing_slot = self.inner.force_bootstrap;
        let (started_tx, started_rx) = async_channel::bounded(1);
        let (done_tx, done_rx) = async_channel::bounded::<()>(1);
        *self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(done_rx);
        self.inner.shared.update(|s| {
            *s = SourceStatus {
                subscribers: s.subscribers,
                ..SourceStatus::default()
            };
            s.state = SourceState::Starting;
        });
        let task = run::run(
            self.inner.rt.clone(),
            cfg,
            Arc::clone(&self.inner.shared),
            self.inner.commands.1.clone(),
            self.ack_handle(),
            started_tx,
        );
        self.inner.rt.spawn(Box::pin(async move {
            task.await;
            drop(done_tx);
        }));
        let result = match started_rx.recv().await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => Err(Error::Start(Box::new(error))),
            Err(_) => Err(Error::Start(Box::new(StartError::new(
                "the replication task ended before streaming began".into(),
                StartCause::Ended,
                false,
            )))),
        };
        // The task is ending: wait for it, so the source is not running when this returns.
        self.wait_for_task(false).await;
        result
    }

    /// Stops streaming cleanly: a final status update with the acknowledged position,
    /// CopyDone, Terminate. Undelivered and unacknowledged changes are sent again by the
    /// server on the next start. Every subscription ends. Stopping a stopped source does
    /// nothing.
    ///
    /// # Errors
    ///
    /// None today; the signature leaves room for reporting an unclean close.
    pub async fn stop(&self) -> Result<(), Error> {
        let _guard = self.inner.lifecycle.lock().await;
        self.wait_for_task(true).await;
        Ok(())
    }

    /// Waits for the background task to end (asking it to stop first when `stop`).
    async fn wait_for_task(&self, stop: bool) {
        let done = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(done) = done {
            if stop {
                let _ = self.inner.commands.0.try_send(Command::Stop);
            }
            // Closed when the task ends.
            let _ = done.recv().await;
        }
    }
}
