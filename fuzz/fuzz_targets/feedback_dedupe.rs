//! Acknowledgement and dedupe through the session's public API: a scripted WAL of
//! transactions fed in fuzzer-chosen chunks, with hand-overs, acknowledgements, keepalives,
//! timers, broken connections and reconnects where the server replays from an earlier
//! transaction. After every step: the flush never goes back, never passes a transaction
//! emitted and not handed or handed and not acknowledged, acknowledged ≤ resume, and the
//! resume position never passes an unhanded batch. In the end every row id arrived exactly
//! once, in order.
//!
//! An input's actions end once it has attached a ninth connection.
//!
//! Input: one configuration byte (manual acknowledgement, batch size), one byte for the
//! number of transactions, one byte of row counts per transaction, then actions.
#![no_main]

#[path = "common/session.rs"]
mod session;

use std::collections::VecDeque;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::{PipelineConfig, TransactionBatch};
use pgcdc_core::model::SourceChange;
use pgcdc_core::replication::{ReplicationOptions, SessionEvent};
use pgcdc_core::testing::wal::{WalMessage, keepalive, script};
use session::Harness;

/// Attaches after which the remaining actions are skipped (each runs the whole setup, most of
/// an input's cost); the final replay still runs.
const MAX_ATTACHES: u32 = 8;

fn ids(batch: &TransactionBatch) -> Vec<u32> {
    batch
        .changes
        .iter()
        .map(|c| match c {
            SourceChange::Insert { element, .. } => {
                let id = element.metadata().reference.element_id.as_ref();
                id.strip_prefix("users:")
                    .and_then(|i| i.parse().ok())
                    .unwrap_or_else(|| panic!("an unexpected element id {id}"))
            }
            other => panic!("an unexpected change {other:?}"),
        })
        .collect()
}

struct Run {
    h: Harness,
    wal: Vec<WalMessage>,
    /// The next WAL message the server sends on this connection.
    pos: usize,
    outbox: VecDeque<TransactionBatch>,
    /// Handed over: (ack LSN, row ids).
    handed: Vec<(Option<Lsn>, Vec<u32>)>,
    handed_end: Lsn,
    manual: bool,
    app_acked: Lsn,
    flush: Lsn,
}

impl Run {
    fn collect(&mut self) {
        for e in std::mem::take(&mut self.h.events) {
            match e {
                SessionEvent::Transaction(b) => self.outbox.push_back(b),
                SessionEvent::Message(m) => panic!("a message without messages on: {m:?}"),
                _ => {}
            }
        }
    }

    /// A new connection; the server streams from the requested start (0/0: the slot's
    /// confirmed position), or with `replay` from that many transactions earlier.
    fn connect(&mut self, replay: usize) {
        self.h.session.detach();
        self.h.events.clear();
        self.outbox.clear();
        self.h
            .reconnect()
            .expect("the scripted server lets the session attach");
        let requested = self.h.requested.expect("START_REPLICATION sent");
        let start = if requested == Lsn::ZERO {
            self.h.sent_flush
        } else {
            requested
        };
        let mut pos = self
            .wal
            .iter()
            .position(|m| m.txn_end > start)
            .unwrap_or(self.wal.len());
        // Back to the first message of the transaction `replay` before.
        for _ in 0..replay {
            let Some(prev) = pos.checked_sub(1) else {
                break;
            };
            let end = self.wal[prev].txn_end;
            pos = self
                .wal
                .iter()
                .position(|m| m.txn_end == end)
                .unwrap_or(prev);
        }
        self.pos = pos;
        self.collect();
    }

    /// Feeds the next `n` messages in pieces of `piece` bytes.
    fn feed(&mut self, n: usize, piece: usize) {
        let end = (self.pos + n).min(self.wal.len());
        let bytes: Vec<u8> = self.wal[self.pos..end]
            .iter()
            .flat_map(|m| m.bytes.iter().copied())
            .collect();
        self.pos = end;
        for chunk in bytes.chunks(piece.max(1)) {
            self.h.feed(chunk).expect("well-formed WAL is accepted");
        }
        assert!(self.h.input.is_empty(), "whole messages were left unread");
        self.collect();
    }

    fn hand_over(&mut self) {
        if let Some(b) = self.outbox.pop_front() {
            self.h.session.handed().expect("a waiting batch is handed");
            if let Some(end) = b.ack_lsn() {
                self.handed_end = self.handed_end.max(end);
                if !self.manual {
                    self.h.session.ack(end);
                    self.app_acked = self.app_acked.max(end);
                }
            }
            self.handed.push((b.ack_lsn(), ids(&b)));
            self.h.pump().expect("a pump after a hand-over");
            self.collect();
        }
    }

