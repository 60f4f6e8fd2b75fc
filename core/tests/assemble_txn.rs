//! Transactions through the pipeline: batch fields, commit timestamps, chunking, empty
//! transactions, logical messages, streamed transactions with subtransaction aborts,
//! two-phase commit and rollback, reset. The tests sit in a module named `assemble` so
//! `cargo test assemble` selects them.
#![allow(missing_docs)]

mod assemble_support;

mod assemble {
    use bytes::Bytes;
    use pgcdc_core::Lsn;
    use pgcdc_core::assemble::{
        AssembleError, PipelineConfig, PipelineEvent, TransactionBatch, TransactionKind,
    };
    use pgcdc_core::model::{LogicalMessage, SourceChange};
    use pgcdc_core::pgoutput::{PgOutputMessage, Xid};

    use crate::assemble_support::*;

    /// 2024-01-01 00:00:00 UTC in PostgreSQL microseconds (since 2000-01-01).
    const T2024: i64 = (1_704_067_200 - 946_684_800) * 1_000_000;
    /// The same instant in Unix nanoseconds.
    const T2024_NS: u64 = 1_704_067_200_000_000_000;

    fn inserts(n: usize) -> Vec<PgOutputMessage> {
        (0..n)
            .map(|i| {
                let id = i.to_string();
                insert(100, &[T(&id), N, N])
            })
            .collect()
    }

    fn ids(b: &TransactionBatch) -> Vec<String> {
        summary(&b.changes)
    }

    fn message(transactional: bool, xid: Option<u32>, content: &'static [u8]) -> PgOutputMessage {
        PgOutputMessage::Message {
            xid: xid.map(Xid),
            transactional,
            lsn: Lsn(0x5000),
            prefix: "pfx".into(),
            content: Bytes::from_static(content),
        }
    }

    // ------------------------------------------------------------------------ batch fields

