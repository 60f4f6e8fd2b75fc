//! Delivery of change batches to subscribers: one bounded queue per subscriber
//! ([`DispatchMode::Channel`]) or one shared bounded ring read by every subscriber
//! ([`DispatchMode::Broadcast`]). Neither mode drops a batch: a full queue makes delivery wait,
//! and the wait reaches the socket (the run loop stops reading while a batch is undelivered).
//!
//! Each subscription acknowledges for itself: the dispatcher keeps what every live
//! subscriber acknowledged, and the source confirms to PostgreSQL only the minimum, so a fast
//! subscriber cannot free WAL a slow one has not processed. A subscriber that joins later
//! starts at what was handed over before it (it never sees those batches); one that is
//! dropped no longer holds the flush back.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use pgcdc_core::source_config::DispatchMode;

use pgcdc_core::Lsn;

use super::batch::ChangeBatch;
use super::command::AckHandle;
use crate::runtime::{BoxFuture, Runtime};

/// How often a delivery held back by the byte budget looks again.
const BYTE_BUDGET_POLL: Duration = Duration::from_millis(2);

/// How long delivery waits before looking again for a subscriber when there is none.
const NO_SUBSCRIBER_POLL: Duration = Duration::from_millis(20);

/// The subscriber side: a stream of change batches, in commit order.
///
/// The stream ends when the source stops or fails. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    inner: SubscriptionInner,
    id: u64,
    /// Acknowledges for this subscriber; given to every batch it receives.
    acker: AckHandle,
    dispatcher: std::sync::Weak<Dispatcher>,
    /// The bytes queued for this subscriber and not received yet.
    queued: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(d) = self.dispatcher.upgrade() {
            let mut st = d.lock();
            st.acks.remove(&self.id);
            st.queued.remove(&self.id);
        }
        // The minimum over the others may have risen.
        self.acker.recompute();
    }
}

#[derive(Debug)]
enum SubscriptionInner {
    Channel(Pin<Box<async_channel::Receiver<ChangeBatch>>>),
    Broadcast(Pin<Box<async_broadcast::Receiver<ChangeBatch>>>),
}

impl Stream for Subscription {
    type Item = ChangeBatch;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChangeBatch>> {
        let this = self.get_mut();
        let next = match &mut this.inner {
            SubscriptionInner::Channel(rx) => rx.as_mut().poll_next(cx),
            SubscriptionInner::Broadcast(rx) => rx.as_mut().poll_next(cx),
        };
        next.map(|b| {
            b.map(|b| {
                let n = b.approx_bytes();
                // Saturating: a batch received uncharged (see `Dispatcher::charge`).
                let _ = this
                    .queued
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                        Some(q.saturating_sub(n))
                    });
                b.with_acker(this.acker.clone())
            })
        })
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
    /// The byte budget of one subscriber's queue (`usize::MAX`: none).
    max_bytes: usize,
    state: Mutex<DispatchState>,
}

#[derive(Debug, Default)]
struct DispatchState {
    next_id: u64,
    /// What each live subscriber acknowledged.
    acks: BTreeMap<u64, Lsn>,
    /// The highest ack LSN handed over so far.
    handed: Lsn,
    /// The bytes queued for each live subscriber.
    queued: BTreeMap<u64, Arc<AtomicUsize>>,
    channels: Vec<async_channel::Sender<ChangeBatch>>,
    broadcast: Option<(
        async_broadcast::Sender<ChangeBatch>,
        async_broadcast::InactiveReceiver<ChangeBatch>,
    )>,
}

