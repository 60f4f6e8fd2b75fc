//! The state the source's handles and its task share: the status and the dispatcher.

use std::sync::{Arc, Mutex, PoisonError};

use super::dispatch::Dispatcher;
use super::metrics::SourceMetrics;
use super::status::SourceStatus;

/// State shared between the handle and the task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) status: Mutex<SourceStatus>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The status's figures, for the application's metrics recorder.
    pub(crate) metrics: SourceMetrics,
}

impl Shared {
    pub(crate) fn update(&self, f: impl FnOnce(&mut SourceStatus)) {
        let mut st = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut st);
        self.metrics.publish(&st);
    }
}