    #[test]
    fn batch_fields_and_commit_timestamp() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(752, 0x1942A38, T2024),
            PgOutputMessage::Origin {
                origin_lsn: Lsn(0xABCDEF),
                name: "upstream_node".into(),
            },
            users(),
            insert(100, &[T("1"), N, N]),
            commit(0x1942A38, 0x1942A68, T2024 + 1),
        ]);
        let mut b = f.batches();
        assert_eq!(b.len(), 1);
        let b = b.remove(0);
        assert_eq!(b.xid, Xid(752));
        assert_eq!(b.commit_lsn, Lsn(0x1942A38));
        assert_eq!(b.end_lsn, Some(Lsn(0x1942A68)));
        assert_eq!(b.ack_lsn(), Some(Lsn(0x1942A68)));
        assert_eq!(b.commit_time_ns, T2024_NS + 1000);
        assert_eq!(b.origin.as_deref(), Some("upstream_node"));
        assert_eq!(b.kind, TransactionKind::Plain);
        assert_eq!(
            (b.first_chunk, b.last_chunk, b.chunk_index),
            (true, true, 0)
        );
        assert_eq!(b.gid, None);
        assert!(!b.prepare_missing);
        let c = &b.changes[0];
        assert_eq!(c.effective_from(), T2024_NS + 1000);
        assert_eq!(c.metadata().unwrap().effective_from, T2024_NS + 1000);
        assert_eq!(f.p.last_end_lsn(), Some(Lsn(0x1942A68)));
        assert!(!f.p.in_transaction());
    }

    #[test]
    fn commit_timestamp_is_nanoseconds_since_unix_epoch() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, T2024),
            users(),
            insert(100, &[T("1"), N, N]),
            commit(0x100, 0x110, T2024),
        ]);
        let changes = f.one_txn();
        assert_eq!(changes[0].effective_from(), T2024_NS);
        assert_eq!(changes[0].tx().commit_time_ns, T2024_NS);
    }

    // ---------------------------------------------------------------------------- chunking

    #[test]
    fn chunking_2500_changes_by_1000() {
        let mut f = Feed::default_config();
        f.ok(&[begin(9, 0x9000, T2024), users()]);
        f.ok(&inserts(1000));
        // A chunk goes out only when a further change arrives, so the last is never empty.
        assert_eq!(f.p.pending_events(), 0);
        f.ok(&inserts(1001));
        let early = f.batches();
        assert_eq!(early.len(), 2, "chunks go out before the commit");
        f.ok(&inserts(499));
        assert!(f.batches().is_empty());
        f.ok(&[commit(0x9000, 0x9010, T2024)]);
        let last = f.batches();
        let all: Vec<&TransactionBatch> = early.iter().chain(&last).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(
            all.iter().map(|b| b.changes.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert_eq!(
            all.iter()
                .map(|b| (b.first_chunk, b.last_chunk, b.chunk_index))
                .collect::<Vec<_>>(),
            [(true, false, 0), (false, false, 1), (false, true, 2)]
        );
        for b in &all {
            assert_eq!(b.xid, Xid(9));
            assert_eq!(b.commit_lsn, Lsn(0x9000));
            assert_eq!(b.commit_time_ns, T2024_NS);
        }
        assert_eq!(all[0].end_lsn, None);
        assert_eq!(all[1].ack_lsn(), None);
        assert_eq!(all[2].end_lsn, Some(Lsn(0x9010)));
        assert_eq!(all[0].changes[0].tx().end_lsn, None);
        assert_eq!(all[2].changes[0].tx().end_lsn, Some(Lsn(0x9010)));
        assert_eq!(all[1].changes[0].element_id(), Some("users:0"));
        assert_eq!(all[2].changes[0].element_id(), Some("users:1000"));
    }

    #[test]
    fn chunking_exact_multiple_has_no_empty_last_chunk() {
        let mut f = Feed::new(PipelineConfig::default().with_max_batch_changes(3));
        f.ok(&[begin(1, 0x100, 0), users()]);
        f.ok(&inserts(6));
        f.ok(&[commit(0x100, 0x110, 0)]);
        let b = f.batches();
        assert_eq!(
            b.iter().map(|b| b.changes.len()).collect::<Vec<_>>(),
            [3, 3]
        );
        assert!(b[1].last_chunk && !b[0].last_chunk);
    }

    #[test]
    fn reset_inside_a_chunked_transaction_reports_it_incomplete() {
        let mut f = Feed::new(PipelineConfig::default().with_max_batch_changes(2));
        f.ok(&[begin(5, 0x100, 0), users()]);
        f.ok(&inserts(5));
        assert_eq!(f.batches().len(), 2);
        f.p.reset();
        assert_eq!(
            f.events(),
            [PipelineEvent::IncompleteTransaction {
                xid: Xid(5),
                chunks_emitted: 2
            }]
        );
        assert!(!f.p.in_transaction());
        // The server sends it again, whole, in the next session; relations are remembered.
        f.ok(&[begin(5, 0x100, 0)]);
        f.ok(&inserts(1));
        f.ok(&[commit(0x100, 0x110, 0)]);
        assert_eq!(f.batches().len(), 1);
    }

    // -------------------------------------------------------------------- empty / nesting

    #[test]
    fn empty_transactions_are_skipped_unless_configured() {
        let mut f = Feed::default_config();
        f.ok(&[begin(1, 0x100, 0), commit(0x100, 0x110, 0)]);
        assert!(f.events().is_empty());
        assert_eq!(f.p.last_end_lsn(), Some(Lsn(0x110)));

        let mut f = Feed::new(PipelineConfig::default().with_skip_empty_transactions(false));
        f.ok(&[begin(1, 0x100, 0), commit(0x100, 0x110, 0)]);
        let b = f.batches();
        assert_eq!(b.len(), 1);
        assert!(b[0].changes.is_empty() && b[0].is_whole());
    }

    #[test]
    fn begin_inside_a_transaction_is_an_error() {
        let mut f = Feed::default_config();
        f.ok(&[begin(1, 0x100, 0)]);
        assert!(matches!(
            f.send(&begin(2, 0x200, 0)),
            Err(AssembleError::Unexpected {
                message: "Begin",
                ..
            })
        ));
    }

    // --------------------------------------------------------------------------- messages

    #[test]
    fn logical_messages_transactional_and_not() {
        let mut f = Feed::default_config();
        // Non-transactional: at once, even before its transaction's Begin.
        f.ok(&[message(false, None, b"world")]);
        assert_eq!(
            f.events(),
            [PipelineEvent::Message(LogicalMessage {
                prefix: "pfx".into(),
                content: Bytes::from_static(b"world"),
                transactional: false,
                lsn: Lsn(0x5000),
            })]
        );
        f.ok(&[begin(1, 0x100, 0), message(true, None, b"in txn")]);
        // A non-transactional message inside a transaction still goes out at once.
        f.ok(&[message(false, None, b"now")]);
        assert!(matches!(&f.events()[..], [PipelineEvent::Message(m)] if !m.transactional));
        f.ok(&[commit(0x100, 0x110, 0)]);
        let changes = f.one_txn();
        let [SourceChange::Message { message, tx }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert!(message.transactional);
        assert_eq!(&message.content[..], b"in txn");
        assert_eq!(message.prefix, "pfx");
        assert_eq!(tx.end_lsn, Some(Lsn(0x110)));
    }

    #[test]
    fn transactional_message_outside_a_transaction_is_an_error() {
        let mut f = Feed::default_config();
        assert_eq!(
            f.send(&message(true, None, b"x")),
            Err(AssembleError::OutsideTransaction { message: "Message" })
        );
    }

    // -------------------------------------------------------------------------- streaming

    fn stream_start(xid: u32, first: bool) -> PgOutputMessage {
        PgOutputMessage::StreamStart {
            xid: Xid(xid),
            first_segment: first,
        }
    }

    fn stream_commit(xid: u32, commit_lsn: u64, end_lsn: u64, time: i64) -> PgOutputMessage {
        PgOutputMessage::StreamCommit {
            xid: Xid(xid),
            flags: 0,
            commit_lsn: Lsn(commit_lsn),
            end_lsn: Lsn(end_lsn),
            commit_time: time,
        }
    }

    fn stream_abort(xid: u32, subxid: u32) -> PgOutputMessage {
        PgOutputMessage::StreamAbort {
            xid: Xid(xid),
            subxid: Xid(subxid),
            abort_lsn: None,
            abort_time: None,
        }
    }

    fn stream_users(xid: u32) -> PgOutputMessage {
        let PgOutputMessage::Relation(mut r) = users() else {
            unreachable!()
        };
        r.xid = Some(Xid(xid));
        PgOutputMessage::Relation(r)
    }

    #[test]
    fn streamed_transaction_with_subtransaction_abort() {
        let mut f = Feed::default_config();
        f.ok(&[
            stream_start(779, true),
            PgOutputMessage::Origin {
                origin_lsn: Lsn(0),
                name: "o1".into(),
            },
            stream_users(779),
            insert_in(779, 100, &[T("1"), N, N]),
            insert_in(780, 100, &[T("2"), N, N]),
            insert_in(780, 100, &[T("3"), N, N]),
            PgOutputMessage::StreamStop,
        ]);
        assert!(f.events().is_empty());
        assert_eq!(f.p.open_streams(), 1);
        // A whole ordinary transaction between the blocks is emitted on its own.
        f.ok(&[
            begin(790, 0x700, 0),
            insert(100, &[T("50"), N, N]),
            commit(0x700, 0x710, 0),
        ]);
        assert_eq!(summary(&f.one_txn()), ["insert users:50"]);
        f.ok(&[
            stream_start(779, false),
            insert_in(781, 100, &[T("4"), N, N]),
            insert_in(779, 100, &[T("5"), N, N]),
            PgOutputMessage::StreamStop,
            // ROLLBACK TO SAVEPOINT of subtransaction 780.
            stream_abort(779, 780),
        ]);
        assert_eq!(f.p.buffered_changes(), 3);
        f.ok(&[stream_commit(779, 0x800, 0x810, T2024)]);
        let mut b = f.batches();
        assert_eq!(b.len(), 1);
        let b = b.remove(0);
        assert_eq!(
            ids(&b),
            ["insert users:1", "insert users:4", "insert users:5"]
        );
        assert_eq!(b.kind, TransactionKind::Streamed);
        assert_eq!(b.xid, Xid(779));
        assert_eq!(b.origin.as_deref(), Some("o1"));
        assert_eq!(b.ack_lsn(), Some(Lsn(0x810)));
        for c in &b.changes {
            assert_eq!(c.tx().xid, Xid(779));
            assert_eq!(c.tx().commit_lsn, Lsn(0x800));
            assert_eq!(c.tx().end_lsn, Some(Lsn(0x810)));
            assert_eq!(c.effective_from(), T2024_NS);
        }
        assert_eq!(f.p.open_streams(), 0);
        assert_eq!(f.p.stats().discarded_changes, 2);
    }

    #[test]
    fn streamed_transaction_aborted_whole_emits_nothing() {
        let mut f = Feed::default_config();
        f.ok(&[
            stream_start(10, true),
            stream_users(10),
            insert_in(10, 100, &[T("1"), N, N]),
            PgOutputMessage::StreamStop,
            stream_abort(10, 10),
        ]);
        assert!(f.events().is_empty());
        assert_eq!(f.p.open_streams(), 0);
        assert_eq!(
            f.send(&stream_commit(10, 0x100, 0x110, 0)),
            Err(AssembleError::UnknownStream {
                message: "Stream Commit",
                xid: Xid(10)
            })
        );
    }

    #[test]
    fn streamed_transaction_is_chunked_at_commit() {
        let mut f = Feed::new(PipelineConfig::default().with_max_batch_changes(1000));
        f.ok(&[stream_start(20, true), stream_users(20)]);
        for i in 0..2500 {
            let id = i.to_string();
            f.ok(&[insert_in(20, 100, &[T(&id), N, N])]);
        }
        f.ok(&[PgOutputMessage::StreamStop]);
        assert!(f.events().is_empty());
        f.ok(&[stream_commit(20, 0x100, 0x110, 0)]);
        let b = f.batches();
        assert_eq!(
            b.iter()
                .map(|b| (
                    b.changes.len(),
                    b.first_chunk,
                    b.last_chunk,
                    b.chunk_index,
                    b.end_lsn
                ))
                .collect::<Vec<_>>(),
            [
                (1000, true, false, 0, None),
                (1000, false, false, 1, None),
                (500, false, true, 2, Some(Lsn(0x110)))
            ]
        );
    }

    #[test]
    fn stream_continuation_without_first_block_is_an_error() {
        let mut f = Feed::default_config();
        assert_eq!(
            f.send(&stream_start(30, false)),
            Err(AssembleError::UnknownStream {
                message: "Stream Start",
                xid: Xid(30)
            })
        );
    }

    // -------------------------------------------------------------------------- two-phase

    fn begin_prepare(xid: u32, gid: &str, lsn: u64) -> PgOutputMessage {
        PgOutputMessage::BeginPrepare {
            prepare_lsn: Lsn(lsn),
            end_lsn: Lsn(lsn + 0x10),
            prepare_time: 0,
            xid: Xid(xid),
            gid: gid.into(),
        }
    }

    fn prepare(xid: u32, gid: &str, lsn: u64) -> PgOutputMessage {
        PgOutputMessage::Prepare {
            flags: 0,
            prepare_lsn: Lsn(lsn),
            end_lsn: Lsn(lsn + 0x10),
            prepare_time: 0,
            xid: Xid(xid),
            gid: gid.into(),
        }
    }

    fn commit_prepared(xid: u32, gid: &str, lsn: u64, time: i64) -> PgOutputMessage {
        PgOutputMessage::CommitPrepared {
            flags: 0,
            commit_lsn: Lsn(lsn),
            end_lsn: Lsn(lsn + 0x10),
            commit_time: time,
            xid: Xid(xid),
            gid: gid.into(),
        }
    }

    fn rollback_prepared(xid: u32, gid: &str, lsn: u64) -> PgOutputMessage {
        PgOutputMessage::RollbackPrepared {
            flags: 0,
            prepare_end_lsn: Lsn(0x110),
            rollback_end_lsn: Lsn(lsn),
            prepare_time: 0,
            rollback_time: 0,
            xid: Xid(xid),
            gid: gid.into(),
        }
    }

    #[test]
    fn two_phase_commit_emits_at_commit_prepared() {
        let mut f = Feed::new(PipelineConfig::default().with_max_batch_changes(1));
        f.ok(&[
            begin_prepare(40, "g1", 0x100),
            users(),
            insert(100, &[T("1"), N, N]),
            insert(100, &[T("2"), N, N]),
            prepare(40, "g1", 0x100),
        ]);
        // Held, never emitted early even though max_batch_changes is 1.
        assert!(f.events().is_empty());
        assert_eq!(
            f.p.pending_prepared().collect::<Vec<_>>(),
            [("g1", Lsn(0x100))]
        );
        assert_eq!(f.p.oldest_pending_prepare_lsn(), Some(Lsn(0x100)));
        // Other transactions commit meanwhile.
        f.ok(&[
            begin(41, 0x200, 0),
            insert(100, &[T("9"), N, N]),
            commit(0x200, 0x210, 0),
        ]);
        assert_eq!(f.batches().len(), 1);
        f.ok(&[commit_prepared(40, "g1", 0x300, T2024)]);
        let b = f.batches();
        assert_eq!(b.len(), 2);
        assert_eq!(ids(&b[0]), ["insert users:1"]);
        assert_eq!(ids(&b[1]), ["insert users:2"]);
        let last = &b[1];
        assert_eq!(last.kind, TransactionKind::TwoPhase);
        assert_eq!(last.gid.as_deref(), Some("g1"));
        assert_eq!(last.xid, Xid(40));
        assert_eq!(last.commit_lsn, Lsn(0x300));
        assert_eq!(last.ack_lsn(), Some(Lsn(0x310)));
        assert_eq!(last.changes[0].effective_from(), T2024_NS);
        assert!(!last.prepare_missing);
        assert_eq!(f.p.oldest_pending_prepare_lsn(), None);
    }

    #[test]
    fn two_phase_rollback_discards() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin_prepare(50, "g2", 0x100),
            users(),
            insert(100, &[T("1"), N, N]),
            prepare(50, "g2", 0x100),
            rollback_prepared(50, "g2", 0x400),
        ]);
        assert!(f.events().is_empty());
        assert_eq!(f.p.pending_prepared().count(), 0);
        assert_eq!(f.p.last_end_lsn(), Some(Lsn(0x400)));
        assert_eq!(f.p.stats().discarded_changes, 1);
    }

    #[test]
    fn commit_prepared_for_unseen_prepare_is_flagged() {
        let mut f = Feed::default_config();
        f.ok(&[commit_prepared(60, "old", 0x500, 0)]);
        let (b, w) = f.drain();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("old"));
        assert_eq!(b.len(), 1);
        assert!(b[0].prepare_missing && b[0].changes.is_empty() && b[0].is_whole());
        assert_eq!(b[0].gid.as_deref(), Some("old"));
        assert_eq!(b[0].ack_lsn(), Some(Lsn(0x510)));
    }

    #[test]
    fn streamed_two_phase_transaction() {
        let mut f = Feed::default_config();
        f.ok(&[
            stream_start(70, true),
            stream_users(70),
            insert_in(70, 100, &[T("1"), N, N]),
            PgOutputMessage::StreamStop,
            PgOutputMessage::StreamPrepare {
                flags: 0,
                prepare_lsn: Lsn(0x600),
                end_lsn: Lsn(0x610),
                prepare_time: 0,
                xid: Xid(70),
                gid: "g7".into(),
            },
        ]);
        assert!(f.events().is_empty());
        assert_eq!(f.p.open_streams(), 0);
        f.ok(&[commit_prepared(70, "g7", 0x700, 0)]);
        let b = f.batches();
        assert_eq!(ids(&b[0]), ["insert users:1"]);
        assert_eq!(b[0].kind, TransactionKind::TwoPhase);
    }

    #[test]
    fn commit_inside_begin_prepare_is_an_error() {
        let mut f = Feed::default_config();
        f.ok(&[begin_prepare(80, "g8", 0x100)]);
        assert!(matches!(
            f.send(&commit(0x100, 0x110, 0)),
            Err(AssembleError::Unexpected {
                message: "Commit",
                ..
            })
        ));
        assert!(f.p.in_transaction());
    }
}
