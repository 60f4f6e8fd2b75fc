//! The server side of every simulated connection: a task per connection drives its
//! [`FakeWalsender`](pgcdc_core::testing::FakeWalsender), sends idle keepalives, records what
//! the client reported, and cuts the connection where the fault plan says.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use pgcdc_core::Lsn;
use pgcdc_core::testing::{QueryCut, Sent, TxnPart, WalTxn, WalsenderEvent};

use super::{SimRuntime, World};

/// How long a caught-up walsender waits before a keepalive (with a reply requested).
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(3);

/// How a connection is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutKind {
    /// The server closes its socket: the client reads what was sent, then end of stream
    /// (or, once it wrote to the closed socket, a reset).
    Fin,
    /// The connection is reset: what is in flight is lost, reads and writes fail.
    Reset,
}

/// When a fault strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// After the server's k-th message of the run (from 1, over every connection).
    AfterMessage(u64),
    /// At the command starting with this text: before it runs, or after it ran but before
    /// its answer went out.
    Query(&'static str, QueryCut),
    /// After the row `index` (from 0) of transaction `xid` went out.
    AfterRow {
        /// The transaction.
        xid: u32,
        /// The row's position in it.
        index: usize,
    },
    /// Right after the server received its n-th standby status update (from 1).
    AfterStatus(u32),
    /// Right after a consumer's n-th acknowledgement (from 1), before the driver acts on it.
    AfterAck(u32),
    /// When a consumer received its n-th chunk that is not the last of its transaction.
    ConsumerChunk(u32),
    /// Halfway through a consumer's n-th stall (from 1), while its queue is full and the
    /// driver waits to deliver.
    QueueFull(u32),
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::AfterMessage(k) => write!(f, "after server message {k}"),
            Trigger::Query(q, QueryCut::Before) => write!(f, "before {q}"),
            Trigger::Query(q, QueryCut::After) => write!(f, "while {q} (after it ran)"),
            Trigger::AfterRow { xid, index } => write!(f, "after row {index} of xid {xid}"),
            Trigger::AfterStatus(n) => write!(f, "right after status update {n}"),
            Trigger::AfterAck(n) => write!(f, "right after acknowledgement {n}"),
            Trigger::ConsumerChunk(n) => write!(f, "between chunks (consumer chunk {n})"),
            Trigger::QueueFull(n) => write!(f, "while the subscriber queue is full (stall {n})"),
        }
    }
}

/// One scripted fault: a cut, then connection attempts refused.
#[derive(Clone, Debug)]
pub struct Fault {
    /// When.
    pub trigger: Trigger,
    /// How the connection breaks.
    pub kind: CutKind,
    /// Connection attempts refused after the cut.
    pub then_refuse: u32,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.trigger, self.kind)?;
        if self.then_refuse > 0 {
            write!(f, ", then {} refused connections", self.then_refuse)?;
        }
        Ok(())
    }
}

/// The fault plan and its counters.
#[derive(Debug, Default)]
pub struct Faults {
    /// Faults not fired yet; each fires once.
    pub plan: Vec<Fault>,
    /// Faults fired, with the virtual time.
    pub fired: Vec<String>,
    /// Connection attempts still to refuse.
    pub refuse: u32,
    /// Server messages sent so far, over every connection.
    pub messages_sent: u64,
    /// Status updates received so far.
    pub statuses: u32,
    /// Consumer acknowledgements so far.
    pub acks: u32,
    /// Non-last chunks the consumers received so far.
    pub chunks: u32,
    /// Consumer stalls so far.
    pub stalls: u32,
}

/// A standby status update as the server received it, with what the consumers had
/// acknowledged and received at that moment.
#[derive(Clone, Debug)]
pub struct StatusSeen {
    /// Virtual time.
    pub at: Duration,
    /// Connection.
    pub conn: usize,
    /// The reported flush (the slot's confirmed position follows it).
    pub flush: Lsn,
    /// Per consumer, the highest end LSN it had acknowledged.
    pub acked: Vec<Lsn>,
    /// Per consumer, how many batches it had received.
    pub received: Vec<usize>,
}

/// A batch as a consumer received it.
#[derive(Clone, Debug)]
pub struct BatchSeen {
    /// Virtual time.
    pub at: Duration,
    /// Transaction.
    pub xid: u32,
    /// Chunk index.
    pub chunk: u32,
    /// First chunk.
    pub first: bool,
    /// Last chunk.
    pub last: bool,
    /// The LSN to acknowledge (last chunks only).
    pub ack_lsn: Option<Lsn>,
    /// The inserted row ids, in order.
    pub ids: Vec<u32>,
}

