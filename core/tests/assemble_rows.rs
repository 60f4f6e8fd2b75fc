//! Row changes through the pipeline: element ids and key precedence, labels, replica identity
//! DEFAULT and FULL, key changes, unchanged TOAST, truncate, schema changes, values, errors.
//! The tests sit in a module named `assemble` so `cargo test assemble` selects them.
#![allow(missing_docs)]

mod assemble_support;

mod assemble {
    use std::sync::Arc;

    use pgcdc_core::Lsn;
    use pgcdc_core::assemble::{
        AssembleError, KeyConfig, KeySource, Pipeline, PipelineConfig, PipelineEvent,
    };
    use pgcdc_core::model::{ElementValue, SourceChange};
    use pgcdc_core::pgoutput::{Oid, PgOutputMessage, ReplicaIdentity, Xid};
    use pgcdc_core::value::Numeric;

    use crate::assemble_support::*;

    fn text(s: &str) -> ElementValue {
        ElementValue::Text(s.into())
    }

    fn names(v: &[Arc<str>]) -> Vec<&str> {
        v.iter().map(|s| &**s).collect()
    }

    #[test]
    fn pipeline_and_events_are_send() {
        fn send<T: Send>() {}
        send::<Pipeline>();
        send::<PipelineEvent>();
    }

    // ------------------------------------------------------------------ DEFAULT identity

