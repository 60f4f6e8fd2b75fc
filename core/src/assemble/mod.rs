//! From pgoutput messages to transactions of [`SourceChange`]s: grouping, chunking, element
//! ids, labels, unchanged TOAST, streamed and two-phase transactions.
//!
//! The one entry point is [`Pipeline`]: feed it the pgoutput payload of each XLogData with
//! [`Pipeline::handle_xlog`] and drain [`PipelineEvent`]s with [`Pipeline::poll_event`]. It is
//! sans-IO and needs no connection, so benches, fuzz targets and tests drive it by hand.
//!
//! # What the pipeline guarantees
//!
//! * **Transactions.** The changes of one transaction are delivered together, in commit order,
//!   as one [`TransactionBatch`], or — when it has more than
//!   [`PipelineConfig::max_batch_changes`] changes — as consecutive chunks flagged
//!   `first_chunk`/`last_chunk` with increasing `chunk_index`. The chunks of a plain
//!   transaction go out **as the changes arrive**, before its Commit, so memory stays bounded:
//!   they carry what Begin tells (xid, commit LSN, commit time) and `end_lsn: None`. Only the
//!   last chunk, emitted at Commit, has `end_lsn` set. **Never acknowledge a non-last chunk.**
//!   If the session breaks inside such a transaction, [`Pipeline::reset`] reports
//!   [`PipelineEvent::IncompleteTransaction`]: the server sends the whole transaction again
//!   after reconnecting, so a consumer must treat chunks as tentative until the last one.
//! * **Streamed transactions** (`streaming on`) are buffered per top-level xid across stream
//!   blocks, with each change tagged by the (sub)transaction that made it. A Stream Abort of a
//!   subtransaction discards exactly the changes tagged with that subtransaction's xid
//!   (PostgreSQL sends one Stream Abort per aborted subtransaction, nested ones included); a
//!   Stream Abort of the top-level xid discards everything. Stream Commit emits the
//!   transaction, chunked like any other. Streamed and prepared transactions are held in
//!   memory until they commit ([`Pipeline::buffered_changes`] tells how many changes).
//! * **Two-phase transactions** (`two_phase on`) are buffered from Begin Prepare to Prepare
//!   and held by gid; Commit Prepared emits them with the COMMIT PREPARED record's LSNs and
//!   time, Rollback Prepared discards them. A Commit Prepared whose prepare this pipeline never
//!   saw (prepared in an earlier session) emits an **empty batch flagged
//!   `prepare_missing: true`** plus a [`PipelineEvent::Warning`]. Acknowledging past a
//!   held prepare makes the server skip it after a reconnect: keep the flush LSN below
//!   [`Pipeline::oldest_pending_prepare_lsn`].
//! * **Non-transactional logical messages** are emitted at once as
//!   [`PipelineEvent::Message`]; transactional ones are [`SourceChange::Message`]s in their
//!   transaction.
//! * **Schema changes.** Relation messages update the relation cache. An identical repeat
//!   (after TRUNCATE, per session, per streamed transaction) changes nothing; a real change
//!   adds a [`SourceChange::SchemaChange`] to the transaction, and later rows are decoded with
//!   the new schema. Nothing restarts.
//! * **Empty transactions** (PostgreSQL ≤ 14 sends one per transaction in the database) are
//!   not emitted unless [`PipelineConfig::skip_empty_transactions`] is off;
//!   [`Pipeline::last_end_lsn`] still advances.
//!
//! # Element ids
//!
//! The key columns of a table are, in order of precedence ([`KeySource`]):
//! 1. the columns configured for it in [`PipelineConfig::keys`] ([`KeyConfig`]);
//! 2. its primary key, given with [`Pipeline::set_primary_key`] (the runtime reads it from the
//!    catalog);
//! 3. the replica-identity key columns flagged in its Relation message, unless the identity is
//!    FULL (where every column is flagged);
//! 4. none: each element gets `label:` and a random UUID from the injected id generator
//!    ([`Pipeline::with_id_generator`]), and a [`PipelineEvent::Warning`] is emitted once per
//!    Relation received for the table.
//!
//! The id is formatted and escaped as described in [`model`](crate::model#element-ids). Key
//! values are the columns' text output (binary-format values are decoded and printed).
//!
//! An UPDATE whose old key tuple (sent by PostgreSQL when a replica-identity column changed)
//! or old full row gives a **different** id than the new row is emitted as a
//! [`SourceChange::Delete`] of the old id followed by a [`SourceChange::Insert`] of the new id,
//! never as an update of a stale element. When the old tuple is a key tuple that lacks some
//! configured key column, the old id cannot be computed and an update is emitted (a warning
//! says so when the relation is first seen).
//!
//! # Unchanged TOAST
//!
//! A column sent as unchanged TOAST (`'u'`) is filled from the old row when the server sent
//! one (REPLICA IDENTITY FULL, detoasted). Otherwise its property is left out and its name is
//! listed in the change's `unchanged_toast`: the previous value still holds. It is never NULL.
//!
//! # Values
//!
//! Each column is decoded with the [`value`](crate::value) module by the type OID and typmod
//! of the Relation: text with `decode_text`, binary with `decode_binary`. A value that does not
//! decode becomes [`Value::Unknown`](crate::value::Value::Unknown) holding its text (for
//! binary data, `\x` and hex), so a row is never dropped. Type messages feed the pipeline's
//! [`TypeRegistry`], which the caller may also fill ([`Pipeline::type_registry_mut`]).

