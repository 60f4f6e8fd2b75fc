//! The changes of streamed and prepared transactions, held until they commit: kept compact (the
//! pgoutput bytes of each row, decoded only at commit) and, above the memory budget, spilled to
//! a [`SpillStore`] and read back at commit one chunk at a time.
//!
//! # Records
//!
//! A held transaction is a sequence of records, each a 13-byte header — kind (`u8`), the
//! (sub)transaction that made it (`u32`), an index (`u32`), a length (`u32`), little-endian —
//! and `length` bytes:
//!
//! * a **message** record holds a pgoutput Insert, Update, Delete or transactional Message as
//!   sent outside a stream block (the stream's xid field taken out), and the index of the
//!   relation as it was described when the row arrived (its decode context), or `u32::MAX`;
//! * a **decoded** record stands for a change decoded at arrival and kept in memory (schema
//!   changes and truncates: few, and they need the relation cache of their time); the index
//!   points into [`HeldTx::decoded`].
//!
//! The oldest records are in the spill file (if any), the newest in memory. A subtransaction's
//! abort forgets its in-memory records at once and skips its spilled ones when reading back.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::keys::RelInfo;
use super::txn::{Completed, OpenTx};
use super::{AssembleError, Pipeline};
use crate::lsn::Lsn;
use crate::model::SourceChange;
use crate::pgoutput::{Oid, PgOutputMessage, Xid};

/// Where held transactions spill when they outgrow the memory budget
/// ([`PipelineConfig::spill_threshold_bytes`](super::PipelineConfig::spill_threshold_bytes)).
///
/// The core does no I/O: a driver injects a store with
/// [`Pipeline::with_spill_store`](super::Pipeline::with_spill_store) (the runtime crates use
/// unnamed temporary files). Without one, held transactions stay in memory whatever their size.
pub trait SpillStore: Send {
    /// A new, empty file for one transaction. Dropping it must free its space.
    ///
    /// # Errors
    ///
    /// The file could not be created; the pipeline reports
    /// [`AssembleError::Spill`](super::AssembleError::Spill).
    fn create(&mut self) -> io::Result<Box<dyn SpillFile>>;
}