/// What one consumer saw and acknowledged.
#[derive(Clone, Debug, Default)]
pub struct ConsumerSeen {
    /// Every batch, in order of receipt.
    pub batches: Vec<BatchSeen>,
    /// The highest end LSN acknowledged.
    pub acked: Lsn,
}

/// The observations the checks use.
#[derive(Debug, Default)]
pub struct Record {
    /// Every status update, in order.
    pub statuses: Vec<StatusSeen>,
    /// Per consumer.
    pub consumers: Vec<ConsumerSeen>,
}

impl World {
    /// Commits a transaction of `ids` to the server's WAL and wakes every walsender.
    pub fn commit(&mut self, xid: u32, ids: &[u32]) -> WalTxn {
        let t = self.server.commit(xid, ids);
        self.log(format!(
            "commit xid {xid} ({} rows) at {} end {}",
            ids.len(),
            t.commit,
            t.end
        ));
        for c in &mut self.net.conns {
            c.wake_server();
        }
        t
    }

    /// Takes the first planned fault `matches` accepts, logging it and arming its refusals.
    fn fire(&mut self, matches: impl Fn(&Trigger) -> bool) -> Option<Fault> {
        let i = self.faults.plan.iter().position(|f| matches(&f.trigger))?;
        let f = self.faults.plan.remove(i);
        self.faults.refuse += f.then_refuse;
        let line = format!("FAULT {f}");
        self.faults.fired.push(format!("t={:?} {f}", self.now));
        self.log(line);
        Some(f)
    }

    /// Cuts connection `id` (its walsender ends; the slot is released).
    pub fn cut(&mut self, id: usize, kind: CutKind) {
        let World { net, server, .. } = self;
        let c = &mut net.conns[id];
        if c.server_done {
            return;
        }
        c.walsender.close(server);
        c.server_done = true;
        c.to_server.clear();
        match kind {
            CutKind::Fin => c.to_client.fin = true,
            CutKind::Reset => {
                c.reset = true;
                c.to_client.clear();
            }
        }
        c.wake_client();
        c.wake_server();
        self.log(format!("conn#{id} cut ({kind:?})"));
    }

    /// Cuts every open connection.
    pub fn cut_open(&mut self, kind: CutKind) {
        for id in 0..self.net.conns.len() {
            if !self.net.conns[id].server_done {
                self.cut(id, kind);
            }
        }
    }

    /// A consumer received a batch: records it and fires a between-chunks fault.
    pub fn consumer_received(&mut self, consumer: usize, seen: BatchSeen) {
        let last = seen.last;
        self.log(format!(
            "consumer {consumer} got xid {} chunk {}{} ({} rows)",
            seen.xid,
            seen.chunk,
            if last { " last" } else { "" },
            seen.ids.len()
        ));
        self.record.consumers[consumer].batches.push(seen);
        if !last {
            self.faults.chunks += 1;
            let n = self.faults.chunks;
            if let Some(f) = self.fire(|t| *t == Trigger::ConsumerChunk(n)) {
                self.cut_open(f.kind);
            }
        }
    }

    /// A consumer acknowledges up to `lsn` (recorded before the driver hears of it); an
    /// after-acknowledgement fault fires.
    pub fn consumer_acked(&mut self, consumer: usize, lsn: Lsn) {
        let c = &mut self.record.consumers[consumer];
        c.acked = c.acked.max(lsn);
        self.log(format!("consumer {consumer} acks {lsn}"));
        self.faults.acks += 1;
        let n = self.faults.acks;
        if let Some(f) = self.fire(|t| *t == Trigger::AfterAck(n)) {
            self.cut_open(f.kind);
        }
    }

    /// A consumer starts stalling: the stall's number, and whether a full-queue fault is
    /// planned for it (fired halfway, with [`queue_full`](Self::queue_full)).
    pub fn stall_begins(&mut self, consumer: usize) -> (u32, bool) {
        self.faults.stalls += 1;
        let n = self.faults.stalls;
        self.log(format!("consumer {consumer} stalls (stall {n})"));
        let planned = self
            .faults
            .plan
            .iter()
            .any(|f| f.trigger == Trigger::QueueFull(n));
        (n, planned)
    }

    /// Halfway through stall `n`: the full-queue fault fires.
    pub fn queue_full(&mut self, n: u32) {
        if let Some(f) = self.fire(|t| *t == Trigger::QueueFull(n)) {
            self.cut_open(f.kind);
        }
    }

