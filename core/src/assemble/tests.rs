//! The row fast paths of [`Pipeline::handle_xlog`] against the general path (every message
//! decoded whole, then handled): for any sequence of messages — well-formed or not, in or out
//! of transactions and stream blocks, with tuples that match their relation or not, corrupted
//! or cut short — both give the same results, events and counters.

use bytes::Bytes;
use proptest::prelude::*;

use super::{Pipeline, PipelineConfig};
use crate::lsn::Lsn;
use crate::pgoutput::{
    Column, ColumnValue, Oid, OldTuple, PgOutputMessage, RelationBody, ReplicaIdentity, TupleData,
    Xid, encode,
};

/// Type OIDs with a text value that parses and one that does not.
const TYPES: &[(u32, &[u8], &[u8])] = &[
    (20, b"9007199254740993", b"12x"),
    (23, b"-7", b""),
    (25, b"order 12 for customer 7 - gift wrap", b"\xff\xfe"),
    (1700, b"12.50", b"1.2.3"),
    (1184, b"2024-03-01 08:00:00+00", b"2024-13-01"),
    (16, b"t", b"maybe"),
    (3802, b"{\"a\": [1, null]}", b"{"),
    (1007, b"{1,NULL,3}", b"{1,"),
];

fn relation() -> impl Strategy<Value = PgOutputMessage> {
    (
        prop::collection::vec((0..TYPES.len(), any::<bool>()), 0..5),
        prop::sample::select(vec![
            ReplicaIdentity::Default,
            ReplicaIdentity::Full,
            ReplicaIdentity::Nothing,
        ]),
        prop::option::of((1u32..3).prop_map(Xid)),
    )
        .prop_map(|(cols, replica_identity, xid)| {
            PgOutputMessage::Relation(RelationBody {
                xid,
                oid: Oid(1),
                namespace: "public".into(),
                name: "t".into(),
                replica_identity,
                columns: cols
                    .iter()
                    .enumerate()
                    .map(|(i, &(t, key))| Column {
                        flags: u8::from(key),
                        name: format!("c{i}"),
                        type_oid: Oid(TYPES.get(t).map_or(25, |t| t.0)),
                        type_modifier: -1,
                    })
                    .collect(),
            })
        })
}

/// A column value: (kind, type, valid).
type Cell = (u8, usize, bool);

fn tuple() -> impl Strategy<Value = Vec<Cell>> {
    prop::collection::vec((0u8..8, 0..TYPES.len(), any::<bool>()), 0..5)
}

fn tuple_data(cells: &[Cell]) -> TupleData {
    TupleData::from_values(cells.iter().map(|&(kind, t, valid)| {
        let (_, good, bad) = TYPES.get(t).copied().unwrap_or((25, b"", b""));
        let data = if valid { good } else { bad };
        match kind {
            0 => ColumnValue::Null,
            1 => ColumnValue::UnchangedToast,
            2 => ColumnValue::Binary(data),
            _ => ColumnValue::Text(data),
        }
    }))
    .unwrap()
}

fn message() -> impl Strategy<Value = PgOutputMessage> {
    let xid = || prop::option::of((1u32..3).prop_map(Xid));
    let rel = || prop_oneof![8 => Just(Oid(1)), 1 => Just(Oid(2))];
    prop_oneof![
        2 => relation(),
        3 => (1u32..3).prop_map(|x| PgOutputMessage::Begin {
            final_lsn: Lsn(0x100),
            commit_time: 1,
            xid: Xid(x),
        }),
        3 => Just(PgOutputMessage::Commit {
            flags: 0,
            commit_lsn: Lsn(0x100),
            end_lsn: Lsn(0x108),
            commit_time: 1,
        }),
        1 => (1u32..3).prop_map(|x| PgOutputMessage::StreamStart {
            xid: Xid(x),
            first_segment: true,
        }),
        1 => Just(PgOutputMessage::StreamStop),
        1 => (1u32..3).prop_map(|x| PgOutputMessage::StreamCommit {
            xid: Xid(x),
            flags: 0,
            commit_lsn: Lsn(0x200),
            end_lsn: Lsn(0x208),
            commit_time: 1,
        }),
        8 => (xid(), rel(), tuple()).prop_map(|(xid, rel, new)| PgOutputMessage::Insert {
            xid,
            rel,
            new: tuple_data(&new),
        }),
        6 => (xid(), rel(), prop::option::of((any::<bool>(), tuple())), tuple()).prop_map(
            |(xid, rel, old, new)| PgOutputMessage::Update {
                xid,
                rel,
                old: old.map(|(key, t)| {
                    if key {
                        OldTuple::Key(tuple_data(&t))
                    } else {
                        OldTuple::Full(tuple_data(&t))
                    }
                }),
                new: tuple_data(&new),
            }
        ),
        3 => (xid(), rel(), any::<bool>(), tuple()).prop_map(|(xid, rel, key, old)| {
            PgOutputMessage::Delete {
                xid,
                rel,
                old: if key {
                    OldTuple::Key(tuple_data(&old))
                } else {
                    OldTuple::Full(tuple_data(&old))
                },
            }
        }),
    ]
}

/// A message's payload, perhaps with one byte changed, cut short, or with a byte after it.
fn payload() -> impl Strategy<Value = Bytes> {
    (
        message(),
        prop::option::weighted(0.15, (any::<prop::sample::Index>(), any::<u8>())),
        prop::option::weighted(0.1, any::<prop::sample::Index>()),
        prop::option::weighted(0.1, any::<u8>()),
    )
        .prop_map(|(msg, edit, cut, extra)| {
            let mut raw = encode::damaged(&msg, edit, cut);
            raw.extend(extra);
            Bytes::from(raw)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn row_fast_paths_match_the_general_path(
        payloads in prop::collection::vec(payload(), 1..40),
        max in 1usize..4,
    ) {
        let config = PipelineConfig::default().with_max_batch_changes(max);
        let mut fast = Pipeline::new("s", config.clone());
        let mut general = Pipeline::new("s", config);
        for (i, payload) in payloads.iter().enumerate() {
            let lsn = Lsn(i as u64);
            let a = fast.handle_payload::<true>(payload, lsn, lsn);
            let b = general.handle_payload::<false>(payload, lsn, lsn);
            prop_assert_eq!(&a, &b, "message {} {:?}", i, payload);
            let mut ea = Vec::new();
            while let Some(e) = fast.poll_event() {
                ea.push(format!("{e:?}"));
            }
            let mut eb = Vec::new();
            while let Some(e) = general.poll_event() {
                eb.push(format!("{e:?}"));
            }
            prop_assert_eq!(ea, eb, "message {}", i);
            prop_assert_eq!(fast.stats(), general.stats(), "message {}", i);
            if a.is_err() {
                fast.reset();
                general.reset();
            }
        }
    }
}
