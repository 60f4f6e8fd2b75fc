//! User-defined types read from the catalog during setup.

use super::*;
use crate::model::SourceChange;
use crate::replication::{Phase, user_types_query};
use crate::value::{Oid, TypeKind, Value};

const MOOD: u32 = 16500;
const MOOD_ARRAY: u32 = 16499;
const PRICE: u32 = 16510;
const ITEMS: Oid = Oid(16600);

/// `CREATE TYPE mood AS ENUM (…)` (with its array `_mood`) and
/// `CREATE DOMAIN price AS numeric`, as the user types query returns them.
fn catalog() -> Vec<[&'static str; 9]> {
    vec![
        ["16499", "public", "_mood", "b", "A", "16500", "0", "0", "0"],
        ["16500", "public", "mood", "e", "E", "0", "0", "0", "0"],
        ["16510", "public", "price", "d", "N", "0", "1700", "0", "0"],
    ]
}

fn server() -> FakeServer {
    let mut s = FakeServer::new("15.18");
    s.user_types = catalog();
    s
}

/// A transaction inserting into `public.items (id int4, m mood, ms mood[], p price)`, with
/// the Type messages pgoutput sends before the Relation (for a domain: the base type's name).
fn items_txn(values: [ColumnValue<'_>; 4]) -> Vec<u8> {
    let column = |flags, name: &str, oid| Column {
        flags,
        name: name.into(),
        type_oid: Oid(oid),
        type_modifier: -1,
    };
    let mut v = xlog(
        Lsn(0x2000),
        &PgOutputMessage::Begin {
            final_lsn: Lsn(0x2100),
            commit_time: 0,
            xid: Xid(700),
        },
    );
    for (oid, ns, name) in [
        (MOOD, "public", "mood"),
        (MOOD_ARRAY, "public", "_mood"),
        (PRICE, "pg_catalog", "numeric"),
    ] {
        v.extend(xlog(
            Lsn::ZERO,
            &PgOutputMessage::Type {
                xid: None,
                oid: Oid(oid),
                namespace: ns.into(),
                name: name.into(),
            },
        ));
    }
    v.extend(xlog(
        Lsn::ZERO,
        &PgOutputMessage::Relation(RelationBody {
            xid: None,
            oid: ITEMS,
            namespace: "public".into(),
            name: "items".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column(1, "id", 23),
                column(0, "m", MOOD),
                column(0, "ms", MOOD_ARRAY),
                column(0, "p", PRICE),
            ],
        }),
    ));
    v.extend(xlog(
        Lsn(0x2008),
        &PgOutputMessage::Insert {
            xid: None,
            rel: ITEMS,
            new: TupleData::from_values(values).unwrap(),
        },
    ));
    v.extend(xlog(Lsn(0x2130), &commit_msg(0x2100, 0x2130)));
    v
}

fn text_row() -> [ColumnValue<'static>; 4] {
    [
        ColumnValue::Text(b"1"),
        ColumnValue::Text(b"happy"),
        ColumnValue::Text(b"{sad,ok}"),
        ColumnValue::Text(b"12.50"),
    ]
}

/// The properties of the one insert delivered since the last call.
fn inserted(h: &mut Harness) -> crate::model::ElementPropertyMap {
    let evs = h.events();
    let changes: Vec<_> = evs
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Transaction(b) => Some(b.changes),
            _ => None,
        })
        .flatten()
        .collect();
    let [SourceChange::Insert { element, .. }] = &changes[..] else {
        panic!("one insert expected: {changes:?}")
    };
    element.properties().clone()
}

fn mood(label: &str) -> Value {
    Value::Enum {
        type_oid: Oid(MOOD),
        label: label.into(),
    }
}

#[test]
fn the_setup_reads_user_types_after_primary_keys() {
    let mut h = Harness::new(ReplicationOptions::default(), server());
    h.connect().unwrap();
    let q = h.queries();
    let at = |needle: &str| q.iter().position(|c| c.contains(needle)).unwrap();
    let types = at("WITH RECURSIVE seed");
    assert_eq!(q[types], user_types_query(150018));
    assert_eq!(types, at("pg_index") + 1, "{q:?}");
    assert_eq!(types + 1, at("pg_replication_slots"), "{q:?}");
    assert_eq!(h.session.phase(), Phase::Streaming);
    let reg = h.session.pipeline().type_registry();
    assert_eq!(reg.len(), 3);
    let m = reg.get(Oid(MOOD)).unwrap();
    assert_eq!((m.namespace.as_str(), m.name.as_str()), ("public", "mood"));
    assert_eq!(m.kind, TypeKind::Enum);
    assert_eq!(
        reg.get(Oid(MOOD_ARRAY)).unwrap().kind,
        TypeKind::Array { element: Oid(MOOD) }
    );
    assert_eq!(
        reg.get(Oid(PRICE)).unwrap().kind,
        TypeKind::Domain { base: Oid::NUMERIC }
    );
    let evs = h.events();
    assert!(
        !evs.iter().any(|e| matches!(e, SessionEvent::Warning(_))),
        "{evs:?}"
    );
}