/// One transaction's spill file: appended to while the transaction is open, read back in
/// order at its commit.
pub trait SpillFile: Send {
    /// Appends `data` at the end.
    ///
    /// # Errors
    ///
    /// A write failure (a full disk): the pipeline reports
    /// [`AssembleError::Spill`](super::AssembleError::Spill).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 only at the
    /// end).
    ///
    /// # Errors
    ///
    /// A read failure.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A [`SpillStore`] in memory: it bounds nothing, but runs the spilling code paths exactly as
/// a file store does. For tests and fuzzing.
#[derive(Debug, Default)]
pub struct MemorySpillStore {
    /// Files created so far.
    created: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes appended so far, over all files.
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl MemorySpillStore {
    /// A store.
    pub fn new() -> Self {
        MemorySpillStore::default()
    }

    /// A handle that counts the files created and bytes written, shared with this store.
    pub fn counters(&self) -> SpillCounters {
        SpillCounters {
            created: Arc::clone(&self.created),
            written: Arc::clone(&self.written),
        }
    }
}

/// What a [`MemorySpillStore`] did.
#[derive(Clone, Debug)]
pub struct SpillCounters {
    created: Arc<std::sync::atomic::AtomicUsize>,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl SpillCounters {
    /// Files created.
    pub fn files(&self) -> usize {
        self.created.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes appended, over all files.
    pub fn bytes(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SpillStore for MemorySpillStore {
    fn create(&mut self) -> io::Result<Box<dyn SpillFile>> {
        self.created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Box::new(MemoryFile {
            data: Vec::new(),
            written: Arc::clone(&self.written),
        }))
    }
}

struct MemoryFile {
    data: Vec<u8>,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl SpillFile for MemoryFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        self.written.fetch_add(
            u64::try_from(data.len()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let rest = self.data.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(rest.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// The record header's length.
const HEADER: usize = 13;
/// A record holding a pgoutput message.
const KIND_MESSAGE: u8 = 1;
/// A record standing for a decoded change.
const KIND_DECODED: u8 = 2;
/// The index of a message record without a relation.
const NO_CONTEXT: u32 = u32::MAX;
/// How much is read from a spill file at a time.
const READ_BLOCK: usize = 1 << 20;

/// The changes of one held transaction (streamed or prepared), as records.
#[derive(Default)]
pub(crate) struct HeldTx {
    /// The records not spilled, oldest first.
    mem: Vec<u8>,
    /// Changes decoded at arrival; `None` once their subtransaction aborted.
    decoded: Vec<Option<SourceChange>>,
    /// The estimated memory of `decoded`.
    decoded_bytes: usize,
    /// The relations (as described when their rows arrived) the message records refer to.
    contexts: Vec<Arc<RelInfo>>,
    /// `contexts` by the address of their relation, to find a context again.
    context_index: HashMap<usize, u32>,
    /// Live records per (sub)transaction.
    per_xid: Vec<(Xid, u64)>,
    /// Subtransactions aborted: their spilled records are skipped when read back.
    aborted: Vec<Xid>,
    /// The spill file, once the transaction spilled.
    file: Option<Box<dyn SpillFile>>,
    /// Bytes in the spill file.
    spilled: u64,
    /// Live records.
    records: u64,
}

impl fmt::Debug for HeldTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldTx")
            .field("records", &self.records)
            .field("mem", &self.mem.len())
            .field("decoded", &self.decoded.len())
            .field("spilled", &self.spilled)
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

impl HeldTx {
    /// The records held (aborted subtransactions' excluded).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The memory the held records take, estimated: the in-memory records, the decoded
    /// changes, the relation contexts.
    pub(crate) fn mem_bytes(&self) -> usize {
        self.mem.capacity()
            + self.decoded_bytes
            + self.decoded.capacity() * std::mem::size_of::<Option<SourceChange>>()
            + self.contexts.len() * 64
            + self.per_xid.capacity() * 16
    }

    /// The bytes the records not yet spilled take (what spilling frees).
    pub(crate) fn spillable(&self) -> usize {
        self.mem.capacity()
    }

    /// Bytes in the spill file.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.spilled
    }

    fn count(&mut self, xid: Xid) {
        self.records += 1;
        match self.per_xid.iter_mut().find(|(x, _)| *x == xid) {
            Some((_, n)) => *n += 1,
            None => self.per_xid.push((xid, 1)),
        }
    }

    fn context(&mut self, rel: &Arc<RelInfo>) -> u32 {
        let key = Arc::as_ptr(rel) as usize;
        if let Some(&i) = self.context_index.get(&key) {
            return i;
        }
        let i = u32::try_from(self.contexts.len()).unwrap_or(NO_CONTEXT - 1);
        self.contexts.push(Arc::clone(rel));
        self.context_index.insert(key, i);
        i
    }

    fn header(&mut self, kind: u8, xid: Xid, index: u32, len: u32) {
        self.mem.push(kind);
        self.mem.extend_from_slice(&xid.0.to_le_bytes());
        self.mem.extend_from_slice(&index.to_le_bytes());
        self.mem.extend_from_slice(&len.to_le_bytes());
    }

    /// Holds a pgoutput message (`type_byte` then `body`: its bytes as sent outside a stream
    /// block) made by `xid`, decoded at commit with the relation `rel` as it is now.
    pub(crate) fn push_message(
        &mut self,
        xid: Xid,
        rel: Option<&Arc<RelInfo>>,
        type_byte: u8,
        body: &[u8],
    ) {
        let index = rel.map_or(NO_CONTEXT, |r| self.context(r));
        // A pgoutput message is at most 1 GiB (the frame limit), so the length fits.
        let len = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
        self.header(KIND_MESSAGE, xid, index, len);
        self.mem.push(type_byte);
        self.mem.extend_from_slice(body);
        self.count(xid);
    }

    /// Holds a change decoded at arrival, made by `xid`.
    pub(crate) fn push_decoded(&mut self, xid: Xid, change: SourceChange) {
        let index = u32::try_from(self.decoded.len()).unwrap_or(u32::MAX);
        self.decoded_bytes += change.approx_bytes();
        self.decoded.push(Some(change));
        self.header(KIND_DECODED, xid, index, 0);
        self.count(xid);
    }

    /// Forgets the records of subtransaction `sub`; returns how many there were.
    pub(crate) fn abort(&mut self, sub: Xid) -> u64 {
        let Some(pos) = self.per_xid.iter().position(|(x, _)| *x == sub) else {
            return 0;
        };
        let (_, n) = self.per_xid.swap_remove(pos);
        self.records -= n;
        if self.spilled > 0 {
            self.aborted.push(sub);
        }
        // The in-memory records: compacted in place, the decoded changes dropped.
        let mut read = 0;
        let mut write = 0;
        while let Some(h) = parse_header(self.mem.get(read..).unwrap_or_default()) {
            let total = HEADER + h.len;
            if read + total > self.mem.len() {
                // Never: the records are written whole.
                break;
            }
            if h.xid == sub {
                if h.kind == KIND_DECODED
                    && let Some(slot) = self.decoded.get_mut(h.index as usize)
                    && let Some(change) = slot.take()
                {
                    self.decoded_bytes = self.decoded_bytes.saturating_sub(change.approx_bytes());
                }
            } else {
                if read != write {
                    self.mem.copy_within(read..read + total, write);
                }
                write += total;
            }
            read += total;
        }
        self.mem.truncate(write);
        if self.mem.capacity() > 2 * self.mem.len() + 4096 {
            self.mem.shrink_to_fit();
        }
        n
    }

    /// Moves the in-memory records to the spill file (created from `store` the first time);
    /// returns the bytes freed.
    pub(crate) fn spill(&mut self, store: &mut dyn SpillStore) -> io::Result<usize> {
        if self.mem.is_empty() {
            return Ok(0);
        }
        if self.file.is_none() {
            self.file = Some(store.create()?);
        }
        if let Some(file) = self.file.as_mut() {
            file.append(&self.mem)?;
        }
        self.spilled += u64::try_from(self.mem.len()).unwrap_or(u64::MAX);
        let freed = self.mem.capacity();
        self.mem = Vec::new();
        Ok(freed)
    }

    /// Starts reading the records back.
    pub(crate) fn into_reader(self) -> HeldReader {
        HeldReader {
            buf: BytesMut::new(),
            file_pos: 0,
            mem: Some(self.mem),
            held: HeldRest {
                decoded: self.decoded,
                contexts: self.contexts,
                aborted: self.aborted,
                file: self.file,
                spilled: self.spilled,
            },
        }
    }
}

/// What a [`HeldReader`] keeps of its transaction besides the records.
struct HeldRest {
    decoded: Vec<Option<SourceChange>>,
    contexts: Vec<Arc<RelInfo>>,
    aborted: Vec<Xid>,
    file: Option<Box<dyn SpillFile>>,
    spilled: u64,
}

struct Header {
    kind: u8,
    xid: Xid,
    index: u32,
    len: usize,
}

fn parse_header(b: &[u8]) -> Option<Header> {
    let h = b.get(..HEADER)?;
    let word = |at: usize| {
        h.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_le_bytes)
    };
    Some(Header {
        kind: *h.first()?,
        xid: Xid(word(1)),
        index: word(5),
        len: word(9) as usize,
    })
}

/// A record read back.
pub(crate) enum HeldRecord {
    /// A pgoutput message, with the relation it is decoded with.
    Message {
        /// Its bytes as sent outside a stream block.
        payload: Bytes,
        /// The relation as it was when the message arrived.
        rel: Option<Arc<RelInfo>>,
    },
    /// A change decoded at arrival.
    Decoded(SourceChange),
}

/// Reads a held transaction's records back in order: the spill file's, then the in-memory
/// ones; aborted subtransactions' records are skipped.
pub(crate) struct HeldReader {
    /// Bytes read and not yet returned.
    buf: BytesMut,
    /// Where the next read from the file starts.
    file_pos: u64,
    /// The in-memory records, until they are moved into `buf`.
    mem: Option<Vec<u8>>,
    held: HeldRest,
}

impl fmt::Debug for HeldReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldReader")
            .field("buffered", &self.buf.len())
            .field("file_pos", &self.file_pos)
            .field("spilled", &self.held.spilled)
            .finish_non_exhaustive()
    }
}

impl HeldReader {
    /// Makes sure `buf` holds at least `n` bytes, if the records have them; false at their
    /// end.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() < n {
            if self.file_pos < self.held.spilled
                && let Some(file) = self.held.file.as_mut()
            {
                let left = self.held.spilled - self.file_pos;
                let want = (n - self.buf.len())
                    .max(READ_BLOCK)
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let start = self.buf.len();
                self.buf.resize(start + want, 0);
                let got =
                    file.read_at(self.file_pos, self.buf.get_mut(start..).unwrap_or_default());
                let got = match got {
                    Ok(0) => {
                        self.buf.truncate(start);
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the spill file ended early",
                        ));
                    }
                    Ok(got) => got,
                    Err(e) => {
                        self.buf.truncate(start);
                        return Err(e);
                    }
                };
                self.buf.truncate(start + got);
                self.file_pos += u64::try_from(got).unwrap_or(u64::MAX);
            } else if let Some(mem) = self.mem.take() {
                // The file is read: the in-memory records follow.
                self.held.file = None;
                if self.buf.is_empty() {
                    self.buf = BytesMut::from(Bytes::from(mem));
                } else {
                    self.buf.extend_from_slice(&mem);
                }
            } else {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next live record, or `None` at the end.
    ///
    /// # Errors
    ///
    /// Reading the spill file failed, or it does not hold what was written.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<HeldRecord>> {
        loop {
            if !self.fill(HEADER)? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(corrupt())
                };
            }
            let h = parse_header(&self.buf).ok_or_else(corrupt)?;
            if !self.fill(HEADER + h.len)? {
                return Err(corrupt());
            }
            self.buf.advance(HEADER);
            let body = self.buf.split_to(h.len).freeze();
            if self.held.aborted.contains(&h.xid) {
                continue;
            }
            match h.kind {
                KIND_MESSAGE => {
                    let rel = (h.index != NO_CONTEXT)
                        .then(|| self.held.contexts.get(h.index as usize).cloned())
                        .flatten();
                    return Ok(Some(HeldRecord::Message { payload: body, rel }));
                }
                KIND_DECODED => {
                    if let Some(change) = self
                        .held
                        .decoded
                        .get_mut(h.index as usize)
                        .and_then(Option::take)
                    {
                        return Ok(Some(HeldRecord::Decoded(change)));
                    }
                }
                _ => return Err(corrupt()),
            }
        }
    }
}

fn corrupt() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a held transaction's records do not read back as written",
    )
}

