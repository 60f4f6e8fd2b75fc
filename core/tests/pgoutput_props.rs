//! Property tests for the pgoutput decoder: arbitrary bytes never panic (in and out of stream
//! blocks), encode → decode is the identity for generated messages and sessions, and every
//! strict prefix of a valid message is an error. The tests sit in a module named `pgoutput`
//! so `cargo test pgoutput` selects them.
#![allow(missing_docs)]

mod pgoutput {
    use bytes::{Bytes, BytesMut};
    use pgcdc_core::Lsn;
    use pgcdc_core::pgoutput::{
        Column, ColumnValue, Decoder, Oid, OldTuple, PgOutputMessage, RelationBody, RelationCache,
        ReplicaIdentity, ReplicationMessage, SchemaChange, TupleData, Xid, encode, parse_copy_data,
    };
    use proptest::prelude::*;

    const TAGS: &[u8] = b"BCORYIUDTMSEcAbPKrp";

    // --------------------------------------------------------------------------- strategies

    fn name() -> impl Strategy<Value = String> {
        "[^\\x00]{0,10}"
    }

    fn lsn() -> impl Strategy<Value = Lsn> {
        any::<u64>().prop_map(Lsn)
    }

    fn xid() -> impl Strategy<Value = Xid> {
        any::<u32>().prop_map(Xid)
    }

    fn oid() -> impl Strategy<Value = Oid> {
        any::<u32>().prop_map(Oid)
    }

    fn tuple() -> impl Strategy<Value = TupleData> {
        prop::collection::vec((0u8..4, prop::collection::vec(any::<u8>(), 0..12)), 0..8).prop_map(
            |cols| {
                TupleData::from_values(cols.iter().map(|(k, data)| match k {
                    0 => ColumnValue::Null,
                    1 => ColumnValue::UnchangedToast,
                    2 => ColumnValue::Text(data),
                    _ => ColumnValue::Binary(data),
                }))
                .unwrap()
            },
        )
    }

    fn old_tuple() -> impl Strategy<Value = OldTuple> {
        prop_oneof![
            tuple().prop_map(OldTuple::Key),
            tuple().prop_map(OldTuple::Full)
        ]
    }

    fn identity() -> impl Strategy<Value = ReplicaIdentity> {
        prop_oneof![
            Just(ReplicaIdentity::Default),
            Just(ReplicaIdentity::Nothing),
            Just(ReplicaIdentity::Full),
            Just(ReplicaIdentity::Index),
        ]
    }

    fn column() -> impl Strategy<Value = Column> {
        (any::<u8>(), name(), oid(), any::<i32>()).prop_map(|(flags, name, ty, typmod)| Column {
            flags,
            name,
            type_oid: ty,
            type_modifier: typmod,
        })
    }

    fn relation(xid: Option<Xid>) -> impl Strategy<Value = RelationBody> {
        (
            oid(),
            name(),
            name(),
            identity(),
            prop::collection::vec(column(), 0..6),
        )
            .prop_map(move |(oid, namespace, name, replica_identity, columns)| {
                RelationBody {
                    xid,
                    oid,
                    namespace,
                    name,
                    replica_identity,
                    columns,
                }
            })
    }

