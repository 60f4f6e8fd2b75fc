//! Transaction control: Begin/Commit, stream blocks, two-phase, and the changes that are not
//! rows (truncate, logical messages).

use super::hold::HeldTx;
use super::txn::{self, Completed, OpenTx, PreparedTx, StreamTx, emit_completed};
use super::{AssembleError, Pipeline, PipelineEvent, TransactionKind};
use crate::lsn::Lsn;
use crate::model::{LogicalMessage, SourceChange, TxInfo, pg_time_to_unix_nanos};
use crate::pgoutput::{Oid, Xid};

impl Pipeline {
    pub(super) fn begin(
        &mut self,
        mut tx: OpenTx,
        message: &'static str,
    ) -> Result<(), AssembleError> {
        if self.current.is_some() {
            return Err(AssembleError::Unexpected {
                message,
                reason: "a transaction is already open",
            });
        }
        tx.capacity_hint = self.tx_size_hint;
        if tx.changes.capacity() == 0 {
            tx.changes = std::mem::take(&mut self.spare_changes);
        }
        self.current = Some(tx);
        Ok(())
    }

    pub(super) fn commit(
        &mut self,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        time: i64,
    ) -> Result<(), AssembleError> {
        let Some(mut cur) = self
            .current
            .take_if(|c| c.gid.is_none() && c.done.is_none())
        else {
            return Err(AssembleError::Unexpected {
                message: "Commit",
                reason: "no Begin is open",
            });
        };
        if cur.chunk_index > 0 {
            self.tx_size_hint = self.max_batch;
        } else if !cur.changes.is_empty() {
            self.tx_size_hint = cur.changes.len();
        }
        if cur.changes.is_empty() {
            // An empty buffer (room made but unused) serves the next transaction.
            if self.spare_changes.capacity() == 0 {
                self.spare_changes = std::mem::take(&mut cur.changes);
            }
        } else if self.spare_changes.capacity() == 0 {
            // Room for the next transaction, made now rather than at its first change: by then
            // the consumer has usually dropped this one, and a large allocation right after
            // many small frees is the allocator's slowest case.
            self.spare_changes =
                Vec::with_capacity(txn::initial_capacity(self.tx_size_hint, self.max_batch));
        }
        self.complete(
            Completed {
                info: TxInfo {
                    xid: cur.xid,
                    commit_lsn,
                    end_lsn: None,
                    commit_time_ns: pg_time_to_unix_nanos(time),
                },
                end_lsn,
                origin: cur.origin,
                kind: TransactionKind::Plain,
                gid: None,
                prepare_missing: false,
                first_index: cur.chunk_index,
            },
            cur.changes,
        );
        Ok(())
    }

    pub(super) fn origin(&mut self, name: String) {
        if let Some(top) = self.decoder.stream_xid() {
            if let Some(s) = self.streams.get_mut(&top) {
                s.origin = Some(name);
            }
        } else if let Some(cur) = &mut self.current {
            cur.origin = Some(name);
        } else {
            self.warnings.push(format!(
                "Origin message ({name}) outside a transaction ignored"
            ));
        }
    }