/// A held transaction being read back at its commit.
pub(crate) struct Replay {
    reader: HeldReader,
    /// Relations whose entry was replaced by the description a record was made under, with
    /// the entry to put back at the end.
    swapped: Vec<(Oid, Option<Arc<RelInfo>>, Arc<RelInfo>)>,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("reader", &self.reader)
            .field("swapped", &self.swapped.len())
            .finish()
    }
}

fn spill_error(action: &'static str, e: &io::Error) -> AssembleError {
    AssembleError::Spill {
        action,
        kind: e.kind(),
        detail: e.to_string(),
    }
}

impl Pipeline {
    /// Whether changes arriving now are held: inside a stream block, or between Begin Prepare
    /// and Prepare.
    #[inline(always)]
    pub(super) fn holding(&self) -> bool {
        self.decoder.stream_xid().is_some()
            || self.current.as_ref().is_some_and(|c| c.held.is_some())
    }

    /// Every held transaction.
    pub(super) fn held(&self) -> impl Iterator<Item = &HeldTx> {
        self.streams
            .values()
            .map(|s| &s.held)
            .chain(self.prepared.values().map(|p| &p.held))
            .chain(self.current.as_ref().and_then(|c| c.held.as_ref()))
    }

    /// The held transaction changes arriving now go to, with its top-level xid.
    fn held_target(&mut self) -> Option<(&mut HeldTx, Xid)> {
        match self.decoder.stream_xid() {
            Some(top) => self.streams.get_mut(&top).map(|s| (&mut s.held, top)),
            None => self
                .current
                .as_mut()
                .and_then(|c| c.held.as_mut().map(|h| (h, c.xid))),
        }
    }