impl Dispatcher {
    pub(crate) fn new(mode: DispatchMode, capacity: usize, max_bytes: usize) -> Self {
        Dispatcher {
            mode,
            capacity: capacity.max(1),
            max_bytes: if max_bytes == 0 {
                usize::MAX
            } else {
                max_bytes
            },
            state: Mutex::new(DispatchState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DispatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscriber. It sees the batches delivered from now on; `acker` sends the
    /// source's commands.
    pub(crate) fn subscribe(self: &Arc<Self>, acker: &AckHandle) -> Subscription {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id = st.next_id.wrapping_add(1);
        let handed = st.handed;
        st.acks.insert(id, handed);
        let queued = Arc::new(AtomicUsize::new(0));
        st.queued.insert(id, Arc::clone(&queued));
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
        Subscription {
            inner,
            id,
            acker: acker.for_subscriber(id),
            dispatcher: Arc::downgrade(self),
            queued,
        }
    }

    /// Records an acknowledgement — of one subscriber, or of the application for all of
    /// them (`None`) — and returns what every live subscriber has acknowledged: the
    /// position the source may confirm. `None` when nobody has acknowledged anything yet.
    pub(crate) fn ack(&self, subscriber: Option<u64>, lsn: Lsn) -> Option<Lsn> {
        let mut st = self.lock();
        match subscriber {
            Some(id) => {
                if let Some(a) = st.acks.get_mut(&id) {
                    *a = (*a).max(lsn);
                }
            }
            None => {
                for a in st.acks.values_mut() {
                    *a = (*a).max(lsn);
                }
                if st.acks.is_empty() {
                    return Some(lsn);
                }
            }
        }
        st.acks.values().copied().min()
    }

    /// The minimum acknowledged over the live subscribers.
    pub(crate) fn acked(&self) -> Option<Lsn> {
        self.lock().acks.values().copied().min()
    }

    /// Notes that batches up to `lsn` were handed over (subscribers joining later start
    /// there).
    pub(crate) fn note_handed(&self, lsn: Lsn) {
        let mut st = self.lock();
        st.handed = st.handed.max(lsn);
    }

    /// The most bytes queued for one subscriber.
    pub(crate) fn queued_bytes(&self) -> usize {
        let st = self.lock();
        st.queued
            .values()
            .map(|q| q.load(Ordering::Acquire))
            .max()
            .unwrap_or(0)
    }

    /// Whether a batch of `bytes` fits every subscriber's byte budget now (a queue holding
    /// nothing takes any batch).
    fn has_room(&self, bytes: usize) -> bool {
        let st = self.lock();
        st.queued.values().all(|q| {
            let q = q.load(Ordering::Acquire);
            q == 0 || q.saturating_add(bytes) <= self.max_bytes
        })
    }

    /// Counts `bytes` against the queue of every live subscriber with an id below `below`
    /// (those that existed when the delivery began). A subscriber that joins meanwhile may
    /// receive the batch uncharged: its count then only errs low.
    fn charge(&self, bytes: usize, below: u64) {
        let st = self.lock();
        for (_, q) in st.queued.range(..below) {
            q.fetch_add(bytes, Ordering::AcqRel);
        }
    }

    /// Whether every subscriber has taken everything delivered to it (the queues are empty).
    pub(crate) fn drained(&self) -> bool {
        let st = self.lock();
        let channels = st.channels.iter().all(|c| c.is_closed() || c.is_empty());
        let broadcast = st.broadcast.as_ref().is_none_or(|(tx, _)| tx.is_empty());
        channels && broadcast
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
    /// delivered to no one). `taken` becomes true as soon as one queue holds the batch:
    /// from then on the delivery must complete (dropping it would leave the batch with some
    /// subscribers and not others); before, it may be dropped.
    pub(crate) fn deliver<R: Runtime>(
        self: &Arc<Self>,
        rt: &R,
        batch: ChangeBatch,
        taken: Arc<std::sync::atomic::AtomicBool>,
    ) -> BoxFuture<'static, ()> {
        let this = Arc::clone(self);
        let rt = rt.clone();
        Box::pin(async move {
            // The byte budget: wait while a subscriber's queue holds too much.
            while !this.has_room(batch.approx_bytes()) {
                rt.sleep(BYTE_BUDGET_POLL).await;
            }
            loop {
                let (channels, broadcast, below) = {
                    let mut st = this.lock();
                    st.channels.retain(|c| !c.is_closed());
                    (
                        st.channels.clone(),
                        st.broadcast.as_ref().map(|(tx, _)| tx.clone()),
                        // The subscribers that exist now are the ones this batch goes to:
                        // only they are charged for it.
                        st.next_id,
                    )
                };
                if let Some(tx) = broadcast {
                    if tx.receiver_count() > 0 {
                        this.charge(batch.approx_bytes(), below);
                        if tx.broadcast_direct(batch.clone()).await.is_ok() {
                            return;
                        }
                    }
                } else {
                    let mut delivered = false;
                    if !channels.is_empty() {
                        this.charge(batch.approx_bytes(), below);
                    }
                    for c in channels {
                        if c.send(batch.clone()).await.is_ok() {
                            delivered = true;
                            taken.store(true, std::sync::atomic::Ordering::Release);
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
