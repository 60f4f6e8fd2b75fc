//! The subscribers (queries) of a source: which changes each receives, in which order, and
//! when.
//!
//! Every change gets one sequence number (strictly rising) and one position, and goes to the
//! subscribers whose labels it carries. A subscriber whose bootstrap runs holds its changes
//! back; when the bootstrap ends, the changes at or below its boundary are dropped and the
//! rest follow, in order, before anything newer. A subscriber that starts after a position
//! (a boundary, a resume point) receives only changes past it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use drasi_core::models::SourceChange;
use drasi_lib::channels::{
    ChangeDispatcher, ChannelChangeDispatcher, SourceEvent, SourceEventWrapper,
};
use tokio::sync::Notify;

use crate::mapping::change_label;

type Event = Arc<SourceEventWrapper>;
pub(crate) type Dispatcher = Arc<ChannelChangeDispatcher<SourceEventWrapper>>;

#[derive(Default)]
pub(crate) struct Fanout {
    state: Mutex<State>,
    /// Woken when a subscriber's held changes became sendable.
    pub(crate) wake: Notify,
}

struct State {
    next_id: u64,
    next_sequence: u64,
    last_timestamp: chrono::DateTime<chrono::Utc>,
    /// The position of the last change distributed.
    last_position: Option<Bytes>,
    subs: Vec<Sub>,
}

impl Default for State {
    fn default() -> Self {
        State {
            next_id: 0,
            next_sequence: 1,
            last_timestamp: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            last_position: None,
            subs: Vec::new(),
        }
    }
}

struct Sub {
    id: u64,
    query_id: String,
    /// The labels asked for; empty: all.
    labels: HashSet<String>,
    tx: Dispatcher,
    gate: Gate,
    outbox: Vec<Event>,
}

enum Gate {
    /// The bootstrap runs: changes wait here.
    Holding(Vec<Event>),
    /// Changes past `after` (all when `None`) go out.
    Open { after: Option<Bytes> },
}

/// Whether `event` is past `after`; once one is, every later one is too (positions rise).
fn passes(after: &mut Option<Bytes>, event: &SourceEventWrapper) -> bool {
    match (after.as_ref(), event.source_position.as_ref()) {
        (None, _) => true,
        (Some(a), Some(p)) if p.as_ref() > a.as_ref() => {
            *after = None;
            true
        }
        (Some(_), _) => false,
    }
}

/// One subscriber's sendable changes.
pub(crate) struct Outgoing {
    pub(crate) id: u64,
    pub(crate) query_id: String,
    pub(crate) tx: Dispatcher,
    pub(crate) events: Vec<Event>,
}