    #[test]
    fn insert_default_identity() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(752, 0x1942A38, 0),
            users(),
            insert(100, &[T("1"), T("ann"), N]),
            commit(0x1942A38, 0x1942A68, 0),
        ]);
        let changes = f.one_txn();
        let [
            SourceChange::Insert {
                element,
                unchanged_toast,
                tx,
            },
        ] = &changes[..]
        else {
            panic!("{changes:?}")
        };
        let md = element.metadata();
        assert_eq!(&*md.reference.source_id, "src");
        assert_eq!(&*md.reference.element_id, "users:1");
        assert_eq!(names(&md.labels), ["users"]);
        assert_eq!(md.effective_from, 946_684_800_000_000_000);
        let props = element.properties();
        assert_eq!(props.get("id"), Some(&ElementValue::Int4(1)));
        assert_eq!(props.get("name"), Some(&text("ann")));
        assert_eq!(props.get("big"), Some(&ElementValue::Null));
        assert_eq!(
            props.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["id", "name", "big"]
        );
        assert!(unchanged_toast.is_empty());
        assert_eq!(tx.xid, Xid(752));
        assert_eq!(tx.commit_lsn, Lsn(0x1942A38));
        assert_eq!(tx.end_lsn, Some(Lsn(0x1942A68)));
        assert_eq!(f.p.key_source(Oid(100)), Some(KeySource::ReplicaIdentity));
    }

    #[test]
    fn update_and_delete_default_identity() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            update(100, None, &[T("1"), T("bob"), T("x")]),
            delete(100, key(&[T("1"), N, N])),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["update users:1", "delete users:1"]);
        let SourceChange::Update { element, old, .. } = &changes[0] else {
            panic!()
        };
        assert_eq!(element.properties().get("name"), Some(&text("bob")));
        assert_eq!(old, &None);
        let SourceChange::Delete { old, metadata, .. } = &changes[1] else {
            panic!()
        };
        // A K tuple carries only the key columns; the NULL placeholders are not properties.
        assert_eq!(old.len(), 1);
        assert_eq!(old.get("id"), Some(&ElementValue::Int4(1)));
        assert_eq!(names(&metadata.labels), ["users"]);
    }

    #[test]
    fn key_change_default_identity_is_delete_then_insert() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            update(100, Some(key(&[T("2"), N, N])), &[T("10"), T("b"), T("y")]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["delete users:2", "insert users:10"]);
        let SourceChange::Insert { element, .. } = &changes[1] else {
            panic!()
        };
        assert_eq!(element.properties().get("name"), Some(&text("b")));
    }

    #[test]
    fn old_key_with_same_id_is_an_update() {
        // PostgreSQL also sends K when a key value is stored externally and did not change.
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            update(100, Some(key(&[T("2"), N, N])), &[T("2"), T("b"), T("y")]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["update users:2"]);
        let SourceChange::Update { old: Some(old), .. } = &changes[0] else {
            panic!()
        };
        assert_eq!(old.get("id"), Some(&ElementValue::Int4(2)));
        assert_eq!(old.len(), 1);
    }

    // --------------------------------------------------------------------- FULL identity

    #[test]
    fn full_identity_update_delete_and_key_change() {
        let mut f = Feed::default_config();
        f.p.set_primary_key("items", vec!["id".into()]);
        f.ok(&[
            begin(1, 0x100, 0),
            items_full(),
            update(
                200,
                Some(full(&[T("1"), T("a"), T("x")])),
                &[T("1"), T("b"), T("x")],
            ),
            update(
                200,
                Some(full(&[T("1"), T("b"), T("x")])),
                &[T("5"), T("b"), T("x")],
            ),
            delete(200, full(&[T("5"), T("b"), T("x")])),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(
            summary(&changes),
            [
                "update items:1",
                "delete items:1",
                "insert items:5",
                "delete items:5"
            ]
        );
        let SourceChange::Update {
            element,
            old: Some(old),
            ..
        } = &changes[0]
        else {
            panic!()
        };
        assert_eq!(old.get("name"), Some(&text("a")));
        assert_eq!(old.len(), 3);
        assert_eq!(element.properties().get("name"), Some(&text("b")));
        let SourceChange::Delete { old, .. } = &changes[3] else {
            panic!()
        };
        assert_eq!(old.len(), 3);
        assert_eq!(f.p.key_source(Oid(200)), Some(KeySource::PrimaryKey));
    }

    #[test]
    fn old_values_can_be_switched_off() {
        let mut f = Feed::new(PipelineConfig::default().with_include_old_values(false));
        f.p.set_primary_key(Oid(200), vec!["id".into()]);
        f.ok(&[
            begin(1, 0x100, 0),
            items_full(),
            update(
                200,
                Some(full(&[T("1"), T("a"), T("x")])),
                &[T("1"), T("b"), T("x")],
            ),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert!(matches!(
            &changes[0],
            SourceChange::Update { old: None, .. }
        ));
    }

    // -------------------------------------------------------------------- unchanged TOAST

    #[test]
    fn unchanged_toast_default_identity_is_omitted_and_listed() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            update(100, None, &[T("1"), T("bob"), U]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        let SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } = &changes[0]
        else {
            panic!()
        };
        assert_eq!(names(unchanged_toast), ["big"]);
        assert!(!element.properties().contains_key("big"));
        assert_eq!(element.properties().len(), 2);
    }

    #[test]
    fn unchanged_toast_full_identity_is_filled_from_old_row() {
        let mut f = Feed::default_config();
        f.p.set_primary_key("public.items", vec!["id".into()]);
        f.ok(&[
            begin(1, 0x100, 0),
            items_full(),
            update(
                200,
                Some(full(&[T("1"), T("a"), T("huge value")])),
                &[T("1"), T("b"), U],
            ),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        let SourceChange::Update {
            element,
            unchanged_toast,
            ..
        } = &changes[0]
        else {
            panic!()
        };
        assert!(unchanged_toast.is_empty());
        assert_eq!(element.properties().get("big"), Some(&text("huge value")));
    }

    #[test]
    fn unchanged_toast_after_key_change_is_listed_on_the_insert() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            update(100, Some(key(&[T("1"), N, N])), &[T("2"), T("b"), U]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["delete users:1", "insert users:2"]);
        let SourceChange::Insert {
            unchanged_toast, ..
        } = &changes[1]
        else {
            panic!()
        };
        assert_eq!(names(unchanged_toast), ["big"]);
    }

    // -------------------------------------------------------------------------- element ids

    #[test]
    fn composite_key_escaping_and_nulls() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            relation(
                300,
                "public",
                "pairs",
                ReplicaIdentity::Index,
                vec![
                    col("a", TEXT, true),
                    col("b", TEXT, true),
                    col("v", TEXT, false),
                ],
            ),
            insert(300, &[T("x_y"), T("p:q\\r"), T("v")]),
            insert(300, &[T("x"), T("y_z"), T("v")]),
            insert(300, &[T("x_y"), T("z"), T("v")]),
            insert(300, &[N, T("\\N"), T("v")]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(
            summary(&changes),
            [
                "insert pairs:x\\_y_p\\:q\\\\r",
                // Without escaping, these two would both be `pairs:x_y_z`.
                "insert pairs:x_y\\_z",
                "insert pairs:x\\_y_z",
                // SQL NULL versus the text `\N`.
                "insert pairs:\\N_\\\\N",
            ]
        );
    }

    #[test]
    fn key_precedence_configured_over_primary_key_over_replica_identity() {
        let keys = KeyConfig::new()
            .with_table("public.a", ["email"])
            .with_table("c", ["missing"]);
        let mut f = Feed::new(PipelineConfig::default().with_keys(keys));
        f.p.set_primary_key("a", vec!["code".into()]);
        f.p.set_primary_key("b", vec!["code".into()]);
        let cols = || {
            vec![
                col("id", INT4, true),
                col("code", TEXT, false),
                col("email", TEXT, false),
            ]
        };
        f.ok(&[
            begin(1, 0x100, 0),
            relation(1, "public", "a", ReplicaIdentity::Default, cols()),
            relation(2, "public", "b", ReplicaIdentity::Default, cols()),
            relation(3, "public", "c", ReplicaIdentity::Default, cols()),
            insert(1, &[T("1"), T("K1"), T("a@x")]),
            insert(2, &[T("2"), T("K2"), T("b@x")]),
            insert(3, &[T("3"), T("K3"), T("c@x")]),
            commit(0x100, 0x110, 0),
        ]);
        let (batches, warnings) = f.drain();
        assert_eq!(
            summary(&batches[0].changes),
            ["insert a:a@x", "insert b:K2", "insert c:3"]
        );
        assert_eq!(f.p.key_source(Oid(1)), Some(KeySource::Configured));
        assert_eq!(f.p.key_source(Oid(2)), Some(KeySource::PrimaryKey));
        assert_eq!(f.p.key_source(Oid(3)), Some(KeySource::ReplicaIdentity));
        // The configured key of `c` names a column that does not exist; configured and primary
        // keys outside the replica identity are reported too.
        assert!(
            warnings.iter().any(|w| w.contains("missing")),
            "{warnings:?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("replica identity")),
            "{warnings:?}"
        );
    }

    #[test]
    fn primary_key_set_later_applies_to_known_relations() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            insert(100, &[T("1"), T("a"), N]),
        ]);
        f.p.set_primary_key(Oid(100), vec!["name".into()]);
        f.ok(&[insert(100, &[T("2"), T("b"), N]), commit(0x100, 0x110, 0)]);
        let (batches, _) = f.drain();
        assert_eq!(
            summary(&batches[0].changes),
            ["insert users:1", "insert users:b"]
        );
    }

    #[test]
    fn uuid_fallback_emits_a_warning_once() {
        let mut n = 0u128;
        let p = Pipeline::new("src", PipelineConfig::default()).with_id_generator(move || {
            n += 1;
            n
        });
        let mut f = Feed::with(p);
        let logs = || {
            relation(
                400,
                "public",
                "logs",
                ReplicaIdentity::Nothing,
                vec![col("msg", TEXT, false)],
            )
        };
        f.ok(&[
            begin(1, 0x100, 0),
            logs(),
            insert(400, &[T("a")]),
            logs(),
            insert(400, &[T("a")]),
            commit(0x100, 0x110, 0),
        ]);
        let (batches, warnings) = f.drain();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("logs"));
        assert_eq!(
            summary(&batches[0].changes),
            [
                "insert logs:00000000-0000-4000-8000-000000000001",
                "insert logs:00000000-0000-4000-8000-000000000002"
            ]
        );
        assert_eq!(f.p.key_source(Oid(400)), Some(KeySource::Generated));
        assert_eq!(f.p.stats().generated_ids, 2);
    }

    #[test]
    fn full_identity_without_primary_key_falls_back_to_generated_ids() {
        let mut f = Feed::default_config();
        f.ok(&[begin(1, 0x100, 0), items_full()]);
        let (_, warnings) = f.drain();
        assert_eq!(warnings.len(), 1);
        assert_eq!(f.p.key_source(Oid(200)), Some(KeySource::Generated));
        // Updates with an old row never turn into delete + insert of random ids.
        f.ok(&[
            update(
                200,
                Some(full(&[T("1"), T("a"), T("x")])),
                &[T("1"), T("b"), T("x")],
            ),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind(), "update");
    }

    // ------------------------------------------------------------------------------ labels

    #[test]
    fn labels_are_schema_qualified_outside_public() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            relation(
                500,
                "app",
                "orders",
                ReplicaIdentity::Default,
                vec![col("id", INT4, true)],
            ),
            insert(500, &[T("7")]),
            users(),
            insert(100, &[T("1"), N, N]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["insert app.orders:7", "insert users:1"]);
        assert_eq!(
            names(&changes[0].metadata().unwrap().labels),
            ["app.orders"]
        );
        assert_eq!(f.p.label(Oid(500)).map(|l| &**l), Some("app.orders"));
    }

    // ---------------------------------------------------------------------------- truncate

    #[test]
    fn truncate_carries_labels_and_options() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            relation(
                500,
                "app",
                "orders",
                ReplicaIdentity::Default,
                vec![col("id", INT4, true)],
            ),
            PgOutputMessage::Truncate {
                xid: None,
                relations: vec![Oid(100), Oid(500)],
                cascade: true,
                restart_identity: true,
            },
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        let [
            SourceChange::Truncate {
                labels,
                relations,
                cascade: true,
                restart_identity: true,
                tx,
            },
        ] = &changes[..]
        else {
            panic!("{changes:?}")
        };
        assert_eq!(names(labels), ["users", "app.orders"]);
        assert_eq!(relations, &[Oid(100), Oid(500)]);
        assert_eq!(tx.end_lsn, Some(Lsn(0x110)));
    }

    // ----------------------------------------------------------------------- schema change

    #[test]
    fn relation_change_is_a_schema_change_without_restart() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            insert(100, &[T("1"), T("a"), N]),
            commit(0x100, 0x110, 0),
        ]);
        assert_eq!(f.one_txn().len(), 1);
        // An identical repeat (as after TRUNCATE or a reconnect) is no change.
        f.ok(&[
            begin(2, 0x200, 0),
            users(),
            insert(100, &[T("2"), T("b"), N]),
            commit(0x200, 0x210, 0),
        ]);
        assert_eq!(summary(&f.one_txn()), ["insert users:2"]);
        // ALTER TABLE users DROP big, ALTER name TYPE int4, ADD score numeric.
        f.ok(&[
            begin(3, 0x300, 0),
            relation(
                100,
                "public",
                "users",
                ReplicaIdentity::Default,
                vec![
                    col("id", INT4, true),
                    col("name", INT4, false),
                    col("score", NUMERIC, false),
                ],
            ),
            insert(100, &[T("3"), T("42"), T("1.50")]),
            commit(0x300, 0x310, 0),
        ]);
        let changes = f.one_txn();
        assert_eq!(summary(&changes), ["schema_change", "insert users:3"]);
        let SourceChange::SchemaChange {
            label,
            diff,
            relation,
            ..
        } = &changes[0]
        else {
            panic!()
        };
        assert_eq!(&**label, "users");
        assert_eq!(diff.added, ["score"]);
        assert_eq!(diff.dropped, ["big"]);
        assert_eq!(diff.retyped, [("name".to_owned(), Oid(TEXT), Oid(INT4))]);
        assert_eq!(relation.columns.len(), 3);
        let SourceChange::Insert { element, .. } = &changes[1] else {
            panic!()
        };
        assert_eq!(
            element.properties().get("name"),
            Some(&ElementValue::Int4(42))
        );
        assert_eq!(
            element.properties().get("score"),
            Some(&ElementValue::Numeric("1.50".parse::<Numeric>().unwrap()))
        );
    }

    // ------------------------------------------------------------------------------ values

    #[test]
    fn values_decode_by_type_and_fall_back_to_text() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            relation(
                600,
                "public",
                "v",
                ReplicaIdentity::Default,
                vec![
                    col("id", INT4, true),
                    col("bad", INT4, false),
                    col("bin", INT4, false),
                    col("badbin", INT4, false),
                    col("arr", 1007, false),
                ],
            ),
            insert(
                600,
                &[
                    T("1"),
                    T("not a number"),
                    V::B(&7i32.to_be_bytes()),
                    V::B(&[1, 2]),
                    T("{1,NULL}"),
                ],
            ),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        let SourceChange::Insert { element, .. } = &changes[0] else {
            panic!()
        };
        let p = element.properties();
        assert_eq!(
            p.get("bad"),
            Some(&ElementValue::Unknown {
                type_oid: Oid(INT4),
                text: "not a number".into()
            })
        );
        assert_eq!(p.get("bin"), Some(&ElementValue::Int4(7)));
        assert_eq!(
            p.get("badbin"),
            Some(&ElementValue::Unknown {
                type_oid: Oid(INT4),
                text: "\\x0102".into()
            })
        );
        assert_eq!(
            p.get("arr").map(ToString::to_string).as_deref(),
            Some("{1,NULL}")
        );
        assert_eq!(f.p.stats().fallback_values, 2);
    }

    #[test]
    fn binary_key_values_are_printed_as_text() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            users(),
            insert(100, &[V::B(&42i32.to_be_bytes()), N, N]),
            commit(0x100, 0x110, 0),
        ]);
        assert_eq!(summary(&f.one_txn()), ["insert users:42"]);
    }

    #[test]
    fn type_messages_feed_the_registry() {
        let mut f = Feed::default_config();
        f.ok(&[
            begin(1, 0x100, 0),
            // CREATE DOMAIN posint AS int4: pgoutput sends the base type's name.
            PgOutputMessage::Type {
                xid: None,
                oid: Oid(16400),
                namespace: String::new(),
                name: "int4".into(),
            },
            relation(
                700,
                "public",
                "d",
                ReplicaIdentity::Default,
                vec![col("id", INT4, true), col("n", 16400, false)],
            ),
            insert(700, &[T("1"), T("5")]),
            commit(0x100, 0x110, 0),
        ]);
        let changes = f.one_txn();
        let SourceChange::Insert { element, .. } = &changes[0] else {
            panic!()
        };
        assert_eq!(element.properties().get("n"), Some(&ElementValue::Int4(5)));
        assert!(f.p.type_registry().knows(Oid(16400)));
    }

    // ------------------------------------------------------------------------------ errors

    #[test]
    fn change_for_unknown_relation_is_an_error() {
        let mut f = Feed::default_config();
        f.ok(&[begin(1, 0x100, 0)]);
        let e = f.send(&insert(999, &[T("1")])).unwrap_err();
        assert_eq!(
            e,
            AssembleError::UnknownRelation {
                message: "Insert",
                oid: Oid(999)
            }
        );
        assert!(e.to_string().contains("999"));
        let e = f
            .send(&PgOutputMessage::Truncate {
                xid: None,
                relations: vec![Oid(998)],
                cascade: false,
                restart_identity: false,
            })
            .unwrap_err();
        assert!(matches!(e, AssembleError::UnknownRelation { .. }));
    }

    #[test]
    fn tuple_width_mismatch_is_an_error() {
        let mut f = Feed::default_config();
        f.ok(&[begin(1, 0x100, 0), users()]);
        let e = f.send(&insert(100, &[T("1")])).unwrap_err();
        assert!(matches!(
            e,
            AssembleError::ColumnCount {
                expected: 3,
                got: 1,
                ..
            }
        ));
    }

    #[test]
    fn change_outside_a_transaction_is_an_error() {
        let mut f = Feed::default_config();
        f.ok(&[users()]);
        let e = f.send(&insert(100, &[T("1"), N, N])).unwrap_err();
        assert_eq!(e, AssembleError::OutsideTransaction { message: "Insert" });
        let e = f.send(&commit(1, 2, 0)).unwrap_err();
        assert!(matches!(e, AssembleError::Unexpected { .. }));
        assert!(
            f.events()
                .iter()
                .all(|e| matches!(e, PipelineEvent::Warning(_)))
        );
    }
}