#[test]
fn an_enum_column_decodes_to_a_typed_enum() {
    let mut h = Harness::new(ReplicationOptions::default(), server());
    h.stream();
    h.feed(&items_txn(text_row())).unwrap();
    let p = inserted(&mut h);
    assert_eq!(p.get("m"), Some(&mood("happy")));
    let Some(Value::Array(a)) = p.get("ms") else {
        panic!("{p:?}")
    };
    assert_eq!(a.element_type, Oid(MOOD));
    assert_eq!(a.elements, [mood("sad"), mood("ok")]);
    let Some(Value::Numeric(n)) = p.get("p") else {
        panic!("{p:?}")
    };
    assert_eq!(n.to_string(), "12.50");
    // The Type messages did not override what the catalog said.
    assert_eq!(
        h.session
            .pipeline()
            .type_registry()
            .get(Oid(MOOD))
            .unwrap()
            .kind,
        TypeKind::Enum
    );
}

#[test]
fn an_enum_column_decodes_to_a_typed_enum_in_binary_mode() {
    let o = ReplicationOptions {
        binary: true,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, server());
    h.stream();
    // An enum's binary form is its label (the other columns as text: the protocol marks the
    // format of each column).
    let row = [
        ColumnValue::Binary(&[0, 0, 0, 1]),
        ColumnValue::Binary(b"ok"),
        ColumnValue::Text(b"{happy}"),
        ColumnValue::Text(b"1"),
    ];
    h.feed(&items_txn(row)).unwrap();
    let p = inserted(&mut h);
    assert_eq!(p.get("id"), Some(&Value::Int4(1)));
    assert_eq!(p.get("m"), Some(&mood("ok")));
}

#[test]
fn without_the_catalog_an_enum_stays_unknown() {
    let o = ReplicationOptions {
        load_user_types: false,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, server());
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        !q.iter().any(|c| c.contains("pg_type")),
        "no user types query: {q:?}"
    );
    h.events();
    h.feed(&items_txn(text_row())).unwrap();
    let p = inserted(&mut h);
    assert!(
        matches!(p.get("m"), Some(Value::Unknown { text, .. }) if text == "happy"),
        "{p:?}"
    );
}

#[test]
fn a_failed_user_types_query_is_a_warning() {
    let mut s = server();
    s.fail(
        "WITH RECURSIVE",
        "42501",
        "permission denied for table pg_type",
    );
    let mut h = Harness::new(ReplicationOptions::default(), s);
    h.connect().unwrap();
    assert_eq!(h.session.phase(), Phase::Streaming);
    assert!(h.session.pipeline().type_registry().is_empty());
    let evs = h.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, SessionEvent::Warning(w) if w.contains("user-defined types") && w.contains("permission denied"))
        ),
        "{evs:?}"
    );
}

#[test]
fn a_malformed_user_types_result_is_a_warning() {
    let mut s = server();
    s.user_types
        .push(["x", "public", "bad", "e", "E", "0", "0", "0", "0"]);
    let mut h = Harness::new(ReplicationOptions::default(), s);
    h.connect().unwrap();
    assert_eq!(h.session.phase(), Phase::Streaming);
    // The rows before the bad one are registered.
    assert_eq!(h.session.pipeline().type_registry().len(), 3);
    let evs = h.events();
    assert!(
        evs.iter()
            .any(|e| matches!(e, SessionEvent::Warning(w) if w.contains("user-defined types"))),
        "{evs:?}"
    );
}

#[test]
fn the_query_follows_the_server_version() {
    let q14 = user_types_query(140000);
    let q13 = user_types_query(130012);
    assert!(q14.contains("rngmultitypid"), "{q14}");
    assert!(q14.contains("'m'"), "{q14}");
    assert!(!q13.contains("rngmultitypid"), "{q13}");
    assert_eq!(user_types_query(180000), q14);
    assert_eq!(user_types_query(100000), q13);
    for q in [q13, q14] {
        assert!(
            q.contains(&format!("LIMIT {}", crate::replication::USER_TYPES_LIMIT)),
            "{q}"
        );
        for col in USER_TYPE_COLUMNS {
            assert!(q.contains(col), "{col}: {q}");
        }
    }
}