    /// Messages that may carry the stream xid prefix, with the given prefix.
    fn change(xid: Option<Xid>) -> BoxedStrategy<PgOutputMessage> {
        prop_oneof![
            relation(xid).prop_map(PgOutputMessage::Relation),
            (oid(), name(), name()).prop_map(move |(oid, namespace, name)| {
                PgOutputMessage::Type {
                    xid,
                    oid,
                    namespace,
                    name,
                }
            }),
            (oid(), tuple()).prop_map(move |(rel, new)| PgOutputMessage::Insert { xid, rel, new }),
            (oid(), prop::option::of(old_tuple()), tuple()).prop_map(move |(rel, old, new)| {
                PgOutputMessage::Update { xid, rel, old, new }
            }),
            (oid(), old_tuple()).prop_map(move |(rel, old)| PgOutputMessage::Delete {
                xid,
                rel,
                old
            }),
            (
                prop::collection::vec(oid(), 0..5),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(move |(relations, cascade, restart_identity)| {
                    PgOutputMessage::Truncate {
                        xid,
                        relations,
                        cascade,
                        restart_identity,
                    }
                }),
            (
                any::<bool>(),
                lsn(),
                name(),
                prop::collection::vec(any::<u8>(), 0..16)
            )
                .prop_map(move |(transactional, lsn, prefix, content)| {
                    PgOutputMessage::Message {
                        xid,
                        transactional,
                        lsn,
                        prefix,
                        content: Bytes::from(content),
                    }
                }),
            (lsn(), name())
                .prop_map(|(origin_lsn, name)| PgOutputMessage::Origin { origin_lsn, name }),
        ]
        .boxed()
    }

    /// Messages that only occur outside a stream block (except Stream Start/Stop).
    fn control() -> BoxedStrategy<PgOutputMessage> {
        prop_oneof![
            (lsn(), any::<i64>(), xid()).prop_map(|(final_lsn, commit_time, xid)| {
                PgOutputMessage::Begin {
                    final_lsn,
                    commit_time,
                    xid,
                }
            }),
            (lsn(), lsn(), any::<i64>()).prop_map(|(commit_lsn, end_lsn, commit_time)| {
                PgOutputMessage::Commit {
                    flags: 0,
                    commit_lsn,
                    end_lsn,
                    commit_time,
                }
            }),
            (xid(), lsn(), lsn(), any::<i64>()).prop_map(
                |(xid, commit_lsn, end_lsn, commit_time)| PgOutputMessage::StreamCommit {
                    xid,
                    flags: 0,
                    commit_lsn,
                    end_lsn,
                    commit_time,
                }
            ),
            (xid(), xid(), prop::option::of((lsn(), any::<i64>()))).prop_map(
                |(xid, subxid, parallel)| PgOutputMessage::StreamAbort {
                    xid,
                    subxid,
                    abort_lsn: parallel.map(|p| p.0),
                    abort_time: parallel.map(|p| p.1),
                }
            ),
            (lsn(), lsn(), any::<i64>(), xid(), name()).prop_map(
                |(prepare_lsn, end_lsn, prepare_time, xid, gid)| PgOutputMessage::BeginPrepare {
                    prepare_lsn,
                    end_lsn,
                    prepare_time,
                    xid,
                    gid,
                }
            ),
            (any::<bool>(), lsn(), lsn(), any::<i64>(), xid(), name()).prop_map(
                |(streamed, prepare_lsn, end_lsn, prepare_time, xid, gid)| if streamed {
                    PgOutputMessage::StreamPrepare {
                        flags: 0,
                        prepare_lsn,
                        end_lsn,
                        prepare_time,
                        xid,
                        gid,
                    }
                } else {
                    PgOutputMessage::Prepare {
                        flags: 0,
                        prepare_lsn,
                        end_lsn,
                        prepare_time,
                        xid,
                        gid,
                    }
                }
            ),
            (lsn(), lsn(), any::<i64>(), xid(), name()).prop_map(
                |(commit_lsn, end_lsn, commit_time, xid, gid)| PgOutputMessage::CommitPrepared {
                    flags: 0,
                    commit_lsn,
                    end_lsn,
                    commit_time,
                    xid,
                    gid,
                }
            ),
            (lsn(), lsn(), any::<i64>(), any::<i64>(), xid(), name()).prop_map(
                |(prepare_end_lsn, rollback_end_lsn, prepare_time, rollback_time, xid, gid)| {
                    PgOutputMessage::RollbackPrepared {
                        flags: 0,
                        prepare_end_lsn,
                        rollback_end_lsn,
                        prepare_time,
                        rollback_time,
                        xid,
                        gid,
                    }
                }
            ),
            (xid(), any::<bool>()).prop_map(|(xid, first_segment)| {
                PgOutputMessage::StreamStart { xid, first_segment }
            }),
        ]
        .boxed()
    }

    /// Any single message together with whether it must be decoded inside a stream block.
    fn any_message() -> impl Strategy<Value = (PgOutputMessage, bool)> {
        prop_oneof![
            change(None).prop_map(|m| (m, false)),
            xid()
                .prop_flat_map(|x| change(Some(x)))
                .prop_map(|m| (m, true)),
            control().prop_map(|m| (m, false)),
            Just((PgOutputMessage::StreamStop, true)),
        ]
    }

    /// A session: plain messages and whole stream blocks, interleaved.
    fn session() -> impl Strategy<Value = Vec<PgOutputMessage>> {
        let block = (xid(), any::<bool>()).prop_flat_map(|(top, first)| {
            prop::collection::vec(
                prop_oneof![Just(top), xid()].prop_flat_map(|x| change(Some(x))),
                0..5,
            )
            .prop_map(move |body| {
                let mut v = vec![PgOutputMessage::StreamStart {
                    xid: top,
                    first_segment: first,
                }];
                v.extend(body);
                v.push(PgOutputMessage::StreamStop);
                v
            })
        });
        let plain = prop_oneof![
            change(None),
            control().prop_filter("Stream Start only begins blocks", |m| {
                !matches!(m, PgOutputMessage::StreamStart { .. })
            })
        ]
        .prop_map(|m| vec![m]);
        prop::collection::vec(prop_oneof![plain, block], 0..12)
            .prop_map(|parts| parts.into_iter().flatten().collect())
    }

    fn encoded(m: &PgOutputMessage) -> Bytes {
        let mut buf = BytesMut::new();
        encode::message(m, &mut buf).unwrap();
        buf.freeze()
    }

    /// A decoder in the given state (inside the block of xid 1, or outside).
    fn decoder(in_stream: bool) -> Decoder {
        let mut d = Decoder::new();
        if in_stream {
            d.decode(encoded(&PgOutputMessage::StreamStart {
                xid: Xid(1),
                first_segment: true,
            }))
            .unwrap();
        }
        d
    }

    // --------------------------------------------------------------------------- properties

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn pgoutput_arbitrary_bytes_never_panic(
            tag in prop::sample::select(TAGS),
            with_tag in any::<bool>(),
            body in prop::collection::vec(any::<u8>(), 0..96),
        ) {
            let mut bytes = body;
            if with_tag {
                bytes.insert(0, tag);
            }
            let payload = Bytes::from(bytes);
            for in_stream in [false, true] {
                let mut d = decoder(in_stream);
                let before = d.stream_xid();
                if d.decode(payload.clone()).is_err() {
                    prop_assert_eq!(d.stream_xid(), before);
                }
            }
            let _ = parse_copy_data(payload);
        }

        #[test]
        fn pgoutput_mutated_messages_never_panic(
            (m, in_stream) in any_message(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encoded(&m).to_vec();
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = decoder(in_stream).decode(Bytes::from(bytes.clone()));
            let _ = decoder(!in_stream).decode(Bytes::from(bytes));
        }

        #[test]
        fn pgoutput_round_trip((m, in_stream) in any_message()) {
            let mut d = decoder(in_stream);
            let decoded = d.decode(encoded(&m)).unwrap();
            prop_assert_eq!(&decoded, &m);
            // Re-encoding the decoded message gives the same bytes.
            prop_assert_eq!(encoded(&decoded), encoded(&m));
            let expect_open = match m {
                PgOutputMessage::StreamStart { xid, .. } => Some(xid),
                PgOutputMessage::StreamStop => None,
                _ => in_stream.then_some(Xid(1)),
            };
            prop_assert_eq!(d.stream_xid(), expect_open);
        }

        #[test]
        fn pgoutput_session_round_trip(messages in session()) {
            let mut d = Decoder::new();
            for m in &messages {
                prop_assert_eq!(&d.decode(encoded(m)).unwrap(), m);
            }
            prop_assert!(!d.in_stream_block());
        }

        #[test]
        fn pgoutput_truncation_is_an_error((m, in_stream) in any_message()) {
            let full = encoded(&m);
            for n in 0..full.len() {
                // A parallel Stream Abort cut after its xids is a valid proto 2 Stream Abort.
                if m.type_byte() == b'A' && n == 9 {
                    continue;
                }
                let mut d = decoder(in_stream);
                let before = d.stream_xid();
                let r = d.decode(full.slice(..n));
                prop_assert!(r.is_err(), "prefix {} of {:?} decoded as {:?}", n, m, r);
                prop_assert_eq!(d.stream_xid(), before);
            }
        }

        #[test]
        fn pgoutput_copy_data_round_trip(
            start in any::<u64>(),
            end in any::<u64>(),
            time in any::<i64>(),
            reply in any::<bool>(),
            data in prop::collection::vec(any::<u8>(), 0..32),
            keepalive in any::<bool>(),
        ) {
            let m = if keepalive {
                ReplicationMessage::Keepalive { wal_end: Lsn(end), send_time: time, reply_requested: reply }
            } else {
                ReplicationMessage::XLogData {
                    wal_start: Lsn(start), wal_end: Lsn(end), send_time: time, data: Bytes::from(data),
                }
            };
            let mut buf = BytesMut::new();
            encode::replication_message(&m, &mut buf);
            let full = buf.freeze();
            prop_assert_eq!(parse_copy_data(full.clone()).unwrap(), m);
            let header = if keepalive { full.len() } else { 25 };
            for n in 0..header {
                prop_assert!(parse_copy_data(full.slice(..n)).is_err());
            }
        }

        #[test]
        fn pgoutput_tuple_from_values_reads_back(t in tuple()) {
            let values: Vec<ColumnValue<'_>> = t.iter().collect();
            let rebuilt = TupleData::from_values(values.iter().copied()).unwrap();
            prop_assert_eq!(&rebuilt, &t);
            prop_assert_eq!(t.len(), values.len());
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(t.get(i), Some(*v));
                let owned = t.value_bytes(i);
                prop_assert_eq!(owned.as_deref(), v.data());
            }
            prop_assert_eq!(t.iter().rev().count(), t.len());
        }

        #[test]
        fn pgoutput_relation_cache_upsert_is_idempotent(
            a in relation(None),
            b in relation(None),
        ) {
            let mut b = b;
            b.oid = a.oid;
            let mut cache = RelationCache::new();
            prop_assert_eq!(cache.upsert(a.clone()), SchemaChange::New);
            prop_assert_eq!(cache.upsert(a.clone()), SchemaChange::Unchanged);
            match cache.upsert(b.clone()) {
                SchemaChange::Unchanged => prop_assert!(a.same_schema(&b)),
                SchemaChange::Changed(diff) => {
                    prop_assert!(!a.same_schema(&b));
                    for n in &diff.added {
                        prop_assert!(b.column_index(n).is_some() && a.column_index(n).is_none());
                    }
                    for n in &diff.dropped {
                        prop_assert!(a.column_index(n).is_some() && b.column_index(n).is_none());
                    }
                }
                SchemaChange::New => prop_assert!(false, "second upsert reported New"),
            }
            let expected = if a.same_schema(&b) { &a } else { &b };
            prop_assert_eq!(cache.get(a.oid).map(|r| r.as_ref()), Some(expected));
        }
    }
}