    pub(super) fn truncate(
        &mut self,
        sub: Option<Xid>,
        relations: Vec<Oid>,
        cascade: bool,
        restart_identity: bool,
    ) -> Result<(), AssembleError> {
        let tx = self.target("Truncate")?;
        // A truncate of several tables keeps only the emitted ones; of none, it is dropped.
        let relations: Vec<Oid> = relations
            .into_iter()
            .filter(|&oid| self.is_included(oid))
            .collect();
        if relations.is_empty() {
            return Ok(());
        }
        let labels = relations
            .iter()
            .map(|&oid| self.relation(oid, "Truncate").map(|r| r.label.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        self.emit_change(
            sub,
            SourceChange::Truncate {
                labels,
                relations,
                cascade,
                restart_identity,
                tx,
            },
        );
        Ok(())
    }

    pub(super) fn logical_message(
        &mut self,
        sub: Option<Xid>,
        message: LogicalMessage,
    ) -> Result<(), AssembleError> {
        if message.transactional {
            let tx = self.target("Message")?;
            self.emit_change(sub, SourceChange::Message { message, tx });
        } else {
            self.events.push_back(PipelineEvent::Message(message));
        }
        Ok(())
    }

    pub(super) fn stream_start(
        &mut self,
        xid: Xid,
        first_segment: bool,
    ) -> Result<(), AssembleError> {
        if self.current.is_some() {
            return Err(AssembleError::Unexpected {
                message: "Stream Start",
                reason: "a Begin … Commit transaction is open",
            });
        }
        if first_segment {
            if self.streams.insert(xid, StreamTx::default()).is_some() {
                self.warnings.push(format!(
                    "Stream Start marked first for streamed transaction {xid}, which was \
                     already open; its earlier changes were discarded"
                ));
            }
            Ok(())
        } else if self.streams.contains_key(&xid) {
            Ok(())
        } else {
            Err(AssembleError::UnknownStream {
                message: "Stream Start",
                xid,
            })
        }
    }

    pub(super) fn stream_commit(
        &mut self,
        xid: Xid,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        time: i64,
    ) -> Result<(), AssembleError> {
        let s = self.take_stream(xid, "Stream Commit")?;
        self.read_back(
            Completed {
                info: TxInfo {
                    xid,
                    commit_lsn,
                    end_lsn: None,
                    commit_time_ns: pg_time_to_unix_nanos(time),
                },
                end_lsn,
                origin: s.origin,
                kind: TransactionKind::Streamed,
                gid: None,
                prepare_missing: false,
                first_index: 0,
            },
            s.held,
        );
        Ok(())
    }

    /// Removes streamed transaction `xid` (its commit or prepare, `message`, arrived).
    fn take_stream(&mut self, xid: Xid, message: &'static str) -> Result<StreamTx, AssembleError> {
        let s = self
            .streams
            .remove(&xid)
            .ok_or(AssembleError::UnknownStream { message, xid })?;
        self.recount_held();
        Ok(s)
    }

    pub(super) fn stream_abort(&mut self, xid: Xid, subxid: Xid) {
        let dropped = if subxid == xid {
            self.streams.remove(&xid).map_or(0, |s| s.held.records())
        } else {
            self.streams
                .get_mut(&xid)
                .map_or(0, |s| s.held.abort(subxid))
        };
        self.stats.discarded_changes += dropped;
        self.recount_held();
    }

    pub(super) fn prepare(
        &mut self,
        prepare_lsn: Lsn,
        xid: Xid,
        gid: String,
    ) -> Result<(), AssembleError> {
        let Some(cur) = self.current.take_if(|c| c.gid.is_some()) else {
            return Err(AssembleError::Unexpected {
                message: "Prepare",
                reason: "no Begin Prepare is open",
            });
        };
        if cur.gid.as_deref() != Some(gid.as_str()) || cur.xid != xid {
            self.warnings.push(format!(
                "Prepare ({gid}, xid {xid}) does not match its Begin Prepare ({}, xid {}); \
                 kept under the Prepare's gid",
                cur.gid.as_deref().unwrap_or_default(),
                cur.xid
            ));
        }
        self.hold_prepared(
            gid,
            PreparedTx {
                xid,
                prepare_lsn,
                origin: cur.origin,
                held: cur.held.unwrap_or_default(),
            },
        );
        Ok(())
    }

    pub(super) fn stream_prepare(
        &mut self,
        prepare_lsn: Lsn,
        xid: Xid,
        gid: String,
    ) -> Result<(), AssembleError> {
        let s = self.take_stream(xid, "Stream Prepare")?;
        self.hold_prepared(
            gid,
            PreparedTx {
                xid,
                prepare_lsn,
                origin: s.origin,
                held: s.held,
            },
        );
        Ok(())
    }

    pub(super) fn commit_prepared(
        &mut self,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        time: i64,
        xid: Xid,
        gid: String,
    ) {
        let (origin, held, missing) = match self.prepared.remove(&gid) {
            Some(p) => (p.origin, p.held, false),
            None => {
                self.warnings.push(format!(
                    "Commit Prepared for transaction {gid} (xid {xid}) whose prepare was not \
                     received in this session: emitted as an empty batch flagged \
                     prepare_missing; its changes were delivered before the prepare was \
                     acknowledged, or are lost"
                ));
                (None, HeldTx::default(), true)
            }
        };
        self.recount_held();
        self.read_back(
            Completed {
                info: TxInfo {
                    xid,
                    commit_lsn,
                    end_lsn: None,
                    commit_time_ns: pg_time_to_unix_nanos(time),
                },
                end_lsn,
                origin,
                kind: TransactionKind::TwoPhase,
                gid: Some(gid),
                prepare_missing: missing,
                first_index: 0,
            },
            held,
        );
    }

    pub(super) fn rollback_prepared(&mut self, rollback_end_lsn: Lsn, gid: &str) {
        if let Some(p) = self.prepared.remove(gid) {
            self.stats.discarded_changes += p.held.records();
            self.recount_held();
        }
        self.stats.transactions += 1;
        self.last_end_lsn = Some(rollback_end_lsn);
    }

    pub(super) fn complete(&mut self, done: Completed, changes: Vec<SourceChange>) {
        self.stats.transactions += 1;
        self.last_end_lsn = Some(done.end_lsn);
        if changes.is_empty()
            && done.first_index == 0
            && !done.prepare_missing
            && self.config.skip_empty_transactions
        {
            return;
        }
        emit_completed(done, changes, self.max_batch, &mut self.events);
    }

    fn hold_prepared(&mut self, gid: String, p: PreparedTx) {
        if let Some(old) = self.prepared.insert(gid, p) {
            self.stats.discarded_changes += old.held.records();
            self.recount_held();
            self.warnings.push(format!(
                "a second prepare arrived for a held prepared transaction (xid {}); the first \
                 one was replaced",
                old.xid
            ));
        }
    }
}