impl Fanout {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a subscriber. From the moment this returns it is given every change
    /// distributed afterwards (held while `holding`, else past `after`).
    pub(crate) fn add(
        &self,
        query_id: &str,
        labels: HashSet<String>,
        tx: Dispatcher,
        holding: bool,
        after: Option<Bytes>,
    ) -> u64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        let gate = if holding {
            Gate::Holding(Vec::new())
        } else {
            Gate::Open { after }
        };
        s.subs.push(Sub {
            id,
            query_id: query_id.to_owned(),
            labels,
            tx,
            gate,
            outbox: Vec::new(),
        });
        id
    }

    /// Ends a subscriber's hold: the held changes past `boundary` become sendable, and so
    /// does everything later past it.
    pub(crate) fn release(&self, id: u64, boundary: Option<Bytes>) {
        let mut s = self.lock();
        if let Some(sub) = s.subs.iter_mut().find(|s| s.id == id) {
            let mut after = boundary;
            if let Gate::Holding(held) =
                std::mem::replace(&mut sub.gate, Gate::Open { after: None })
            {
                let before = held.len();
                sub.outbox
                    .extend(held.into_iter().filter(|e| passes(&mut after, e)));
                tracing::debug!(query = %sub.query_id, held = before, sent = sub.outbox.len(), "bootstrap boundary applied");
            }
            sub.gate = Gate::Open { after };
        }
        drop(s);
        self.wake.notify_one();
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().subs.retain(|s| s.id != id);
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.lock().subs.len()
    }

    /// The position of the last change distributed.
    pub(crate) fn last_position(&self) -> Option<Bytes> {
        self.lock().last_position.clone()
    }

    /// Numbers `changes` (each with its position) and hands them to the subscribers.
    pub(crate) fn distribute(&self, source_id: &str, changes: Vec<(SourceChange, Bytes)>) {
        if changes.is_empty() {
            return;
        }
        let mut s = self.lock();
        for (change, pos) in changes {
            let sequence = s.next_sequence;
            s.next_sequence += 1;
            // Timestamps order the merge of several sources: never backwards.
            let ts = chrono::Utc::now().max(s.last_timestamp);
            s.last_timestamp = ts;
            let label = change_label(&change).map(str::to_owned);
            let mut wrapper = SourceEventWrapper::new(
                source_id.to_owned(),
                SourceEvent::Change(change),
                ts,
                sequence,
            );
            wrapper.set_source_position(pos.clone());
            let event = Arc::new(wrapper);
            for sub in &mut s.subs {
                let wanted =
                    sub.labels.is_empty() || label.as_ref().is_some_and(|l| sub.labels.contains(l));
                if !wanted {
                    continue;
                }
                match &mut sub.gate {
                    Gate::Holding(held) => held.push(Arc::clone(&event)),
                    Gate::Open { after } => {
                        if passes(after, &event) {
                            sub.outbox.push(Arc::clone(&event));
                        }
                    }
                }
            }
            s.last_position = Some(pos);
        }
    }

    /// Takes every subscriber's sendable changes.
    pub(crate) fn take(&self) -> Vec<Outgoing> {
        let mut s = self.lock();
        s.subs
            .iter_mut()
            .filter(|sub| !sub.outbox.is_empty())
            .map(|sub| Outgoing {
                id: sub.id,
                query_id: sub.query_id.clone(),
                tx: Arc::clone(&sub.tx),
                events: std::mem::take(&mut sub.outbox),
            })
            .collect()
    }

    /// Sends what is sendable; a subscriber whose receiver is gone is removed.
    pub(crate) async fn flush(&self) {
        for out in self.take() {
            for event in out.events {
                if out.tx.dispatch_change(event).await.is_err() {
                    tracing::info!(query = %out.query_id, "a query stopped receiving: unsubscribed");
                    self.remove(out.id);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::position;
    use drasi_core::models::{ElementMetadata, ElementReference};

    fn delete(label: &str, id: &str) -> SourceChange {
        SourceChange::Delete {
            metadata: ElementMetadata {
                reference: ElementReference::new("s", id),
                labels: Arc::from(vec![Arc::from(label)]),
                effective_from: 0,
            },
        }
    }

    fn sub(f: &Fanout, labels: &[&str], holding: bool, after: Option<Bytes>) -> u64 {
        f.add(
            "q",
            labels.iter().map(|l| (*l).to_owned()).collect(),
            Arc::new(ChannelChangeDispatcher::new(16)),
            holding,
            after,
        )
    }

    fn sent(f: &Fanout, id: u64) -> Vec<(u64, u64)> {
        f.take()
            .into_iter()
            .filter(|o| o.id == id)
            .flat_map(|o| o.events)
            .map(|e| {
                let p = e.source_position.clone().unwrap();
                (crate::mapping::position_lsn(&p).unwrap(), e.sequence)
            })
            .collect()
    }

    #[test]
    fn held_changes_follow_the_boundary() {
        let f = Fanout::default();
        let open = sub(&f, &[], false, None);
        let held = sub(&f, &["users"], true, None);
        f.distribute("s", vec![(delete("users", "users:1"), position(10, 0))]);
        f.distribute("s", vec![(delete("orders", "orders:1"), position(11, 0))]);
        f.distribute(
            "s",
            vec![
                (delete("users", "users:2"), position(20, 0)),
                (delete("users", "users:3"), position(20, 1)),
            ],
        );
        assert_eq!(sent(&f, open), vec![(10, 1), (11, 2), (20, 3), (20, 4)]);
        assert!(sent(&f, held).is_empty());
        // The snapshot was exported at 20: the transaction at 10 is in it, 20 is not.
        f.release(held, Some(crate::mapping::snapshot_boundary(20)));
        assert_eq!(sent(&f, held), vec![(20, 3), (20, 4)]);
        f.distribute("s", vec![(delete("users", "users:4"), position(30, 0))]);
        assert_eq!(sent(&f, held), vec![(30, 5)]);
    }

    #[test]
    fn a_boundary_ahead_of_the_stream_filters_later_changes_too() {
        let f = Fanout::default();
        let held = sub(&f, &[], true, None);
        f.release(held, Some(crate::mapping::snapshot_boundary(50)));
        f.distribute("s", vec![(delete("users", "users:1"), position(40, 0))]);
        assert!(sent(&f, held).is_empty());
        f.distribute("s", vec![(delete("users", "users:1"), position(50, 0))]);
        assert_eq!(sent(&f, held), vec![(50, 2)]);
    }

    #[test]
    fn resume_after_a_position() {
        let f = Fanout::default();
        let s = sub(&f, &[], false, Some(position(10, 1)));
        f.distribute(
            "s",
            vec![
                (delete("users", "a"), position(10, 0)),
                (delete("users", "b"), position(10, 1)),
                (delete("users", "c"), position(10, 2)),
            ],
        );
        assert_eq!(sent(&f, s), vec![(10, 3)]);
    }
}