    /// Counts the memory of held transactions again (after one was removed or shrank).
    pub(super) fn recount_held(&mut self) {
        self.held_bytes = self.held().map(HeldTx::mem_bytes).sum();
    }

    /// Holds a row or a logical message received in a stream block or a transaction being
    /// prepared: checked and kept as bytes, decoded at commit.
    pub(super) fn hold(&mut self, payload: &Bytes, type_byte: u8) -> Result<(), AssembleError> {
        let in_stream = self.decoder.stream_xid().is_some();
        let (sub, rel) = if type_byte == b'M' {
            let msg = self.decoder.decode(payload.clone())?;
            match msg {
                PgOutputMessage::Message {
                    xid,
                    transactional: true,
                    ..
                } => {
                    self.target("Message")?;
                    self.stats.messages += 1;
                    (xid, None)
                }
                other => {
                    self.stats.messages += 1;
                    return self.handle_message(other);
                }
            }
        } else {
            let row = self.decoder.decode_row(payload)?;
            let (sub, oid, message) = row.head();
            self.decoder.recycle_row(row);
            self.stats.messages += 1;
            self.target(message)?;
            if !self.is_included(oid) && self.rel_info.contains_key(&oid) {
                return Ok(());
            }
            (sub, Some(self.relation(oid, message)?))
        };
        // Kept as sent outside a stream block: the stream's xid field is taken out.
        let body = payload
            .get(if in_stream { 5 } else { 1 }..)
            .unwrap_or_default();
        self.stats.changes += 1;
        if let Some((held, top)) = self.held_target() {
            let before = held.mem_bytes();
            held.push_message(sub.unwrap_or(top), rel.as_ref(), type_byte, body);
            let grown = held.mem_bytes().saturating_sub(before);
            self.held_bytes += grown;
        }
        self.enforce_budget();
        Ok(())
    }

