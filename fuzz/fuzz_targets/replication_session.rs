//! A replication session past its setup on the scripted server, then driven by arbitrary
//! server bytes (raw, as CopyData, or as XLogData around an arbitrary pgoutput payload, each
//! split where the fuzzer says) and well-formed transactions and keepalives, interleaved with
//! `handed`, `ack`, timers, end of file and detach / re-attach: never a panic, and the flush
//! position (in `stats()` and in the status updates sent) never goes back, except when the
//! session reports a `PositionReset`. An input ends once it has attached a ninth connection.
//!
//! Input: one configuration byte (server version, batch size, messages), then operations,
//! each an operation byte and its arguments.
#![no_main]

#[path = "common/session.rs"]
mod session;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgcdc_core::Lsn;
use pgcdc_core::assemble::PipelineConfig;
use pgcdc_core::pgoutput::{ReplicationMessage, encode};
use pgcdc_core::replication::{ReplicationOptions, SessionError, SessionEvent};
use pgcdc_core::testing::backend::copy_data;
use pgcdc_core::testing::wal::{keepalive, txn};
use session::Harness;

const VERSIONS: [&str; 4] = ["15.18", "16.4", "13.16", "11.22"];

/// Attaches after which an input ends (each runs the whole setup, most of an input's cost).
const MAX_ATTACHES: u32 = 8;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

struct Run {
    h: Harness,
    /// Ack positions of the batches seen.
    acks: Vec<Lsn>,
    /// The next LSN for generated WAL.
    lsn: u64,
    xid: u32,
    flush: Lsn,
}

impl Run {
    fn check(&mut self) {
        for e in std::mem::take(&mut self.h.events) {
            match e {
                // The server's history is not the one the flush was measured on (here: a
                // keepalive's wal_end above the next IDENTIFY_SYSTEM's xlogpos): the
                // delivery position starts over at the slot's, by design.
                SessionEvent::PositionReset { .. } => self.flush = Lsn::ZERO,
                SessionEvent::Transaction(b) => {
                    if let Some(l) = b.ack_lsn() {
                        self.acks.push(l);
                    }
                    let _ = format!("{b:?}");
                }
                other => {
                    let _ = format!("{other:?}");
                }
            }
        }
        let st = self.h.session.stats();
        assert!(
            st.flush_lsn >= self.flush,
            "flush went back from {} to {}",
            self.flush,
            st.flush_lsn
        );
        self.flush = st.flush_lsn;
        assert!(
            self.h.sent_flush <= st.flush_lsn,
            "a status update sent flush {} above the session's {}",
            self.h.sent_flush,
            st.flush_lsn
        );
        let _ = (self.h.session.phase(), self.h.session.resume_lsn());
        let _ = self.h.session.poll_timeout();
    }

    /// Feeds `bytes` in two reads split at `at`.
    fn feed_split(&mut self, bytes: &[u8], at: u8) -> Result<(), SessionError> {
        let mid = usize::from(at) % (bytes.len() + 1);
        let (a, b) = bytes.split_at(mid);
        self.h.feed(a)?;
        self.h.feed(b)
    }

    fn step(&mut self, op: u8, input: &mut Input<'_>) -> Result<(), SessionError> {
        match op % 11 {
            0 => {
                let n = usize::from(input.byte().unwrap_or(0));
                let raw = input.bytes(n).to_vec();
                let at = input.byte().unwrap_or(0);
                self.feed_split(&raw, at)
            }
            1 => {
                let n = usize::from(input.byte().unwrap_or(0));
                let payload = input.bytes(n).to_vec();
                let at = input.byte().unwrap_or(0);
                self.feed_split(&copy_data(&payload), at)
            }
            2 => {
                let n = usize::from(input.byte().unwrap_or(0));
                let data = Bytes::copy_from_slice(input.bytes(n));
                let at = input.byte().unwrap_or(0);
                self.lsn += 0x10;
                let mut payload = BytesMut::new();
                encode::replication_message(
                    &ReplicationMessage::XLogData {
                        wal_start: Lsn(self.lsn),
                        wal_end: Lsn(self.lsn),
                        send_time: 0,
                        data,
                    },
                    &mut payload,
                );
                self.feed_split(&copy_data(&payload), at)
            }
            3 => {
                let rows = input.byte().unwrap_or(0);
                let at = input.byte().unwrap_or(0);
                let ids: Vec<u32> = (0..u32::from(rows % 4)).map(|i| self.xid * 8 + i).collect();
                self.xid += 1;
                let commit = self.lsn + 0x200;
                let end = commit + 0x30;
                self.lsn = end;
                let bytes = txn(700 + self.xid, commit, end, &ids);
                self.feed_split(&bytes, at)
            }
            4 => {
                let reply = input.byte().unwrap_or(0);
                let wal_end = Lsn(self.lsn.saturating_add(u64::from(reply >> 1) * 8));
                self.h.feed(&keepalive(wal_end, reply & 1 != 0))
            }
            5 => {
                let waiting = self.h.session.unhanded();
                let r = self.h.session.handed();
                if waiting > 0 {
                    r?;
                } else {
                    assert!(
                        matches!(r, Err(SessionError::Usage(_))),
                        "handed with nothing waiting: {r:?}"
                    );
                }
                self.h.pump()
            }
            6 => {
                let pick = input.byte().unwrap_or(0);
                let lsn = if pick & 0x80 == 0 && !self.acks.is_empty() {
                    self.acks[usize::from(pick) % self.acks.len()]
                } else {
                    Lsn(u64::from(pick & 0x7F) * 0x40)
                };
                self.h.session.ack(lsn);
                self.h.pump()
            }
            7 => {
                let d = input.byte().unwrap_or(0);
                self.h.advance(Duration::from_millis(u64::from(d) * 150))
            }
            8 => {
                // Every deadline within the next two minutes, as a driver's timer fires them.
                for _ in 0..8 {
                    let Some(t) = self.h.session.poll_timeout() else {
                        break;
                    };
                    if t > self.h.now + Duration::from_secs(120) {
                        break;
                    }
                    let d = t.saturating_duration_since(self.h.now);
                    self.h.advance(d)?;
                }
                Ok(())
            }
            9 => {
                let e = self.h.session.handle_eof();
                let _ = e.to_string();
                self.h.reconnect()
            }
            _ => self.h.reconnect(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(cfg) = input.byte() else {
        return;
    };
    let options = ReplicationOptions {
        messages: cfg & 0x10 != 0,
        ..ReplicationOptions::default()
    };
    let config = PipelineConfig::default().with_max_batch_changes(usize::from(cfg >> 5) + 1);
    let h = Harness::new(options, config, VERSIONS[usize::from(cfg & 3)]);
    let mut run = Run {
        h,
        acks: Vec::new(),
        lsn: 0x2000,
        xid: 0,
        flush: Lsn::ZERO,
    };
    if run.h.reconnect().is_err() {
        return;
    }
    run.check();
    let mut failures = 0;
    while let Some(op) = input.byte() {
        if run.h.attaches > MAX_ATTACHES {
            return;
        }
        let result = run.step(op, &mut input);
        run.check();
        if let Err(e) = result {
            let _ = (e.to_string(), e.is_retryable());
            failures += 1;
            // As a driver: drop the connection and try again (a fatal error ends the run).
            if failures > 8 || run.h.reconnect().is_err() {
                run.check();
                return;
            }
            run.check();
        }
    }
});