    fn on_walsender_events(&mut self, id: usize) {
        while let Some(ev) = self.net.conns[id].walsender.poll_event() {
            match ev {
                WalsenderEvent::Query(sql) => {
                    let head: String = sql.chars().take(60).collect();
                    self.log(format!("conn#{id} query {head}"));
                }
                WalsenderEvent::Cut(sql, at) => {
                    let kind = self
                        .fire(
                            |t| matches!(t, Trigger::Query(q, a) if sql.starts_with(q) && *a == at),
                        )
                        .map_or(CutKind::Fin, |f| f.kind);
                    self.cut(id, kind);
                    return;
                }
                WalsenderEvent::StreamingStarted { requested, start } => {
                    self.log(format!(
                        "conn#{id} streaming from {start} (requested {requested})"
                    ));
                }
                WalsenderEvent::Status(s) => {
                    let seen = StatusSeen {
                        at: self.now,
                        conn: id,
                        flush: s.flush,
                        acked: self.record.consumers.iter().map(|c| c.acked).collect(),
                        received: self
                            .record
                            .consumers
                            .iter()
                            .map(|c| c.batches.len())
                            .collect(),
                    };
                    self.record.statuses.push(seen);
                    self.faults.statuses += 1;
                    self.log(format!(
                        "conn#{id} status write {} flush {}",
                        s.write, s.flush
                    ));
                    let n = self.faults.statuses;
                    if let Some(f) = self.fire(|t| *t == Trigger::AfterStatus(n)) {
                        self.cut(id, f.kind);
                        return;
                    }
                }
                other => self.log(format!("conn#{id} {other:?}")),
            }
        }
    }

    fn after_sent(&mut self, id: usize, sent: &Sent) {
        self.faults.messages_sent += 1;
        let k = self.faults.messages_sent;
        self.log(format!("conn#{id} sent #{k} {sent:?}"));
        let fault = self.fire(|t| match t {
            Trigger::AfterMessage(n) => *n == k,
            Trigger::AfterRow { xid, index } => matches!(
                sent,
                Sent::Wal { xid: x, part: TxnPart::Row { index: i, .. } } if x == xid && i == index
            ),
            _ => false,
        });
        if let Some(f) = fault {
            self.cut(id, f.kind);
        }
    }

    /// One step of connection `id`'s server task.
    fn serve_step(&mut self, id: usize, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let now = self.now;
            let c = &mut self.net.conns[id];
            if c.server_done {
                let mut key = c.keepalive_timer.take();
                self.clear_timer(&mut key);
                return Poll::Ready(());
            }
            if !c.to_server.is_empty() {
                let bytes = c.to_server.take_all();
                c.wake_client();
                if let Err(e) = c.walsender.handle_input(&mut self.server, &bytes) {
                    self.log(format!("conn#{id} bad input: {e}"));
                    self.cut(id, CutKind::Reset);
                    continue;
                }
            }
            self.on_walsender_events(id);
            let c = &mut self.net.conns[id];
            if c.server_done {
                continue;
            }
            if c.walsender.is_closed() {
                // Terminate: the server closes its end.
                self.cut(id, CutKind::Fin);
                continue;
            }
            if c.to_server.fin {
                self.log(format!("conn#{id} closed by the client"));
                self.cut(id, CutKind::Fin);
                continue;
            }
            let mut cut = false;
            while self.net.conns[id].to_client.room() > 0 {
                let World {
                    net, server, rng, ..
                } = &mut *self;
                let c = &mut net.conns[id];
                let Some(m) = c.walsender.poll_message(server) else {
                    break;
                };
                c.to_client.push(&m.bytes, rng);
                c.wake_client();
                self.after_sent(id, &m.sent);
                if self.net.conns[id].server_done {
                    cut = true;
                    break;
                }
            }
            if cut {
                continue;
            }
            let due = {
                let World { net, server, .. } = &mut *self;
                let c = &mut net.conns[id];
                if c.walsender.is_streaming() && c.walsender.is_caught_up(server) {
                    let due = *c.next_keepalive.get_or_insert(now + KEEPALIVE_EVERY);
                    if now >= due {
                        c.walsender.queue_keepalive(true);
                        c.next_keepalive = Some(now + KEEPALIVE_EVERY);
                        continue;
                    }
                    Some(due)
                } else {
                    c.next_keepalive = None;
                    None
                }
            };
            let mut key = self.net.conns[id].keepalive_timer.take();
            match due {
                Some(due) => self.set_timer(&mut key, due, cx.waker()),
                None => self.clear_timer(&mut key),
            }
            let c = &mut self.net.conns[id];
            c.keepalive_timer = key;
            c.server_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

/// The server task of connection `id`: runs until the connection is over.
pub async fn serve(rt: SimRuntime, id: usize) {
    std::future::poll_fn(|cx| rt.with(|w| w.serve_step(id, cx))).await;
    rt.with(|w| w.log(format!("conn#{id} server task ended")));
}
