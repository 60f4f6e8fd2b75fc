//! Property tests for the assembly pipeline: arbitrary sequences of valid pgoutput messages,
//! in random order, never panic; well-formed sessions deliver every change exactly once with
//! consistent chunk flags. The tests sit in a module named `assemble` so `cargo test assemble`
//! selects them.
#![allow(missing_docs)]

mod assemble {
    use bytes::{Bytes, BytesMut};
    use pgcdc_core::Lsn;
    use pgcdc_core::assemble::{
        MemorySpillStore, Pipeline, PipelineConfig, PipelineEvent, TransactionBatch,
        TransactionKind,
    };
    use pgcdc_core::model::{ElementPropertyMap, SourceChange};
    use pgcdc_core::pgoutput::{
        Column, ColumnValue, Oid, OldTuple, PgOutputMessage, RelationBody, ReplicaIdentity,
        TupleData, Xid, encode,
    };
    use pgcdc_core::value::{PgText, Value};
    use proptest::prelude::*;

    // --------------------------------------------------------------------------- strategies

    fn xid() -> impl Strategy<Value = Xid> {
        (1u32..5).prop_map(Xid)
    }

    fn stream_xid() -> impl Strategy<Value = Option<Xid>> {
        prop::option::of(xid())
    }

    fn rel_oid() -> impl Strategy<Value = Oid> {
        (1u32..4).prop_map(Oid)
    }

    fn lsn() -> impl Strategy<Value = Lsn> {
        (0u64..0x1000).prop_map(Lsn)
    }