    /// Holds a change decoded at arrival (a schema change, a truncate).
    #[inline(never)]
    pub(super) fn push_held(&mut self, sub: Option<Xid>, change: SourceChange) {
        if let Some((held, top)) = self.held_target() {
            let before = held.mem_bytes();
            held.push_decoded(sub.unwrap_or(top), change);
            let grown = held.mem_bytes().saturating_sub(before);
            self.held_bytes += grown;
        }
        self.enforce_budget();
    }

    /// Spills the largest held transactions while their memory is above the budget. A
    /// failure is kept in `failed` for the caller to report.
    fn enforce_budget(&mut self) {
        self.spill_over_budget();
        self.peak_held_bytes = self.peak_held_bytes.max(self.held_bytes);
    }

    fn spill_over_budget(&mut self) {
        let limit = self.config.spill_threshold_bytes;
        if limit == 0 || self.held_bytes <= limit {
            return;
        }
        let Some(store) = self.spill.as_mut() else {
            return;
        };
        while self.held_bytes > limit {
            let largest = self
                .streams
                .values_mut()
                .map(|s| &mut s.held)
                .chain(self.prepared.values_mut().map(|p| &mut p.held))
                .chain(self.current.as_mut().and_then(|c| c.held.as_mut()))
                .max_by_key(|h| h.spillable());
            let Some(held) = largest.filter(|h| h.spillable() > 0) else {
                return;
            };
            let before = held.spilled_bytes();
            match held.spill(store.as_mut()) {
                Ok(freed) => {
                    self.held_bytes = self.held_bytes.saturating_sub(freed);
                    self.stats.spills += 1;
                    self.stats.spilled_bytes += held.spilled_bytes() - before;
                }
                Err(e) => {
                    self.failed = Some(spill_error("spill", &e));
                    return;
                }
            }
        }
    }

    /// Emits a held transaction that completed: at once when it holds nothing, otherwise
    /// read back one chunk at a time by [`resume`](Self::resume).
    pub(super) fn read_back(&mut self, done: Completed, held: HeldTx) {
        if held.records() == 0 {
            self.complete(done, Vec::new());
            return;
        }
        self.current = Some(OpenTx::replaying(done, self.max_batch, held.records()));
        self.replay = Some(Replay {
            reader: held.into_reader(),
            swapped: Vec::new(),
        });
    }

