//! The state the source's handles and its task share: the status and the dispatcher.

use std::sync::{Arc, Mutex, PoisonError};

use super::dispatch::Dispatcher;
use super::status::SourceStatus;

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
