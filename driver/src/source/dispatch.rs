//! Delivery of change batches to subscribers: one bounded queue per subscriber
//! ([`DispatchMode::Channel`]) or one shared bounded ring read by every subscriber
//! ([`DispatchMode::Broadcast`]). Neither mode drops a batch: a full queue makes delivery wait,
//! and the wait reaches the socket (the run loop stops reading while a batch is undelivered).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use pgcdc_core::source_config::DispatchMode;

use super::batch::ChangeBatch;
use crate::runtime::{BoxFuture, Runtime};

/// How long delivery waits before looking again for a subscriber when there is none.
const NO_SUBSCRIBER_POLL: Duration = Duration::from_millis(20);

/// The subscriber side: a stream of change batches, in commit order.
///
/// The stream ends when the source stops or fails. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    inner: SubscriptionInner,
}

#[derive(Debug)]
enum SubscriptionInner {
    Channel(Pin<Box<async_channel::Receiver<ChangeBatch>>>),
    Broadcast(Pin<Box<async_broadcast::Receiver<ChangeBatch>>>),
}

impl Stream for Subscription {
    type Item = ChangeBatch;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChangeBatch>> {
        match &mut self.get_mut().inner {
            SubscriptionInner::Channel(rx) => rx.as_mut().poll_next(cx),
            SubscriptionInner::Broadcast(rx) => rx.as_mut().poll_next(cx),
        }
    }
}

impl Subscription {
    /// Waits for the next batch; `None` once the source has stopped.
    pub async fn recv(&mut self) -> Option<ChangeBatch> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

/// The publisher side, shared by the source handle (which subscribes) and the run loop
/// (which delivers).
#[derive(Debug)]
pub(crate) struct Dispatcher {
    mode: DispatchMode,
    capacity: usize,
    state: Mutex<DispatchState>,
}

#[derive(Debug, Default)]
struct DispatchState {
    channels: Vec<async_channel::Sender<ChangeBatch>>,
    broadcast: Option<(
        async_broadcast::Sender<ChangeBatch>,
        async_broadcast::InactiveReceiver<ChangeBatch>,
    )>,
}

impl Dispatcher {
    pub(crate) fn new(mode: DispatchMode, capacity: usize) -> Self {
        Dispatcher {
            mode,
            capacity: capacity.max(1),
            state: Mutex::new(DispatchState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DispatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscriber. It sees the batches delivered from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let mut st = self.lock();
        let inner = match self.mode {
            DispatchMode::Broadcast => {
                let (tx, inactive) = st.broadcast.get_or_insert_with(|| {
                    let (mut tx, rx) = async_broadcast::broadcast(self.capacity);
                    tx.set_overflow(false);
                    tx.set_await_active(true);
                    (tx, rx.deactivate())
                });
                let _ = inactive;
                SubscriptionInner::Broadcast(Box::pin(tx.new_receiver()))
            }
            _ => {
                let (tx, rx) = async_channel::bounded(self.capacity);
                st.channels.push(tx);
                SubscriptionInner::Channel(Box::pin(rx))
            }
        };
        Subscription { inner }
    }

    /// Number of live subscribers.
    pub(crate) fn subscribers(&self) -> usize {
        let st = self.lock();
        match &st.broadcast {
            Some((tx, _)) => tx.receiver_count(),
            None => st.channels.iter().filter(|c| !c.is_closed()).count(),
        }
    }

    /// Ends every subscription: their streams return `None` once drained.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        for c in st.channels.drain(..) {
            c.close();
        }
        if let Some((tx, _)) = st.broadcast.take() {
            tx.close();
        }
    }

    /// A future that delivers `batch` to every current subscriber, waiting while a queue is
    /// full, and — when nobody is subscribed — until someone subscribes (a batch is never
    /// delivered to no one).
    pub(crate) fn deliver<R: Runtime>(
        self: &Arc<Self>,
        rt: &R,
        batch: ChangeBatch,
    ) -> BoxFuture<'static, ()> {
        let this = Arc::clone(self);
        let rt = rt.clone();
        Box::pin(async move {
            loop {
                let (channels, broadcast) = {
                    let mut st = this.lock();
                    st.channels.retain(|c| !c.is_closed());
                    (
                        st.channels.clone(),
                        st.broadcast.as_ref().map(|(tx, _)| tx.clone()),
                    )
                };
                if let Some(tx) = broadcast {
                    if tx.receiver_count() > 0 && tx.broadcast_direct(batch.clone()).await.is_ok() {
                        return;
                    }
                } else {
                    let mut delivered = false;
                    for c in channels {
                        if c.send(batch.clone()).await.is_ok() {
                            delivered = true;
                        }
                    }
                    if delivered {
                        return;
                    }
                }
                rt.sleep(NO_SUBSCRIBER_POLL).await;
            }
        })
    }
}