mod convert;
mod flow;
mod hold;
mod keys;
mod rows;
#[cfg(test)]
mod tests;
mod txn;
mod types;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

pub use hold::{MemorySpillStore, SpillCounters, SpillFile, SpillStore};
pub use keys::{KeyConfig, KeySource, TableRef};
pub use types::{
    AssembleError, DEFAULT_MAX_BATCH_CHANGES, DEFAULT_SPILL_THRESHOLD_BYTES, PipelineConfig,
    PipelineEvent, PipelineStats, TransactionBatch, TransactionKind,
};

use keys::{BoundKeys, IdBuilder, IdGen, OidMap, PrimaryKeys, RelInfo, table_matches};
use txn::{OpenTx, PreparedTx, StreamTx};

use crate::lsn::Lsn;
use crate::model::{LogicalMessage, SourceChange, TxInfo};
use crate::pgoutput::{Cell, Decoder, Oid, PgOutputMessage, RelationCache, TupleRef, Xid};
use crate::value::TypeRegistry;
use crate::value::datetime::DateMemo;

/// The sans-IO assembly pipeline: pgoutput payloads in, transactions of changes out.
///
/// # Run loop
///
/// * input: [`handle_xlog`](Self::handle_xlog) with the `data` of every XLogData, in order;
/// * output: [`poll_event`](Self::poll_event) until `None`, after each input;
/// * application commands: [`set_primary_key`](Self::set_primary_key),
///   [`reset`](Self::reset) (before a new replication session);
/// * getters: [`last_end_lsn`](Self::last_end_lsn),
///   [`oldest_pending_prepare_lsn`](Self::oldest_pending_prepare_lsn),
///   [`in_transaction`](Self::in_transaction), [`stats`](Self::stats), the caches.
///
/// Keepalives are not the pipeline's business: a driver handles `k` itself and feeds only `w`.
/// See the [module docs](self) for the guarantees.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use pgcdc_core::Lsn;
/// use pgcdc_core::assemble::{Pipeline, PipelineConfig, PipelineEvent};
/// use pgcdc_core::model::SourceChange;
/// use pgcdc_core::pgoutput::{
///     Column, ColumnValue, Oid, PgOutputMessage, RelationBody, ReplicaIdentity, TupleData, Xid,
///     encode,
/// };
///
/// // What a walsender would send, one pgoutput message per XLogData.
/// let relation = RelationBody {
///     xid: None,
///     oid: Oid(16402),
///     namespace: "public".into(),
///     name: "users".into(),
///     replica_identity: ReplicaIdentity::Default,
///     columns: vec![
///         Column { flags: 1, name: "id".into(), type_oid: Oid(23), type_modifier: -1 },
///         Column { flags: 0, name: "name".into(), type_oid: Oid(25), type_modifier: -1 },
///     ],
/// };
/// let messages = [
///     PgOutputMessage::Begin { final_lsn: Lsn(0x1942A38), commit_time: 0, xid: Xid(752) },
///     PgOutputMessage::Relation(relation),
///     PgOutputMessage::Insert {
///         xid: None,
///         rel: Oid(16402),
///         new: TupleData::from_values([ColumnValue::Text(b"1"), ColumnValue::Text(b"ann")])?,
///     },
///     PgOutputMessage::Commit {
///         flags: 0,
///         commit_lsn: Lsn(0x1942A38),
///         end_lsn: Lsn(0x1942A68),
///         commit_time: 0,
///     },
/// ];
///
/// let mut pipeline = Pipeline::new("pg-source", PipelineConfig::default());
/// for msg in &messages {
///     let mut payload = BytesMut::new();
///     encode::message(msg, &mut payload)?;
///     // In a driver: `data`, `wal_start` and `wal_end` of each XLogData (`w`) message.
///     pipeline.handle_xlog(&payload.freeze(), Lsn(0x19428C8), Lsn(0x19428C8))?;
///     while let Some(event) = pipeline.poll_event() {
///         match event {
///             PipelineEvent::Transaction(batch) => {
///                 for change in &batch.changes {
///                     if let SourceChange::Insert { element, .. } = change {
///                         assert_eq!(&*element.metadata().reference.element_id, "users:1");
///                     }
///                 }
///                 // Acknowledge `batch.ack_lsn()` once the batch is processed.
///                 assert_eq!(batch.ack_lsn(), Some(Lsn(0x1942A68)));
///             }
///             PipelineEvent::Warning(w) => eprintln!("warning: {w}"),
///             _ => {}
///         }
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pipeline {
    source_id: Arc<str>,
    config: PipelineConfig,
    max_batch: usize,
    decoder: Decoder,
    relations: RelationCache,
    rel_info: OidMap<Arc<RelInfo>>,
    /// The tables whose changes are emitted (schema, name); `None`: every table sent.
    only_tables: Option<Vec<(String, String)>>,
    /// Per relation, whether its changes are emitted: decided when the relation is first
    /// described and kept across renames.
    included: OidMap<bool>,
    registry: TypeRegistry,
    primary_keys: PrimaryKeys,
    bound_keys: BoundKeys,
    ids: IdBuilder,
    current: Option<OpenTx>,
    streams: HashMap<Xid, StreamTx>,
    prepared: HashMap<String, PreparedTx>,
    events: VecDeque<PipelineEvent>,
    warnings: Vec<String>,
    last_end_lsn: Option<Lsn>,
    last_received: Lsn,
    stats: PipelineStats,
    /// The number of changes of the last non-empty plain transaction (at most a chunk): room
    /// made in the next one's buffer.
    tx_size_hint: usize,
    /// The last date parsed in a row, reused by the timestamps of the same day.
    dates: DateMemo,
    /// The cells of the tuple being read by the row fast path.
    cells: Vec<Cell>,
    /// An empty buffer with room for the next transaction's changes, made at the last
    /// Commit.
    spare_changes: Vec<SourceChange>,
    /// Where held transactions spill; `None`: they stay in memory.
    spill: Option<Box<dyn SpillStore>>,
    /// The memory held transactions take (see [`hold::HeldTx::mem_bytes`]).
    held_bytes: usize,
    /// The highest `held_bytes` after a change was held.
    peak_held_bytes: usize,
    /// The held transaction being read back, at its commit.
    replay: Option<hold::Replay>,
    /// Payloads received while a held transaction is read back, handled after it.
    deferred: VecDeque<(Bytes, Lsn, Lsn)>,
    /// An error met while doing deferred work, reported by the next call that can.
    failed: Option<AssembleError>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("source_id", &self.source_id)
            .field("config", &self.config)
            .field("relations", &self.relations.len())
            .field("in_transaction", &self.current.is_some())
            .field("streams", &self.streams.len())
            .field("prepared", &self.prepared.len())
            .field("events", &self.events.len())
            .field("last_end_lsn", &self.last_end_lsn)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline for the source `source_id` (the `source_id` of every element reference).
    ///
    /// Ids for tables without a key come from a deterministic generator, unique within this
    /// pipeline but repeated by the next one: a driver should inject a random source with
    /// [`with_id_generator`](Self::with_id_generator).
    pub fn new(source_id: impl Into<Arc<str>>, config: PipelineConfig) -> Self {
        Pipeline {
            source_id: source_id.into(),
            max_batch: config.max_batch_changes.max(1),
            config,
            decoder: Decoder::new(),
            relations: RelationCache::new(),
            rel_info: OidMap::default(),
            only_tables: None,
            included: OidMap::default(),
            registry: TypeRegistry::new(),
            primary_keys: PrimaryKeys::default(),
            bound_keys: BoundKeys::default(),
            ids: IdBuilder::new(IdGen::deterministic()),
            current: None,
            streams: HashMap::new(),
            prepared: HashMap::new(),
            events: VecDeque::new(),
            warnings: Vec::new(),
            last_end_lsn: None,
            last_received: Lsn::ZERO,
            stats: PipelineStats::default(),
            tx_size_hint: 0,
            dates: DateMemo::default(),
            cells: Vec::new(),
            spare_changes: Vec::new(),
            spill: None,
            held_bytes: 0,
            peak_held_bytes: 0,
            replay: None,
            deferred: VecDeque::new(),
            failed: None,
        }
    }

    /// Spills held (streamed and prepared) transactions to `store` when they outgrow
    /// [`PipelineConfig::spill_threshold_bytes`].
    pub fn with_spill_store(mut self, store: impl SpillStore + 'static) -> Self {
        self.spill = Some(Box::new(store));
        self
    }

    /// Uses `generate` (128 random bits per call) for the ids of rows of tables without a
    /// key. The core has no randomness of its own.
    pub fn with_id_generator(mut self, generate: impl FnMut() -> u128 + Send + 'static) -> Self {
        self.ids.gen_ids = IdGen::new(generate);
        self
    }

    // ------------------------------------------------------------------------------ getters

    /// The source id.
    pub fn source_id(&self) -> &Arc<str> {
        &self.source_id
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The relations described so far.
    pub fn relations(&self) -> &RelationCache {
        &self.relations
    }

    /// Where the element-id key of relation `oid` comes from, once its Relation arrived.
    pub fn key_source(&self, oid: Oid) -> Option<KeySource> {
        self.rel_info.get(&oid).map(|r| r.key_source)
    }

    /// The label of relation `oid`, once its Relation arrived.
    pub fn label(&self, oid: Oid) -> Option<&Arc<str>> {
        self.rel_info.get(&oid).map(|r| &r.label)
    }

    /// The type registry (built-ins plus types from Type messages).
    pub fn type_registry(&self) -> &TypeRegistry {
        &self.registry
    }

    /// The type registry, to register user types read from `pg_type`.
    pub fn type_registry_mut(&mut self) -> &mut TypeRegistry {
        &mut self.registry
    }

    /// Whether a Begin … Commit or Begin Prepare … Prepare transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.current.is_some()
    }

    /// The number of streamed transactions being buffered.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Changes held in buffers: the open transaction's unemitted ones, streamed and prepared
    /// transactions' (spilled ones included).
    pub fn buffered_changes(&self) -> usize {
        let held: u64 = self.held().map(hold::HeldTx::records).sum();
        self.current.as_ref().map_or(0, |c| c.changes.len())
            + usize::try_from(held).unwrap_or(usize::MAX)
    }

    /// The memory, in bytes, the changes of streamed and prepared transactions waiting for
    /// their commit take (estimated; spilled ones excluded). At most about
    /// [`PipelineConfig::spill_threshold_bytes`] when a spill store is set.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Whether a held transaction is being read back at its commit.
    pub fn is_reading_back(&self) -> bool {
        self.replay.is_some()
    }

    /// The highest [`held_bytes`](Self::held_bytes) since the pipeline was created.
    pub fn peak_held_bytes(&self) -> usize {
        self.peak_held_bytes
    }

    /// Bytes of held transactions in spill files now.
    pub fn spilled_bytes(&self) -> u64 {
        self.held().map(hold::HeldTx::spilled_bytes).sum()
    }

    /// Whether work is pending that [`resume`](Self::resume) does: a held transaction being
    /// read back at its commit, or payloads received meanwhile.
    pub fn has_backlog(&self) -> bool {
        self.replay.is_some() || !self.deferred.is_empty()
    }

    /// The gids and prepare LSNs of prepared transactions waiting for Commit or Rollback
    /// Prepared.
    pub fn pending_prepared(&self) -> impl Iterator<Item = (&str, Lsn)> {
        self.prepared
            .iter()
            .map(|(g, p)| (g.as_str(), p.prepare_lsn))
    }

    /// The lowest prepare LSN of a held prepared transaction. The flush LSN reported to the
    /// server must stay below it, or after a reconnect the server sends only the Commit
    /// Prepared and the held changes are lost.
    pub fn oldest_pending_prepare_lsn(&self) -> Option<Lsn> {
        self.prepared.values().map(|p| p.prepare_lsn).min()
    }

    /// The end LSN of the last transaction completed (emitted, skipped as empty, or rolled
    /// back prepared) since the pipeline was created or last [`reset`](Self::reset).
    pub fn last_end_lsn(&self) -> Option<Lsn> {
        self.last_end_lsn
    }

    /// The highest XLogData `wal_start`/`wal_end` received.
    pub fn last_received_lsn(&self) -> Lsn {
        self.last_received
    }

    /// Counters.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            generated_ids: self.ids.generated,
            ..self.stats
        }
    }

    // ----------------------------------------------------------------------------- mutators

    /// Emits only the changes of these tables (schema, name), dropping every other table's
    /// rows, truncates and schema changes — for a publication wider than the tables wanted.
    /// `None` (the default) emits every table the server sends. A relation is matched when
    /// it is first described and stays matched (or not) when it is renamed later.
    pub fn set_only_tables(&mut self, tables: Option<Vec<(String, String)>>) {
        if self.only_tables == tables {
            // The same list again (a reconnect): decisions stand, renamed tables included.
            return;
        }
        self.only_tables = tables;
        self.included.clear();
        let oids: Vec<Oid> = self.rel_info.keys().copied().collect();
        for oid in oids {
            self.decide_included(oid);
        }
    }

    /// Whether the changes of relation `oid` are emitted.
    #[inline]
    pub(crate) fn is_included(&self, oid: Oid) -> bool {
        // Without a table list (the default) no lookup on the row path.
        self.only_tables.is_none() || self.included.get(&oid).copied().unwrap_or(true)
    }

    fn decide_included(&mut self, oid: Oid) {
        if self.included.contains_key(&oid) {
            return;
        }
        let Some(rel) = self.rel_info.get(&oid) else {
            return;
        };
        let included = self.only_tables.as_ref().is_none_or(|tables| {
            tables
                .iter()
                .any(|(schema, name)| *schema == rel.body.schema() && *name == rel.body.name)
        });
        self.included.insert(oid, included);
    }

    /// Sets the primary key of a table (by OID or name), which the runtime reads from the
    /// catalog. It identifies elements unless a configured key exists, and applies at once to
    /// a relation already described.
    pub fn set_primary_key(&mut self, table: impl Into<TableRef>, columns: Vec<String>) {
        let table = table.into();
        self.primary_keys.set(table.clone(), columns);
        let affected: Vec<Oid> = self
            .rel_info
            .values()
            .filter(|r| table_matches(&table, &r.body, &r.label))
            .map(|r| r.body.oid)
            .collect();
        for oid in affected {
            self.rebuild(oid);
        }
    }

    /// Tells the pipeline the OID of a table and its current name (the runtime reads them
    /// from the catalog at start), so a configured key naming the table binds to its OID now
    /// and still applies after the table is renamed, even if its first change comes after
    /// the rename. A configured key binds to the first relation it names, here or by a
    /// Relation message.
    pub fn bind_table(&mut self, oid: Oid, schema: &str, name: &str) {
        let before = self.bound_keys.is_bound(oid);
        let after = self
            .bound_keys
            .resolve(&self.config.keys, oid, schema, name)
            .is_some();
        if after && !before && self.rel_info.contains_key(&oid) {
            self.rebuild(oid);
        }
    }

    /// Prepares for a new replication session: forgets the open transaction, streamed
    /// transactions, the decoder's stream state and the last end LSN. Relations, types and
    /// prepared transactions are kept (the server may send Commit Prepared in the next session).
    ///
    /// If chunks of the open transaction were already emitted, reports
    /// [`PipelineEvent::IncompleteTransaction`].
    pub fn reset(&mut self) {
        self.decoder.reset();
        self.abandon_read_back();
        if let Some(cur) = self.current.take() {
            if cur.chunk_index > 0 {
                self.events.push_back(PipelineEvent::IncompleteTransaction {
                    xid: cur.xid,
                    chunks_emitted: cur.chunk_index,
                });
            }
        }
        self.deferred.clear();
        self.failed = None;
        self.streams.clear();
        self.recount_held();
        // What the next session sends starts over: an end seen before belongs to the old one.
        self.last_end_lsn = None;
    }

    // -------------------------------------------------------------------------------- input

    /// Handles the pgoutput payload (`data`) of one XLogData message, whose header carried
    /// `wal_start` and `wal_end`. These positions are only recorded
    /// ([`last_received_lsn`](Self::last_received_lsn)): they are `0/0` for some messages and
    /// not monotonic, so acknowledge batches' `end_lsn` instead.
    ///
    /// While a held transaction is read back ([`has_backlog`](Self::has_backlog)), the
    /// payload is kept and handled after it, by [`resume`](Self::resume) or
    /// [`poll_event`](Self::poll_event).
    ///
    /// # Errors
    ///
    /// A payload that does not decode, or a message that breaks the protocol's flow (see
    /// [`AssembleError`]), also one met earlier by deferred work. After an error, stop the
    /// session and [`reset`](Self::reset).
    pub fn handle_xlog(
        &mut self,
        payload: &Bytes,
        wal_start: Lsn,
        wal_end: Lsn,
    ) -> Result<(), AssembleError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.has_backlog() {
            self.last_received = self.last_received.max(wal_start).max(wal_end);
            self.deferred
                .push_back((payload.clone(), wal_start, wal_end));
            return Ok(());
        }
        self.handle_payload::<true>(payload, wal_start, wal_end)
    }

    /// Does one step of the pending work ([`has_backlog`](Self::has_backlog)): reads a held
    /// transaction back up to its next chunk, or handles the next payload received
    /// meanwhile. Events it makes are in [`poll_ready_event`](Self::poll_ready_event).
    ///
    /// A driver that bounds its memory calls this only when it can take the next chunk;
    /// [`poll_event`](Self::poll_event) calls it by itself.
    ///
    /// # Errors
    ///
    /// As for [`handle_xlog`](Self::handle_xlog), and [`AssembleError::Spill`] when a spill
    /// file cannot be read back.
    pub fn resume(&mut self) -> Result<(), AssembleError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.replay.is_some() {
            return self.read_back_step();
        }
        match self.deferred.pop_front() {
            Some((payload, start, end)) => self.handle_payload::<true>(&payload, start, end),
            None => Ok(()),
        }
    }

    /// [`handle_xlog`](Self::handle_xlog); with `FAST` false every message takes the general
    /// path (decoded whole, then handled), which tests compare the fast paths against.
    #[inline(always)]
    fn handle_payload<const FAST: bool>(
        &mut self,
        payload: &Bytes,
        wal_start: Lsn,
        wal_end: Lsn,
    ) -> Result<(), AssembleError> {
        self.last_received = self.last_received.max(wal_start).max(wal_end);
        let result = if let Some(&byte @ (b'I' | b'U' | b'D' | b'M')) = payload.first()
            && self.holding()
        {
            self.hold(payload, byte)
        } else if FAST
            && let Some(head) = self.decoder.row_head(payload)
            && let Some(result) = self.new_row_fast(head)
        {
            result
        } else if FAST && let Some(b'I' | b'U' | b'D') = payload.first() {
            // Row changes, the bulk of the stream, are read in place: no message is built and
            // the payload is only borrowed.
            let row = self.decoder.decode_row(payload)?;
            self.stats.messages += 1;
            self.row_message(payload, row)
        } else {
            let msg = self.decoder.decode(payload.clone())?;
            self.stats.messages += 1;
            self.handle_message(msg)
        };
        if !self.warnings.is_empty() {
            self.flush_warnings();
        }
        match self.failed.take() {
            Some(e) if result.is_ok() => Err(e),
            _ => result,
        }
    }

    // ------------------------------------------------------------------------------- output

    /// The next event, or `None` when there is nothing to report. Pending work
    /// ([`has_backlog`](Self::has_backlog)) is done as needed: a held transaction is read
    /// back one chunk per event. An error it meets is returned by the next
    /// [`handle_xlog`](Self::handle_xlog) or [`resume`](Self::resume) (or
    /// [`take_error`](Self::take_error)); until then this returns `None`.
    pub fn poll_event(&mut self) -> Option<PipelineEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.failed.is_some() || !self.has_backlog() {
                return None;
            }
            if let Err(e) = self.resume() {
                self.failed = Some(e);
            }
        }
    }

    /// The next event already made, without doing pending work (see
    /// [`resume`](Self::resume)).
    pub fn poll_ready_event(&mut self) -> Option<PipelineEvent> {
        self.events.pop_front()
    }

    /// The error deferred work met (see [`poll_event`](Self::poll_event)), if any.
    pub fn take_error(&mut self) -> Option<AssembleError> {
        self.failed.take()
    }

    /// The number of events waiting for [`poll_event`](Self::poll_event).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    // ----------------------------------------------------------------------------- internal

    fn flush_warnings(&mut self) {
        for w in self.warnings.drain(..) {
            self.events.push_back(PipelineEvent::Warning(w));
        }
    }

    fn rebuild(&mut self, oid: Oid) {
        if let Some(body) = self.relations.get(oid) {
            let configured =
                self.bound_keys
                    .resolve(&self.config.keys, oid, body.schema(), &body.name);
            let info = RelInfo::build(
                body.clone(),
                configured,
                &self.primary_keys,
                &mut self.warnings,
            );
            self.rel_info.insert(oid, Arc::new(info));
            self.decide_included(oid);
        }
        self.flush_warnings();
    }

    fn relation(&self, oid: Oid, message: &'static str) -> Result<Arc<RelInfo>, AssembleError> {
        self.rel_info
            .get(&oid)
            .cloned()
            .ok_or(AssembleError::UnknownRelation { message, oid })
    }

    /// What a change made now knows about its transaction, or an error outside one.
    fn target(&self, message: &'static str) -> Result<TxInfo, AssembleError> {
        if let Some(top) = self.decoder.stream_xid() {
            return if self.streams.contains_key(&top) {
                Ok(TxInfo {
                    xid: top,
                    ..TxInfo::default()
                })
            } else {
                Err(AssembleError::UnknownStream { message, xid: top })
            };
        }
        self.current
            .as_ref()
            .map(OpenTx::tx_info)
            .ok_or(AssembleError::OutsideTransaction { message })
    }

    /// Adds a change to the open stream block's transaction or the open transaction (as
    /// checked by [`target`](Self::target)).
    #[inline(always)]
    fn push(&mut self, sub: Option<Xid>, change: SourceChange) {
        match (self.decoder.stream_xid(), &mut self.current) {
            (None, Some(cur)) if cur.held.is_none() => {
                cur.push(change, self.max_batch, &mut self.events);
            }
            (None, None) => {}
            _ => self.push_held(sub, change),
        }
    }

    /// The buffer of the open plain (or two-phase) transaction, outside stream blocks, with
    /// room for one more change; `None` inside a stream block or outside a transaction (then
    /// use [`emit_change`](Self::emit_change)). Counts the change.
    #[inline(always)]
    fn plain_buffer(&mut self) -> Option<&mut Vec<SourceChange>> {
        match (self.decoder.stream_xid(), &mut self.current) {
            (None, Some(cur)) if cur.held.is_none() => {
                self.stats.changes += 1;
                Some(cur.room_for_one(self.max_batch, &mut self.events))
            }
            _ => None,
        }
    }

    #[inline]
    fn check_width(
        rel: &RelInfo,
        t: TupleRef<'_>,
        message: &'static str,
    ) -> Result<(), AssembleError> {
        if t.len() == rel.columns.len() {
            Ok(())
        } else {
            Err(AssembleError::ColumnCount {
                message,
                oid: rel.body.oid,
                expected: rel.columns.len(),
                got: t.len(),
            })
        }
    }

    #[inline(always)]
    fn emit_change(&mut self, sub: Option<Xid>, change: SourceChange) {
        self.stats.changes += 1;
        self.push(sub, change);
    }

    fn handle_message(&mut self, msg: PgOutputMessage) -> Result<(), AssembleError> {
        match msg {
            PgOutputMessage::Begin {
                final_lsn,
                commit_time,
                xid,
            } => self.begin(OpenTx::new(xid, final_lsn, commit_time, None), "Begin"),
            PgOutputMessage::BeginPrepare {
                prepare_lsn,
                prepare_time,
                xid,
                gid,
                ..
            } => self.begin(
                OpenTx::new(xid, prepare_lsn, prepare_time, Some(gid)),
                "Begin Prepare",
            ),
            PgOutputMessage::Commit {
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => self.commit(commit_lsn, end_lsn, commit_time),
            PgOutputMessage::Origin { name, .. } => {
                self.origin(name);
                Ok(())
            }
            PgOutputMessage::Relation(body) => self.relation_message(body),
            PgOutputMessage::Type {
                oid,
                namespace,
                name,
                ..
            } => {
                self.registry
                    .register_from_type_message(oid, &namespace, &name);
                Ok(())
            }
            PgOutputMessage::Insert { xid, rel, new } => self.insert(xid, rel, new),
            PgOutputMessage::Update { xid, rel, old, new } => self.update(xid, rel, old, new),
            PgOutputMessage::Delete { xid, rel, old } => self.delete(xid, rel, old),
            PgOutputMessage::Truncate {
                xid,
                relations,
                cascade,
                restart_identity,
            } => self.truncate(xid, relations, cascade, restart_identity),
            PgOutputMessage::Message {
                xid,
                transactional,
                lsn,
                prefix,
                content,
            } => self.logical_message(
                xid,
                LogicalMessage {
                    prefix,
                    content,
                    transactional,
                    lsn,
                },
            ),
            PgOutputMessage::StreamStart { xid, first_segment } => {
                self.stream_start(xid, first_segment)
            }
            PgOutputMessage::StreamStop => Ok(()),
            PgOutputMessage::StreamCommit {
                xid,
                commit_lsn,
                end_lsn,
                commit_time,
                ..
            } => self.stream_commit(xid, commit_lsn, end_lsn, commit_time),
            PgOutputMessage::StreamAbort { xid, subxid, .. } => {
                self.stream_abort(xid, subxid);
                Ok(())
            }
            PgOutputMessage::Prepare {
                prepare_lsn,
                xid,
                gid,
                ..
            } => self.prepare(prepare_lsn, xid, gid),
            PgOutputMessage::StreamPrepare {
                prepare_lsn,
                xid,
                gid,
                ..
            } => self.stream_prepare(prepare_lsn, xid, gid),
            PgOutputMessage::CommitPrepared {
                commit_lsn,
                end_lsn,
                commit_time,
                xid,
                gid,
                ..
            } => {
                self.commit_prepared(commit_lsn, end_lsn, commit_time, xid, gid);
                Ok(())
            }
            PgOutputMessage::RollbackPrepared {
                rollback_end_lsn,
                gid,
                ..
            } => {
                self.rollback_prepared(rollback_end_lsn, &gid);
                Ok(())
            }
        }
    }
}
