//! Delivery accounting under faults: a batch counts as delivered only once the driver reports
//! it handed over, and the resume position, the dedupe and the flush follow from that.
//!
//! The property test runs a scripted WAL through the session with hand-overs, acks,
//! keepalives, timers and disconnects at random points, and checks after every step:
//!
//! * flush sent ≤ what the application acknowledged (or, when everything is acknowledged and
//!   nothing is outstanding, the keepalive position), acknowledged ≤ handed ≤ received;
//! * the resume position never passes a batch that was emitted and not handed over;
//! * in the end every row arrived exactly once, in order.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::assemble::TransactionBatch;
use crate::model::SourceChange;

fn start_requested(queries: &[String]) -> Option<Lsn> {
    let q = queries
        .iter()
        .find(|q| q.starts_with("START_REPLICATION"))?;
    q.split(' ').nth(4)?.parse().ok()
}

/// The test's driver: emitted batches wait in `outbox` until handed over.
struct Run {
    h: Harness,
    wal: Vec<WalMessage>,
    /// The next WAL message the server sends on this connection.
    pos: usize,
    outbox: VecDeque<TransactionBatch>,
    /// Handed over: (ack LSN, row ids).
    handed: Vec<(Option<Lsn>, Vec<u32>)>,
    /// The highest end handed over.
    handed_end: Lsn,
    manual: bool,
    /// The slot's confirmed position: the highest flush the server was sent.
    confirmed: Lsn,
    /// The highest LSN the application acknowledged.
    app_acked: Lsn,
}

fn ids(batch: &TransactionBatch) -> Vec<u32> {
    batch
        .changes
        .iter()
        .filter_map(|c| match c {
            SourceChange::Insert { element, .. } => {
                let id = element.metadata().reference.element_id.as_ref();
                id.strip_prefix("users:")?.parse().ok()
            }
            _ => None,
        })
        .collect()
}

impl Run {
    fn new(manual: bool, wal: Vec<WalMessage>) -> Run {
        let mut h = Harness::with_pipeline(
            ReplicationOptions::default(),
            FakeServer::new("15.18"),
            PipelineConfig::default().with_max_batch_changes(2),
        );
        h.auto_hand = false;
        let mut run = Run {
            h,
            wal,
            pos: 0,
            outbox: VecDeque::new(),
            handed: Vec::new(),
            handed_end: Lsn::ZERO,
            manual,
            confirmed: Lsn::ZERO,
            app_acked: Lsn::ZERO,
        };
        run.connect();
        run
    }

    fn collect(&mut self) {
        for e in self.h.events() {
            if let SessionEvent::Transaction(b) = e {
                self.outbox.push_back(b);
            }
        }
        for u in self.h.status_updates() {
            self.confirmed = self.confirmed.max(u.flush);
        }
    }

    /// A new connection: the server streams from the requested start (0/0: the slot's
    /// confirmed position), skipping transactions that end at or before it.
    fn connect(&mut self) {
        self.h.session.detach();
        self.outbox.clear();
        self.h.connect().unwrap();
        let queries = self.h.queries();
        let requested = start_requested(&queries).expect("START_REPLICATION sent");
        let start = if requested == Lsn::ZERO {
            self.confirmed
        } else {
            requested
        };
        self.pos = self
            .wal
            .iter()
            .position(|m| m.txn_end > start)
            .unwrap_or(self.wal.len());
        self.collect();
    }

    /// Feeds the next message and breaks the connection before the driver polled what it
    /// emitted.
    fn feed_and_break(&mut self) {
        if let Some(m) = self.wal.get(self.pos) {
            let bytes = m.bytes.clone();
            self.h.feed(&bytes).unwrap();
        }
        self.connect();
    }

    fn feed(&mut self) {
        if let Some(m) = self.wal.get(self.pos) {
            let bytes = m.bytes.clone();
            self.pos += 1;
            self.h.feed(&bytes).unwrap();
            self.collect();
        }
    }

    fn hand_over(&mut self) {
        if let Some(b) = self.outbox.pop_front() {
            self.h.session.handed().unwrap();
            if let Some(end) = b.ack_lsn() {
                self.handed_end = self.handed_end.max(end);
                if !self.manual {
                    self.h.session.ack(end);
                    self.app_acked = self.app_acked.max(end);
                }
            }
            self.handed.push((b.ack_lsn(), ids(&b)));
            self.h.pump().unwrap();
            self.collect();
        }
    }

    /// The application acknowledges the `back`-th last handed batch that has an ack LSN.
    fn ack(&mut self, back: usize) {
        let acks: Vec<Lsn> = self.handed.iter().filter_map(|(a, _)| *a).collect();
        if let Some(&lsn) = acks.iter().rev().nth(back % acks.len().max(1)) {
            self.h.session.ack(lsn);
            self.app_acked = self.app_acked.max(lsn);
        }
    }

    fn keepalive(&mut self, reply: bool) {
        let at = self
            .pos
            .checked_sub(1)
            .and_then(|i| self.wal.get(i))
            .map_or(Lsn(0x2000), |m| m.lsn);
        self.h.feed(&keepalive(at, reply)).unwrap();
        self.collect();
    }