    fn gid() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b"]).prop_map(str::to_owned)
    }

    fn identity() -> impl Strategy<Value = ReplicaIdentity> {
        prop::sample::select(vec![
            ReplicaIdentity::Default,
            ReplicaIdentity::Nothing,
            ReplicaIdentity::Full,
            ReplicaIdentity::Index,
        ])
    }

    fn column() -> impl Strategy<Value = Column> {
        (
            0u8..2,
            prop::sample::select(vec!["id", "a", "b", "a_b", "x:y"]),
            prop::sample::select(vec![16u32, 17, 20, 23, 25, 114, 1007, 1700, 3802, 16400]),
        )
            .prop_map(|(flags, name, ty, ..)| Column {
                flags,
                name: name.into(),
                type_oid: Oid(ty),
                type_modifier: -1,
            })
    }

    fn relation() -> impl Strategy<Value = RelationBody> {
        (
            stream_xid(),
            rel_oid(),
            prop::sample::select(vec!["", "public", "app"]),
            identity(),
            prop::collection::vec(column(), 0..4),
        )
            .prop_map(|(xid, oid, ns, replica_identity, columns)| RelationBody {
                xid,
                oid,
                namespace: ns.into(),
                name: format!("t{}", oid.0),
                replica_identity,
                columns,
            })
    }

    fn tuple() -> impl Strategy<Value = TupleData> {
        prop::collection::vec(
            (
                0u8..4,
                prop::sample::select(vec![
                    &b"1"[..],
                    b"x_y",
                    b"{1,2}",
                    b"\\x00",
                    b"\xff\xfe",
                    b"",
                    b"{\"a\":1}",
                    b"\x00\x00\x00\x07",
                ]),
            ),
            0..4,
        )
        .prop_map(|cols| {
            TupleData::from_values(cols.iter().map(|&(k, data)| match k {
                0 => ColumnValue::Null,
                1 => ColumnValue::UnchangedToast,
                2 => ColumnValue::Text(data),
                _ => ColumnValue::Binary(data),
            }))
            .unwrap()
        })
    }

    fn old_tuple() -> impl Strategy<Value = OldTuple> {
        prop_oneof![
            tuple().prop_map(OldTuple::Key),
            tuple().prop_map(OldTuple::Full)
        ]
    }

    fn message() -> impl Strategy<Value = PgOutputMessage> {
        prop_oneof![
            3 => (lsn(), any::<i64>(), xid()).prop_map(|(final_lsn, commit_time, xid)| {
                PgOutputMessage::Begin { final_lsn, commit_time, xid }
            }),
            3 => (lsn(), lsn(), any::<i64>()).prop_map(|(commit_lsn, end_lsn, commit_time)| {
                PgOutputMessage::Commit { flags: 0, commit_lsn, end_lsn, commit_time }
            }),
            1 => (lsn(), prop::sample::select(vec!["o", "node"])).prop_map(|(origin_lsn, n)| {
                PgOutputMessage::Origin { origin_lsn, name: n.into() }
            }),
            3 => relation().prop_map(PgOutputMessage::Relation),
            1 => (stream_xid(), prop::sample::select(vec!["int4", "_text", "mood", "_mood"]))
                .prop_map(|(xid, name)| PgOutputMessage::Type {
                    xid,
                    oid: Oid(16400),
                    namespace: String::new(),
                    name: name.into(),
                }),
            6 => (stream_xid(), rel_oid(), tuple())
                .prop_map(|(xid, rel, new)| PgOutputMessage::Insert { xid, rel, new }),
            4 => (stream_xid(), rel_oid(), prop::option::of(old_tuple()), tuple())
                .prop_map(|(xid, rel, old, new)| PgOutputMessage::Update { xid, rel, old, new }),
            3 => (stream_xid(), rel_oid(), old_tuple())
                .prop_map(|(xid, rel, old)| PgOutputMessage::Delete { xid, rel, old }),
            1 => (stream_xid(), prop::collection::vec(rel_oid(), 0..3), any::<bool>(), any::<bool>())
                .prop_map(|(xid, relations, cascade, restart_identity)| {
                    PgOutputMessage::Truncate { xid, relations, cascade, restart_identity }
                }),
            2 => (stream_xid(), any::<bool>(), lsn()).prop_map(|(xid, transactional, lsn)| {
                PgOutputMessage::Message {
                    xid,
                    transactional,
                    lsn,
                    prefix: "p".into(),
                    content: Bytes::from_static(b"c"),
                }
            }),
            2 => (xid(), any::<bool>()).prop_map(|(xid, first_segment)| {
                PgOutputMessage::StreamStart { xid, first_segment }
            }),
            2 => Just(PgOutputMessage::StreamStop),
            1 => (xid(), lsn(), lsn(), any::<i64>()).prop_map(|(xid, commit_lsn, end_lsn, t)| {
                PgOutputMessage::StreamCommit { xid, flags: 0, commit_lsn, end_lsn, commit_time: t }
            }),
            1 => (xid(), xid()).prop_map(|(xid, subxid)| PgOutputMessage::StreamAbort {
                xid,
                subxid,
                abort_lsn: None,
                abort_time: None,
            }),
            1 => (lsn(), lsn(), xid(), gid()).prop_map(|(prepare_lsn, end_lsn, xid, gid)| {
                PgOutputMessage::BeginPrepare { prepare_lsn, end_lsn, prepare_time: 0, xid, gid }
            }),
            1 => (lsn(), xid(), gid()).prop_map(|(prepare_lsn, xid, gid)| {
                PgOutputMessage::Prepare {
                    flags: 0,
                    prepare_lsn,
                    end_lsn: prepare_lsn,
                    prepare_time: 0,
                    xid,
                    gid,
                }
            }),
            1 => (lsn(), xid(), gid()).prop_map(|(prepare_lsn, xid, gid)| {
                PgOutputMessage::StreamPrepare {
                    flags: 0,
                    prepare_lsn,
                    end_lsn: prepare_lsn,
                    prepare_time: 0,
                    xid,
                    gid,
                }
            }),
            1 => (lsn(), xid(), gid(), any::<i64>()).prop_map(|(commit_lsn, xid, gid, t)| {
                PgOutputMessage::CommitPrepared {
                    flags: 0,
                    commit_lsn,
                    end_lsn: commit_lsn,
                    commit_time: t,
                    xid,
                    gid,
                }
            }),
            1 => (lsn(), xid(), gid()).prop_map(|(lsn, xid, gid)| {
                PgOutputMessage::RollbackPrepared {
                    flags: 0,
                    prepare_end_lsn: lsn,
                    rollback_end_lsn: lsn,
                    prepare_time: 0,
                    rollback_time: 0,
                    xid,
                    gid,
                }
            }),
        ]
    }

    fn encoded(msg: &PgOutputMessage) -> Bytes {
        let mut buf = BytesMut::new();
        encode::message(msg, &mut buf).unwrap();
        buf.freeze()
    }

    /// Drains the pipeline and checks the invariants every event must keep.
    fn drain_checked(p: &mut Pipeline, max: usize) {
        while let Some(e) = p.poll_event() {
            if let PipelineEvent::Transaction(b) = e {
                assert!(b.changes.len() <= max);
                assert_eq!(b.end_lsn.is_some(), b.last_chunk);
                assert_eq!(b.first_chunk, b.chunk_index == 0);
                for c in &b.changes {
                    assert_eq!(c.tx().xid, b.xid);
                    if b.last_chunk {
                        assert_eq!(c.tx().end_lsn, b.end_lsn);
                    }
                    if let Some(md) = c.metadata() {
                        assert!(md.reference.element_id.contains(':'));
                        assert_eq!(md.labels.len(), 1);
                    }
                }
            }
        }
    }

    /// The Relation message of table `public.t` (oid 1) with `columns`.
    fn table_t(columns: Vec<Column>) -> PgOutputMessage {
        PgOutputMessage::Relation(RelationBody {
            xid: None,
            oid: Oid(1),
            namespace: "public".into(),
            name: "t".into(),
            replica_identity: ReplicaIdentity::Default,
            columns,
        })
    }

    /// The Commit of the plain transaction whose commit LSN is `lsn` (ending at `lsn` + 8).
    fn commit_at(lsn: Lsn) -> PgOutputMessage {
        PgOutputMessage::Commit {
            flags: 0,
            commit_lsn: lsn,
            end_lsn: Lsn(lsn.0 + 8),
            commit_time: 0,
        }
    }

    /// Feeds `msgs` to `p` (all at `lsn`) and returns the events they produced.
    fn feed(p: &mut Pipeline, msgs: &[PgOutputMessage], lsn: Lsn) -> Vec<PipelineEvent> {
        let mut events = Vec::new();
        for m in msgs {
            p.handle_xlog(&encoded(m), lsn, lsn).unwrap();
            while let Some(e) = p.poll_event() {
                events.push(e);
            }
        }
        events
    }

    /// A row change of table `t (id int4 key, v text)`.
    #[derive(Clone, Debug)]
    enum RowOp {
        /// `None`: `v` unchanged TOAST.
        Insert(i32, Option<String>),
        /// Old key (when the key changes), new id, new `v` (`None`: unchanged TOAST).
        Update(Option<i32>, i32, Option<String>),
        Delete(i32),
    }

    fn row_op() -> impl Strategy<Value = RowOp> {
        let v = prop::option::weighted(0.8, "[a-z_:]{0,40}");
        prop_oneof![
            3 => (0..50i32, v.clone()).prop_map(|(id, v)| RowOp::Insert(id, v)),
            2 => (prop::option::of(0..50i32), 0..50i32, v)
                .prop_map(|(old, id, v)| RowOp::Update(old.filter(|&o| o != id), id, v)),
            1 => (0..50i32).prop_map(RowOp::Delete),
        ]
    }

    fn cell(v: &Option<String>) -> ColumnValue<'_> {
        v.as_deref().map_or(ColumnValue::UnchangedToast, |s| {
            ColumnValue::Text(s.as_bytes())
        })
    }

    /// `name=value` pairs, as [`describe`] prints a map.
    fn pairs(id: i32, v: Option<&Option<String>>) -> String {
        let mut out = format!("id={:?}", Value::Int4(id));
        if let Some(Some(v)) = v {
            out.push_str(&format!(",v={:?}", Value::Text(PgText::from(v.as_str()))));
        }
        out
    }

    fn toast(v: &Option<String>) -> String {
        if v.is_some() {
            "[]".into()
        } else {
            "[\"v\"]".into()
        }
    }

    impl RowOp {
        /// The message, and the changes it must produce as [`describe`] prints them.
        fn message_and_changes(&self) -> (PgOutputMessage, Vec<String>) {
            let key = |id: i32| id.to_string();
            match self {
                RowOp::Insert(id, v) => (
                    PgOutputMessage::Insert {
                        xid: None,
                        rel: Oid(1),
                        new: TupleData::from_values([
                            ColumnValue::Text(key(*id).as_bytes()),
                            cell(v),
                        ])
                        .unwrap(),
                    },
                    vec![format!("I t:{id} [{}] {}", pairs(*id, Some(v)), toast(v))],
                ),
                RowOp::Update(old, id, v) => {
                    let msg = PgOutputMessage::Update {
                        xid: None,
                        rel: Oid(1),
                        old: old.map(|o| {
                            OldTuple::Key(
                                TupleData::from_values([
                                    ColumnValue::Text(key(o).as_bytes()),
                                    ColumnValue::Null,
                                ])
                                .unwrap(),
                            )
                        }),
                        new: TupleData::from_values([
                            ColumnValue::Text(key(*id).as_bytes()),
                            cell(v),
                        ])
                        .unwrap(),
                    };
                    let changes = match old {
                        Some(o) => vec![
                            format!("D t:{o} [{}]", pairs(*o, None)),
                            format!("I t:{id} [{}] {}", pairs(*id, Some(v)), toast(v)),
                        ],
                        None => vec![format!(
                            "U t:{id} [{}] None {}",
                            pairs(*id, Some(v)),
                            toast(v)
                        )],
                    };
                    (msg, changes)
                }
                RowOp::Delete(id) => (
                    PgOutputMessage::Delete {
                        xid: None,
                        rel: Oid(1),
                        old: OldTuple::Key(
                            TupleData::from_values([
                                ColumnValue::Text(key(*id).as_bytes()),
                                ColumnValue::Null,
                            ])
                            .unwrap(),
                        ),
                    },
                    vec![format!("D t:{id} [{}]", pairs(*id, None))],
                ),
            }
        }
    }

    /// A row change as `kind id [name=value,…] …`.
    fn describe(c: &SourceChange) -> String {
        let map = |m: &ElementPropertyMap| {
            m.iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let id = c.element_id().unwrap_or_default();
        match c {
            SourceChange::Insert {
                element,
                unchanged_toast,
                ..
            } => {
                format!("I {id} [{}] {unchanged_toast:?}", map(element.properties()))
            }
            SourceChange::Update {
                element,
                old,
                unchanged_toast,
                ..
            } => format!(
                "U {id} [{}] {:?} {unchanged_toast:?}",
                map(element.properties()),
                old.as_ref().map(map)
            ),
            SourceChange::Delete { old, .. } => format!("D {id} [{}]", map(old)),
            other => format!("{other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Valid messages in any order — right or wrong for the state — never panic, and
        /// whatever comes out keeps the batch invariants. Raw garbage is mixed in too.
        #[test]
        fn arbitrary_message_sequences_never_panic(
            msgs in prop::collection::vec(
                prop_oneof![
                    20 => message().prop_map(|m| encoded(&m)),
                    1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from),
                ],
                0..80,
            ),
            max in 1usize..4,
            resets in prop::collection::vec(any::<bool>(), 80),
        ) {
            let mut p = Pipeline::new(
                "s",
                PipelineConfig::default()
                    .with_max_batch_changes(max)
                    .with_skip_empty_transactions(max != 2),
            );
            for (i, payload) in msgs.into_iter().enumerate() {
                if p.handle_xlog(&payload, Lsn(i as u64), Lsn(i as u64)).is_err()
                    && resets.get(i).copied().unwrap_or(false)
                {
                    p.reset();
                }
                drain_checked(&mut p, max);
            }
            p.reset();
            drain_checked(&mut p, max);
        }

        /// Well-formed sessions of plain transactions: every insert arrives once, in order,
        /// split into chunks of at most `max`, with exactly one last chunk per transaction.
        #[test]
        fn well_formed_sessions_deliver_every_change_once(
            txns in prop::collection::vec(0usize..12, 1..8),
            max in 1usize..6,
        ) {
            let mut p = Pipeline::new("s", PipelineConfig::default().with_max_batch_changes(max));
            let rel = table_t(vec![Column {
                flags: 1,
                name: "id".into(),
                type_oid: Oid(23),
                type_modifier: -1,
            }]);
            let mut batches: Vec<TransactionBatch> = Vec::new();
            let mut next_id = 0u32;
            for (t, &n) in txns.iter().enumerate() {
                let xid = Xid(t as u32 + 1);
                let lsn = Lsn(0x100 * (t as u64 + 1));
                let mut msgs = vec![
                    PgOutputMessage::Begin { final_lsn: lsn, commit_time: 0, xid },
                    rel.clone(),
                ];
                for _ in 0..n {
                    let id = next_id.to_string();
                    next_id += 1;
                    msgs.push(PgOutputMessage::Insert {
                        xid: None,
                        rel: Oid(1),
                        new: TupleData::from_values([ColumnValue::Text(id.as_bytes())]).unwrap(),
                    });
                }
                msgs.push(commit_at(lsn));
                for e in feed(&mut p, &msgs, lsn) {
                    match e {
                        PipelineEvent::Transaction(b) => batches.push(b),
                        other => prop_assert!(false, "unexpected {other:?}"),
                    }
                }
                prop_assert_eq!(p.last_end_lsn(), Some(Lsn(lsn.0 + 8)));
            }
            let ids: Vec<String> = batches
                .iter()
                .flat_map(|b| b.changes.iter().map(|c| c.element_id().unwrap().to_owned()))
                .collect();
            let want: Vec<String> = (0..next_id).map(|i| format!("t:{i}")).collect();
            prop_assert_eq!(ids, want);
            let nonempty = txns.iter().filter(|&&n| n > 0).count();
            prop_assert_eq!(batches.iter().filter(|b| b.last_chunk).count(), nonempty);
            let mut expect_index = 0u32;
            for b in &batches {
                prop_assert!(!b.changes.is_empty() && b.changes.len() <= max);
                prop_assert_eq!(b.chunk_index, expect_index);
                prop_assert_eq!(b.end_lsn.is_some(), b.last_chunk);
                expect_index = if b.last_chunk { 0 } else { expect_index + 1 };
            }
        }

        /// The values of every row reach the consumer intact however transactions are split
        /// into chunks, in plain and two-phase transactions: inserts, updates (with unchanged
        /// TOAST, and changing the key), deletes.
        #[test]
        fn row_values_survive_any_chunking(
            txns in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(row_op(), 0..40)),
                1..5,
            ),
            max in 1usize..12,
            threshold in prop::sample::select(vec![0usize, 1, 700]),
        ) {
            // Prepared transactions are held until Commit Prepared: in memory, or spilled.
            let mut p = Pipeline::new(
                "s",
                PipelineConfig::default()
                    .with_max_batch_changes(max)
                    .with_spill_threshold_bytes(threshold),
            )
            .with_spill_store(MemorySpillStore::new());
            let rel = table_t(vec![
                Column { flags: 1, name: "id".into(), type_oid: Oid(23), type_modifier: -1 },
                Column { flags: 0, name: "v".into(), type_oid: Oid(25), type_modifier: -1 },
            ]);
            let mut want = Vec::new();
            let mut got = Vec::new();
            for (t, (two_phase, ops)) in txns.iter().enumerate() {
                let xid = Xid(t as u32 + 1);
                let lsn = Lsn(0x100 * (t as u64 + 1));
                let gid = format!("g{t}");
                let mut msgs = vec![if *two_phase {
                    PgOutputMessage::BeginPrepare {
                        prepare_lsn: lsn,
                        end_lsn: lsn,
                        prepare_time: 0,
                        xid,
                        gid: gid.clone(),
                    }
                } else {
                    PgOutputMessage::Begin { final_lsn: lsn, commit_time: 0, xid }
                }];
                msgs.push(rel.clone());
                for op in ops {
                    let (msg, changes) = op.message_and_changes();
                    msgs.push(msg);
                    want.extend(changes);
                }
                if *two_phase {
                    msgs.push(PgOutputMessage::Prepare {
                        flags: 0,
                        prepare_lsn: lsn,
                        end_lsn: Lsn(lsn.0 + 4),
                        prepare_time: 0,
                        xid,
                        gid: gid.clone(),
                    });
                    msgs.push(PgOutputMessage::CommitPrepared {
                        flags: 0,
                        commit_lsn: Lsn(lsn.0 + 6),
                        end_lsn: Lsn(lsn.0 + 8),
                        commit_time: 0,
                        xid,
                        gid,
                    });
                } else {
                    msgs.push(commit_at(lsn));
                }
                for e in feed(&mut p, &msgs, lsn) {
                    if let PipelineEvent::Transaction(b) = e {
                        prop_assert!(b.changes.len() <= max);
                        got.extend(b.changes.iter().map(describe));
                    }
                }
            }
            prop_assert_eq!(got, want);
        }

        /// Streamed transactions — split over stream blocks, interleaved with plain ones, with
        /// subtransactions that abort — deliver exactly the changes of the subtransactions that
        /// did not abort, in order, whether they stay in memory or spill after every record,
        /// and the pipeline's held memory stays under its budget.
        #[test]
        fn streamed_transactions_survive_spilling_and_aborts(
            ops in prop::collection::vec((row_op(), 0u32..3, any::<bool>()), 0..60),
            aborted in prop::collection::vec(any::<bool>(), 3),
            threshold in prop::sample::select(vec![0usize, 1, 300, 5000]),
            max in 1usize..12,
            plain in prop::collection::vec(row_op(), 0..6),
        ) {
            let store = MemorySpillStore::new();
            let counters = store.counters();
            let mut p = Pipeline::new(
                "s",
                PipelineConfig::default()
                    .with_max_batch_changes(max)
                    .with_spill_threshold_bytes(threshold),
            )
            .with_spill_store(store);
            let rel = table_t(vec![
                Column { flags: 1, name: "id".into(), type_oid: Oid(23), type_modifier: -1 },
                Column { flags: 0, name: "v".into(), type_oid: Oid(25), type_modifier: -1 },
            ]);
            let top = Xid(10);
            let sub = |k: u32| if k == 0 { top } else { Xid(10 + k) };
            let mut got = Vec::new();
            let mut want_plain = Vec::new();
            let mut want = Vec::new();
            let lsn = Lsn(0x100);
            // The relation, described before the stream.
            let mut msgs = vec![
                PgOutputMessage::Begin { final_lsn: Lsn(0x80), commit_time: 0, xid: Xid(1) },
                rel.clone(),
                commit_at(Lsn(0x80)),
                PgOutputMessage::StreamStart { xid: top, first_segment: true },
            ];
            for (op, k, new_block) in &ops {
                if *new_block {
                    msgs.push(PgOutputMessage::StreamStop);
                    msgs.push(PgOutputMessage::StreamStart { xid: top, first_segment: false });
                }
                let (mut msg, changes) = op.message_and_changes();
                match &mut msg {
                    PgOutputMessage::Insert { xid, .. }
                    | PgOutputMessage::Update { xid, .. }
                    | PgOutputMessage::Delete { xid, .. } => *xid = Some(sub(*k)),
                    _ => {}
                }
                msgs.push(msg);
                if *k == 0 || !aborted.get(*k as usize).copied().unwrap_or(false) {
                    want.extend(changes);
                }
            }
            msgs.push(PgOutputMessage::StreamStop);
            // A plain transaction between the stream's blocks and its commit.
            msgs.push(PgOutputMessage::Begin { final_lsn: Lsn(0x90), commit_time: 0, xid: Xid(2) });
            for op in &plain {
                let (msg, changes) = op.message_and_changes();
                msgs.push(msg);
                want_plain.extend(changes);
            }
            msgs.push(commit_at(Lsn(0x90)));
            for k in 1..3u32 {
                if aborted.get(k as usize).copied().unwrap_or(false) {
                    msgs.push(PgOutputMessage::StreamAbort {
                        xid: top,
                        subxid: sub(k),
                        abort_lsn: None,
                        abort_time: None,
                    });
                }
            }
            msgs.push(PgOutputMessage::StreamCommit {
                xid: top,
                flags: 0,
                commit_lsn: lsn,
                end_lsn: Lsn(lsn.0 + 8),
                commit_time: 0,
            });
            let mut peak = 0;
            let mut streamed = Vec::new();
            for m in &msgs {
                p.handle_xlog(&encoded(m), lsn, lsn).unwrap();
                peak = peak.max(p.held_bytes());
                while let Some(e) = p.poll_event() {
                    if let PipelineEvent::Transaction(b) = e {
                        prop_assert!(b.changes.len() <= max);
                        prop_assert_eq!(b.end_lsn.is_some(), b.last_chunk);
                        if b.kind == TransactionKind::Streamed {
                            prop_assert_eq!(b.xid, top);
                            for c in &b.changes {
                                prop_assert_eq!(c.tx().end_lsn, Some(Lsn(lsn.0 + 8)));
                            }
                            streamed.push(b.chunk_index);
                            got.extend(b.changes.iter().map(describe));
                        }
                    }
                }
            }
            prop_assert!(p.take_error().is_none());
            prop_assert_eq!(got, want.clone());
            prop_assert_eq!(streamed.clone(), (0..streamed.len() as u32).collect::<Vec<_>>());
            prop_assert_eq!(p.buffered_changes(), 0);
            prop_assert_eq!(p.held_bytes(), 0);
            if threshold == 1 && !ops.is_empty() {
                prop_assert!(counters.files() == 1 && counters.bytes() > 0);
                // Spilled after every record: what stays in memory is the bookkeeping.
                prop_assert!(peak < 4096, "peak {}", peak);
            }
            if threshold == 0 {
                prop_assert_eq!(counters.files(), 0);
            }
            let _ = want_plain;
        }

        /// A consumer that pulls one chunk at a time (as the driver does) gets the same events
        /// as one that drains everything at once, for any message sequence, also when payloads
        /// arrive while a held transaction is being read back.
        #[test]
        fn pulling_chunk_by_chunk_changes_nothing(
            msgs in prop::collection::vec(message().prop_map(|m| encoded(&m)), 0..80),
            max in 1usize..4,
            threshold in prop::sample::select(vec![0usize, 1, 200]),
            pulls in prop::collection::vec(0usize..3, 80),
        ) {
            let config = PipelineConfig::default()
                .with_max_batch_changes(max)
                .with_spill_threshold_bytes(threshold);
            let mut eager = Pipeline::new("s", config.clone());
            let mut lazy = Pipeline::new("s", config).with_spill_store(MemorySpillStore::new());
            let mut a = Vec::new();
            let mut b = Vec::new();
            let mut errored = false;
            for (i, payload) in msgs.iter().enumerate() {
                let lsn = Lsn(i as u64);
                let ea = eager.handle_xlog(payload, lsn, lsn);
                while let Some(e) = eager.poll_event() {
                    a.push(e);
                }
                let eb = lazy.handle_xlog(payload, lsn, lsn);
                // Pull at most a few chunks; the rest waits behind the next payload.
                for _ in 0..pulls.get(i).copied().unwrap_or(0) {
                    if lazy.has_backlog() && lazy.resume().is_err() {
                        break;
                    }
                    while let Some(e) = lazy.poll_ready_event() {
                        b.push(e);
                    }
                }
                while let Some(e) = lazy.poll_ready_event() {
                    b.push(e);
                }
                if ea.is_err() || eb.is_err() {
                    // An error ends the session: what came before it must agree.
                    errored = true;
                    break;
                }
            }
            while let Some(e) = lazy.poll_event() {
                b.push(e);
            }
            errored |= eager.take_error().is_some() | lazy.take_error().is_some();
            if errored {
                let n = a.len().min(b.len());
                prop_assert_eq!(&a[..n], &b[..n]);
            } else {
                prop_assert_eq!(a, b);
            }
        }
    }
}