    /// Reads records back until a chunk is emitted or the transaction is complete.
    pub(super) fn read_back_step(&mut self) -> Result<(), AssembleError> {
        let queued = self.events.len();
        while self.events.len() == queued {
            let Some(replay) = self.replay.as_mut() else {
                return Ok(());
            };
            let record = match replay.reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.finish_read_back();
                    return Ok(());
                }
                Err(e) => {
                    self.abandon_read_back();
                    return Err(spill_error("read back", &e));
                }
            };
            match record {
                HeldRecord::Decoded(mut change) => {
                    if let Some(cur) = self.current.as_mut() {
                        change.set_tx(cur.tx_info());
                        cur.push(change, self.max_batch, &mut self.events);
                    }
                }
                HeldRecord::Message { payload, rel } => {
                    if let Some(rel) = rel {
                        let oid = rel.body.oid;
                        let now = self.rel_info.get(&oid);
                        if !now.is_some_and(|r| Arc::ptr_eq(r, &rel)) {
                            // Decoded as the relation was described when the row arrived.
                            let before = self.rel_info.insert(oid, Arc::clone(&rel));
                            if !replay.swapped.iter().any(|(o, _, _)| *o == oid) {
                                replay.swapped.push((oid, before, rel));
                            } else if let Some(s) =
                                replay.swapped.iter_mut().find(|(o, _, _)| *o == oid)
                            {
                                s.2 = rel;
                            }
                        }
                    }
                    // Counted when it arrived.
                    let (messages, changes) = (self.stats.messages, self.stats.changes);
                    let result = self.handle_payload::<true>(&payload, Lsn::ZERO, Lsn::ZERO);
                    self.stats.messages = messages;
                    self.stats.changes = changes;
                    if let Err(e) = result {
                        self.abandon_read_back();
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Puts back the relations a read-back replaced.
    fn restore_relations(&mut self, replay: Replay) {
        for (oid, before, installed) in replay.swapped {
            // Only if nothing replaced it meanwhile (a primary key set by the runtime).
            if self
                .rel_info
                .get(&oid)
                .is_some_and(|r| Arc::ptr_eq(r, &installed))
            {
                match before {
                    Some(b) => {
                        self.rel_info.insert(oid, b);
                    }
                    None => {
                        self.rel_info.remove(&oid);
                    }
                }
            }
        }
    }

    /// The last record was read back: the transaction's last chunk goes out.
    fn finish_read_back(&mut self) {
        if let Some(replay) = self.replay.take() {
            self.restore_relations(replay);
        }
        let Some(mut cur) = self.current.take_if(|c| c.done.is_some()) else {
            return;
        };
        if let Some(mut done) = cur.done.take() {
            done.first_index = cur.chunk_index;
            self.complete(*done, cur.changes);
        }
    }

    /// Stops a read-back (an error, a reset): the transaction stays open as a plain one whose
    /// emitted chunks [`reset`](Self::reset) reports as incomplete; the server sends it again.
    pub(super) fn abandon_read_back(&mut self) {
        if let Some(replay) = self.replay.take() {
            self.restore_relations(replay);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::assemble::{PipelineConfig, PipelineEvent};
    use crate::pgoutput::{Column, ColumnValue, RelationBody, ReplicaIdentity, TupleData, encode};

    /// A store whose files fail: at creation, on write, or on read.
    struct Failing {
        at: &'static str,
    }

    struct FailingFile {
        at: &'static str,
        data: Vec<u8>,
    }

    impl SpillStore for Failing {
        fn create(&mut self) -> io::Result<Box<dyn SpillFile>> {
            if self.at == "create" {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "no"));
            }
            Ok(Box::new(FailingFile {
                at: self.at,
                data: Vec::new(),
            }))
        }
    }

    impl SpillFile for FailingFile {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            if self.at == "append" {
                return Err(io::Error::other("disk full"));
            }
            self.data.extend_from_slice(data);
            Ok(())
        }

        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == "read" {
                return Err(io::Error::other("gone"));
            }
            let rest = self.data.get(offset as usize..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
    }

    fn payload(msg: &PgOutputMessage) -> Bytes {
        let mut b = BytesMut::new();
        encode::message(msg, &mut b).unwrap();
        b.freeze()
    }

    /// A streamed transaction of `rows` inserts, committed.
    fn stream(rows: u32) -> Vec<Bytes> {
        let rel = RelationBody {
            xid: None,
            oid: Oid(5),
            namespace: "public".into(),
            name: "t".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![Column {
                flags: 1,
                name: "id".into(),
                type_oid: Oid(23),
                type_modifier: -1,
            }],
        };
        let mut out = vec![
            payload(&PgOutputMessage::Relation(rel)),
            payload(&PgOutputMessage::StreamStart {
                xid: Xid(9),
                first_segment: true,
            }),
        ];
        for i in 0..rows {
            let id = i.to_string();
            out.push(payload(&PgOutputMessage::Insert {
                xid: Some(Xid(9)),
                rel: Oid(5),
                new: TupleData::from_values([ColumnValue::Text(id.as_bytes())]).unwrap(),
            }));
        }
        out.push(payload(&PgOutputMessage::StreamStop));
        out.push(payload(&PgOutputMessage::StreamCommit {
            xid: Xid(9),
            flags: 0,
            commit_lsn: Lsn(0x100),
            end_lsn: Lsn(0x108),
            commit_time: 0,
        }));
        out
    }

    fn pipeline(at: &'static str) -> Pipeline {
        Pipeline::new(
            "s",
            PipelineConfig::default()
                .with_max_batch_changes(10)
                .with_spill_threshold_bytes(1),
        )
        .with_spill_store(Failing { at })
    }

    #[test]
    fn a_spill_that_fails_is_an_error_and_a_reset_recovers() {
        for at in ["create", "append"] {
            let mut p = pipeline(at);
            let msgs = stream(3);
            let mut first_error = None;
            for m in &msgs {
                if let Err(e) = p.handle_xlog(m, Lsn(1), Lsn(1)) {
                    first_error.get_or_insert(e);
                    break;
                }
            }
            match first_error {
                Some(AssembleError::Spill {
                    action: "spill", ..
                }) => {}
                other => panic!("{at}: expected a spill error, got {other:?}"),
            }
            // The session restarts: the transaction is received again, and spills again.
            p.reset();
            assert_eq!(p.held_bytes(), 0);
            assert!(!p.has_backlog());
        }
    }

    #[test]
    fn a_read_back_that_fails_is_reported_by_the_next_call() {
        let mut p = pipeline("read");
        for m in &stream(25) {
            p.handle_xlog(m, Lsn(1), Lsn(1)).unwrap();
        }
        assert!(p.has_backlog(), "the commit is read back lazily");
        assert!(p.poll_event().is_none(), "nothing can be read");
        let e = p.take_error().expect("the read error is kept");
        assert!(
            matches!(
                e,
                AssembleError::Spill {
                    action: "read back",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("free disk space"), "{e}");
        p.reset();
        assert!(!p.has_backlog() && !p.in_transaction());
    }

    #[test]
    fn read_back_yields_one_chunk_per_step() {
        let mut p = Pipeline::new(
            "s",
            PipelineConfig::default()
                .with_max_batch_changes(10)
                .with_spill_threshold_bytes(64),
        )
        .with_spill_store(MemorySpillStore::new());
        for m in &stream(35) {
            p.handle_xlog(m, Lsn(1), Lsn(1)).unwrap();
        }
        let mut sizes = Vec::new();
        while p.has_backlog() {
            p.resume().unwrap();
            let mut step = Vec::new();
            while let Some(PipelineEvent::Transaction(b)) = p.poll_ready_event() {
                step.push(b.changes.len());
            }
            assert!(step.len() <= 1, "one chunk per step: {step:?}");
            sizes.extend(step);
        }
        assert_eq!(sizes, [10, 10, 10, 5]);
        assert_eq!(p.last_end_lsn(), Some(Lsn(0x108)));
    }
}