    fn tick(&mut self) {
        self.h.advance(Duration::from_millis(700)).unwrap();
        self.collect();
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let st = self.h.session.stats();
        let resume = self.h.session.resume_lsn();
        // Nothing emitted and not handed over may be skipped by a resume, nor flushed.
        for b in &self.outbox {
            prop_assert!(
                resume <= b.commit_lsn,
                "resume {resume} passes the unhanded batch at commit {}",
                b.commit_lsn
            );
            if let Some(end) = b.ack_lsn() {
                prop_assert!(
                    st.flush_lsn < end,
                    "flush {} passes unhanded {end}",
                    st.flush_lsn
                );
            }
        }
        // Nothing handed but not acknowledged may be flushed.
        for (ack, _) in &self.handed {
            if let Some(end) = *ack
                && end > self.app_acked
            {
                prop_assert!(
                    st.flush_lsn < end,
                    "flush {} passes unacked {end}",
                    st.flush_lsn
                );
            }
        }
        // Acknowledged ≤ delivered (handed, or completed silently behind what was handed).
        prop_assert!(
            st.acked_lsn <= resume,
            "acked {} past resume {resume}",
            st.acked_lsn
        );
        prop_assert!(self.handed_end <= st.server_wal_end);
        prop_assert!(self.confirmed == st.flush_lsn || self.confirmed <= st.flush_lsn);
        Ok(())
    }

    /// Reads to the end (acknowledging everything) and returns the ids handed over.
    fn finish(&mut self) -> Vec<u32> {
        self.connect();
        while self.pos < self.wal.len() || !self.outbox.is_empty() {
            self.feed();
            while !self.outbox.is_empty() {
                self.hand_over();
            }
        }
        self.handed
            .iter()
            .flat_map(|(_, ids)| ids.clone())
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_batch_is_lost_or_repeated_whatever_fails_when(
        rows in proptest::collection::vec(0u8..6, 1..7),
        actions in proptest::collection::vec(0u8..13, 0..160),
        manual in any::<bool>(),
    ) {
        let (wal, total) = script(&rows);
        let mut run = Run::new(manual, wal);
        for a in actions {
            match a {
                0..=4 => run.feed(),
                5 | 6 => run.hand_over(),
                7 => run.ack(usize::from(a)),
                8 => run.keepalive(a % 2 == 0),
                9 => run.keepalive(true),
                10 => run.tick(),
                11 => run.feed_and_break(),
                _ => run.connect(),
            }
            run.check()?;
        }
        let got = run.finish();
        let want: Vec<u32> = (1..=total).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn an_unhanded_batch_is_sent_again_after_a_reconnect() {
    let (wal, _) = script(&[3, 1]);
    let mut run = Run::new(true, wal);
    // The whole first transaction is emitted (two chunks, the last one with the end LSN);
    // only the first chunk is handed over before the connection breaks.
    for _ in 0..6 {
        run.feed();
    }
    assert_eq!(run.outbox.len(), 2, "{:?}", run.outbox);
    run.hand_over();
    assert_eq!(run.h.session.resume_lsn(), Lsn::ZERO);
    run.connect();
    assert_eq!(run.finish(), vec![1, 2, 3, 4]);
}

#[test]
fn an_empty_transaction_behind_an_unhanded_one_waits_for_it() {
    let (wal, _) = script(&[1, 0]);
    let mut run = Run::new(false, wal);
    // Transaction 1 emitted, not handed; transaction 2 (empty) completes behind it.
    for _ in 0..run.wal.len() {
        run.feed();
    }
    assert_eq!(run.outbox.len(), 1);
    assert_eq!(run.h.session.resume_lsn(), Lsn::ZERO);
    run.hand_over();
    // Both count now: the resume position is past the empty one.
    assert_eq!(run.h.session.resume_lsn(), Lsn(0x2000 + 0x400 + 0x330));
}

#[test]
fn handed_without_a_batch_is_a_usage_error() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    assert!(matches!(h.session.handed(), Err(SessionError::Usage(_))));
}

fn message_at(lsn: u64) -> Vec<u8> {
    xlog(
        Lsn(lsn),
        &PgOutputMessage::Message {
            xid: None,
            transactional: false,
            lsn: Lsn(lsn),
            prefix: "p".into(),
            content: bytes::Bytes::from_static(b"m"),
        },
    )
}

#[test]
fn non_transactional_messages_are_tracked_like_transactions() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.auto_hand = false;
    h.stream();
    let t = txn(700, 0x2100, 0x2130, &[1]);
    h.feed(&t).unwrap();
    h.feed(&message_at(0x2200)).unwrap();
    let evs = h.events();
    assert_eq!(evs.len(), 2, "{evs:?}");
    h.session.handed().unwrap();
    h.session.ack(Lsn(0x2130));
    // The message waits to be handed over: a keepalive past it must not move the flush
    // beyond the acknowledged transaction.
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(
        h.status_updates().last().map(|u| u.flush),
        Some(Lsn(0x2130))
    );
    h.session.handed().unwrap();
    // After a reconnect before its position, the server sends the message again: dropped.
    h.session.detach();
    h.connect().unwrap();
    h.queries();
    h.feed(&message_at(0x2200)).unwrap();
    h.feed(&message_at(0x2300)).unwrap();
    let msgs: Vec<Lsn> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Message(m) => Some(m.lsn),
            _ => None,
        })
        .collect();
    assert_eq!(msgs, [Lsn(0x2300)]);
}