    fn ack(&mut self, back: usize) {
        let acks: Vec<Lsn> = self.handed.iter().filter_map(|(a, _)| *a).collect();
        if let Some(&lsn) = acks.iter().rev().nth(back % acks.len().max(1)) {
            self.h.session.ack(lsn);
            self.app_acked = self.app_acked.max(lsn);
            self.h.pump().expect("a pump after an ack");
        }
    }

    fn keepalive(&mut self, reply: bool) {
        let at = self
            .pos
            .checked_sub(1)
            .and_then(|i| self.wal.get(i))
            .map_or(Lsn(0x2000), |m| m.lsn);
        self.h
            .feed(&keepalive(at, reply))
            .expect("a keepalive is accepted");
        self.collect();
    }

    fn tick(&mut self, ms: u64) {
        self.h
            .advance(Duration::from_millis(ms))
            .expect("time passing is no error");
        self.collect();
    }

    fn check(&mut self) {
        let st = self.h.session.stats();
        let resume = self.h.session.resume_lsn();
        assert!(
            st.flush_lsn >= self.flush,
            "flush went back from {} to {}",
            self.flush,
            st.flush_lsn
        );
        self.flush = st.flush_lsn;
        for b in &self.outbox {
            assert!(
                resume <= b.commit_lsn,
                "resume {resume} passes the unhanded batch at commit {}",
                b.commit_lsn
            );
            if let Some(end) = b.ack_lsn() {
                assert!(
                    st.flush_lsn < end,
                    "flush {} passes unhanded {end}",
                    st.flush_lsn
                );
            }
        }
        for (ack, _) in &self.handed {
            if let Some(end) = *ack
                && end > self.app_acked
            {
                assert!(
                    st.flush_lsn < end,
                    "flush {} passes unacked {end}",
                    st.flush_lsn
                );
            }
        }
        assert!(
            st.acked_lsn <= resume,
            "acked {} past resume {resume}",
            st.acked_lsn
        );
        assert!(self.handed_end <= st.server_wal_end);
        assert!(self.h.sent_flush <= st.flush_lsn);
    }

    fn finish(&mut self) -> Vec<u32> {
        self.connect(0);
        let mut guard = 0;
        while self.pos < self.wal.len() || !self.outbox.is_empty() {
            self.feed(1, usize::MAX);
            while !self.outbox.is_empty() {
                self.hand_over();
            }
            self.check();
            guard += 1;
            assert!(guard < 10_000);
        }
        self.handed
            .iter()
            .flat_map(|(_, ids)| ids.clone())
            .collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let [cfg, count, rest @ ..] = data else {
        return;
    };
    let n = usize::from(count % 8) + 1;
    let (rows, actions) = rest.split_at(n.min(rest.len()));
    if rows.is_empty() {
        return;
    }
    // At most five rows per transaction (0: an empty one).
    let rows: Vec<u8> = rows.iter().map(|n| n % 6).collect();
    let (wal, total) = script(&rows);
    let config = PipelineConfig::default().with_max_batch_changes(usize::from(cfg >> 4 & 3) + 1);
    let mut run = Run {
        h: Harness::new(ReplicationOptions::default(), config, "15.18"),
        wal,
        pos: 0,
        outbox: VecDeque::new(),
        handed: Vec::new(),
        handed_end: Lsn::ZERO,
        manual: cfg & 1 != 0,
        app_acked: Lsn::ZERO,
        flush: Lsn::ZERO,
    };
    run.connect(0);
    run.check();
    let mut actions = actions.iter().copied();
    while let Some(a) = actions.next() {
        if run.h.attaches > MAX_ATTACHES {
            break;
        }
        match a % 14 {
            0..=3 => run.feed(1, usize::MAX),
            4 => {
                let k = usize::from(actions.next().unwrap_or(0));
                run.feed(k % 4 + 1, k / 4 % 13 + 1);
            }
            5 | 6 => run.hand_over(),
            7 => run.ack(usize::from(actions.next().unwrap_or(0))),
            8 => run.keepalive(a & 0x10 != 0),
            9 => run.tick(u64::from(actions.next().unwrap_or(0)) * 40),
            10 => {
                // The connection breaks after the next message, before the driver polls.
                if let Some(m) = run.wal.get(run.pos) {
                    let bytes = m.bytes.clone();
                    run.h.feed(&bytes).expect("well-formed WAL is accepted");
                }
                run.connect(0);
            }
            11 => {
                // Half a message arrives, then the connection breaks.
                if let Some(m) = run.wal.get(run.pos) {
                    let half = m.bytes[..m.bytes.len() / 2].to_vec();
                    run.h.feed(&half).expect("half a message waits");
                }
                run.connect(0);
            }
            12 => {
                let replay = usize::from(actions.next().unwrap_or(0) % 4);
                run.connect(replay);
            }
            _ => run.connect(0),
        }
        run.check();
    }
    let got = run.finish();
    let want: Vec<u32> = (1..=total).collect();
    assert_eq!(got, want, "rows delivered");
});
