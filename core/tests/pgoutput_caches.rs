//! The relation and type caches, and the CopyData (XLogData / keepalive / standby status)
//! layer. The tests sit in a module named `pgoutput` so `cargo test pgoutput` selects them.
#![allow(missing_docs)]

mod pgoutput {
    use std::sync::Arc;

    use bytes::{Bytes, BytesMut};
    use pgcdc_core::Lsn;
    use pgcdc_core::pgoutput::{
        Column, DecodeError, Oid, RelationBody, RelationCache, ReplicaIdentity, ReplicationMessage,
        SchemaChange, SchemaDiff, StandbyStatusUpdate, TypeCache, TypeInfo, Xid, encode,
        parse_copy_data,
    };

    fn col(key: bool, name: &str, ty: u32, typmod: i32) -> Column {
        Column {
            flags: u8::from(key),
            name: name.into(),
            type_oid: Oid(ty),
            type_modifier: typmod,
        }
    }

    fn t1() -> RelationBody {
        RelationBody {
            xid: None,
            oid: Oid(16402),
            namespace: "public".into(),
            name: "t1".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                col(true, "id", 23, -1),
                col(false, "name", 25, -1),
                col(false, "big", 25, -1),
            ],
        }
    }

    fn changed(c: SchemaChange) -> SchemaDiff {
        match c {
            SchemaChange::Changed(d) => d,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn relation_cache_identical_repeats_are_no_change() {
        let mut cache = RelationCache::new();
        assert!(cache.is_empty());
        assert_eq!(cache.upsert(t1()), SchemaChange::New);
        let first = Arc::clone(cache.get(Oid(16402)).unwrap());
        // Sent again after TRUNCATE, on a new session, and inside a stream with an xid.
        assert_eq!(cache.upsert(t1()), SchemaChange::Unchanged);
        let mut streamed = t1();
        streamed.xid = Some(Xid(780));
        let change = cache.upsert(streamed);
        assert_eq!(change, SchemaChange::Unchanged);
        assert!(!change.is_change());
        // The cached entry is kept, not replaced.
        assert!(Arc::ptr_eq(&first, cache.get(Oid(16402)).unwrap()));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(Oid(1)).is_none());
    }

    #[test]
    fn relation_cache_reports_added_dropped_retyped() {
        let mut cache = RelationCache::new();
        cache.upsert(t1());
        let mut r = t1();
        r.columns.remove(2); // drop big
        r.columns.push(col(false, "note", 1043, 24)); // add note varchar(20)
        r.columns[1].type_oid = Oid(1043); // name text -> varchar
        let d = changed(cache.upsert(r.clone()));
        assert_eq!(d.added, ["note"]);
        assert_eq!(d.dropped, ["big"]);
        assert_eq!(d.retyped, [("name".to_string(), Oid(25), Oid(1043))]);
        assert!(d.modifier_changed.is_empty());
        assert!(!d.key_changed && !d.identity_changed && !d.renamed && !d.reordered);
        assert!(!d.is_empty());
        assert_eq!(cache.get(Oid(16402)).unwrap().as_ref(), &r);

        // varchar(20) -> varchar(40): same type, new modifier.
        let mut r2 = r.clone();
        r2.columns[2].type_modifier = 44;
        let d = changed(cache.upsert(r2));
        assert_eq!(d.modifier_changed, [("note".to_string(), 24, 44)]);
        assert!(d.retyped.is_empty());
    }

    #[test]
    fn relation_cache_reports_key_identity_rename_reorder() {
        let mut cache = RelationCache::new();
        cache.upsert(t1());

        let mut full = t1();
        full.replica_identity = ReplicaIdentity::Full;
        for c in &mut full.columns {
            c.flags = Column::KEY_FLAG;
        }
        let d = changed(cache.upsert(full));
        assert!(d.identity_changed && d.key_changed);
        assert!(d.added.is_empty() && d.dropped.is_empty());

        let mut renamed = t1();
        renamed.replica_identity = ReplicaIdentity::Full;
        renamed.columns = cache.get(Oid(16402)).unwrap().columns.clone();
        renamed.namespace = "archive".into();
        let d = changed(cache.upsert(renamed.clone()));
        assert!(d.renamed && !d.identity_changed && !d.key_changed);

        let mut reordered = renamed;
        reordered.columns.swap(0, 2);
        let d = changed(cache.upsert(reordered));
        assert!(d.reordered && !d.key_changed);
        assert!(d.added.is_empty() && d.dropped.is_empty() && d.retyped.is_empty());

        assert!(cache.remove(Oid(16402)).is_some());
        assert_eq!(cache.upsert(t1()), SchemaChange::New);
        assert_eq!(cache.iter().count(), 1);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn schema_diff_between_identical_is_empty() {
        assert!(SchemaDiff::between(&t1(), &t1()).is_empty());
    }

    #[test]
    fn type_cache_upserts() {
        let mut types = TypeCache::new();
        assert!(types.upsert(Oid(16400), String::new(), "int4".into()));
        assert!(!types.upsert(Oid(16400), String::new(), "int4".into()));
        assert_eq!(
            types.get(Oid(16400)),
            Some(&TypeInfo {
                namespace: String::new(),
                name: "int4".into()
            })
        );
        assert!(types.upsert(Oid(16400), "public".into(), "mood".into()));
        assert_eq!(types.get(Oid(16400)).unwrap().name, "mood");
        assert_eq!(types.len(), 1);
        assert!(types.get(Oid(1)).is_none());
        types.clear();
        assert!(types.is_empty());
    }

    // ------------------------------------------------------------------------- CopyData layer

    fn xlog(start: u64, end: u64, time: i64, data: &[u8]) -> Bytes {
        let mut v = vec![b'w'];
        v.extend_from_slice(&start.to_be_bytes());
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.extend_from_slice(data);
        Bytes::from(v)
    }

    fn keepalive(end: u64, time: i64, reply: u8) -> Vec<u8> {
        let mut v = vec![b'k'];
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&time.to_be_bytes());
        v.push(reply);
        v
    }

    #[test]
    fn xlog_data_is_zero_copy() {
        let f = xlog(0x1942A68, 0x1942A68, -5, b"E");
        let range = f.as_ptr_range();
        let m = parse_copy_data(f).unwrap();
        let ReplicationMessage::XLogData {
            wal_start,
            wal_end,
            send_time,
            data,
        } = &m
        else {
            panic!("{m:?}")
        };
        assert_eq!(
            (wal_start.0, wal_end.0, *send_time),
            (0x1942A68, 0x1942A68, -5)
        );
        assert_eq!(data.as_ref(), b"E");
        assert!(range.contains(&data.as_ptr()));
        // Round trip through the encoder.
        let mut buf = BytesMut::new();
        encode::replication_message(&m, &mut buf);
        assert_eq!(buf.freeze(), xlog(0x1942A68, 0x1942A68, -5, b"E"));
        // An empty data part parses (the pgoutput decoder then rejects it).
        assert!(matches!(
            parse_copy_data(xlog(0, 0, 0, b"")).unwrap(),
            ReplicationMessage::XLogData { ref data, .. } if data.is_empty()
        ));
    }

    #[test]
    fn keepalive_observed_and_reply_flag() {
        let m = parse_copy_data(Bytes::from(keepalive(0x19428C8, 1, 0))).unwrap();
        assert_eq!(
            m,
            ReplicationMessage::Keepalive {
                wal_end: "0/19428C8".parse().unwrap(),
                send_time: 1,
                reply_requested: false
            }
        );
        for reply in [1, 2, 255] {
            assert!(matches!(
                parse_copy_data(Bytes::from(keepalive(1, 1, reply))).unwrap(),
                ReplicationMessage::Keepalive {
                    reply_requested: true,
                    ..
                }
            ));
        }
        let mut buf = BytesMut::new();
        encode::replication_message(&m, &mut buf);
        assert_eq!(buf.as_ref(), keepalive(0x19428C8, 1, 0).as_slice());
    }

    #[test]
    fn copy_data_errors() {
        assert_eq!(
            parse_copy_data(Bytes::new()).unwrap_err(),
            DecodeError::Empty { layer: "CopyData" }
        );
        assert_eq!(
            parse_copy_data(Bytes::from_static(b"s")).unwrap_err(),
            DecodeError::UnknownMessageType {
                layer: "CopyData",
                byte: b's'
            }
        );
        let mut short = keepalive(1, 1, 1);
        short.pop();
        assert_eq!(
            parse_copy_data(Bytes::from(short)).unwrap_err(),
            DecodeError::Truncated {
                message: "primary keepalive",
                offset: 17,
                needed: 1,
                available: 0
            }
        );
        let mut long = keepalive(1, 1, 1);
        long.push(0);
        assert!(matches!(
            parse_copy_data(Bytes::from(long)).unwrap_err(),
            DecodeError::TrailingBytes {
                offset: 18,
                trailing: 1,
                ..
            }
        ));
        let w = xlog(1, 2, 3, b"");
        assert!(matches!(
            parse_copy_data(w.slice(..24)).unwrap_err(),
            DecodeError::Truncated {
                message: "XLogData",
                offset: 17,
                ..
            }
        ));
    }

    #[test]
    fn standby_status_update_layout() {
        let u = StandbyStatusUpdate {
            write: Lsn(0x1942A68),
            flush: Lsn(0x1942A60),
            apply: Lsn(0x1942A58),
            client_time: 785_548_800_000_000,
            reply_requested: true,
        };
        let mut buf = BytesMut::from(&b"xx"[..]);
        u.encode(&mut buf);
        assert_eq!(buf.len(), 2 + StandbyStatusUpdate::LEN);
        assert_eq!(StandbyStatusUpdate::LEN, 34);
        let mut expected = b"xxr".to_vec();
        expected.extend_from_slice(&0x1942A68u64.to_be_bytes());
        expected.extend_from_slice(&0x1942A60u64.to_be_bytes());
        expected.extend_from_slice(&0x1942A58u64.to_be_bytes());
        expected.extend_from_slice(&785_548_800_000_000i64.to_be_bytes());
        expected.push(1);
        assert_eq!(buf.as_ref(), expected.as_slice());

        let mut alive = BytesMut::new();
        StandbyStatusUpdate::default().encode(&mut alive);
        assert_eq!(alive.as_ref(), {
            let mut v = vec![0u8; 34];
            v[0] = b'r';
            v
        });
    }
}
