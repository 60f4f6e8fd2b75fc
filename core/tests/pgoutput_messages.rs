//! pgoutput decoding of every message type, from hand-written wire bytes (not the crate's own
//! encoder), using the values observed on PostgreSQL 15.18 (PROTOCOL.md §5.4) where there are
//! some. The tests sit in a module named `pgoutput` so `cargo test pgoutput` selects them.
#![allow(missing_docs)]

mod pgoutput {
    use bytes::Bytes;
    use pgcdc_core::Lsn;
    use pgcdc_core::pgoutput::{
        ColumnValue, DecodeError, Decoder, OldTuple, PgOutputMessage, ReplicaIdentity, TupleData,
        Xid,
    };

    /// A commit timestamp: 2024-11-23 µs since 2000-01-01.
    const TS: i64 = 785_548_800_000_000;

    /// Builds payloads field by field, big-endian.
    struct W(Vec<u8>);

    #[derive(Clone, Copy)]
    enum V {
        N,
        U,
        T(&'static str),
        B(&'static [u8]),
    }

    impl W {
        fn new(tag: u8) -> W {
            W(vec![tag])
        }
        fn u8(mut self, v: u8) -> W {
            self.0.push(v);
            self
        }
        fn i16(mut self, v: i16) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> W {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn cstr(mut self, s: &str) -> W {
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn raw(mut self, b: &[u8]) -> W {
            self.0.extend_from_slice(b);
            self
        }
        fn tuple(mut self, cols: &[V]) -> W {
            self = self.i16(cols.len() as i16);
            for c in cols {
                self = match *c {
                    V::N => self.u8(b'n'),
                    V::U => self.u8(b'u'),
                    V::T(s) => self.u8(b't').u32(s.len() as u32).raw(s.as_bytes()),
                    V::B(b) => self.u8(b'b').u32(b.len() as u32).raw(b),
                };
            }
            self
        }
        fn bytes(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    fn tuple(cols: &[V]) -> TupleData {
        TupleData::from_values(cols.iter().map(|c| match *c {
            V::N => ColumnValue::Null,
            V::U => ColumnValue::UnchangedToast,
            V::T(s) => ColumnValue::Text(s.as_bytes()),
            V::B(b) => ColumnValue::Binary(b),
        }))
        .unwrap()
    }

    fn decode(payload: Bytes) -> Result<PgOutputMessage, DecodeError> {
        Decoder::new().decode(payload)
    }

    /// A decoder inside the stream block of `xid`.
    fn in_stream(xid: u32) -> Decoder {
        let mut d = Decoder::new();
        d.decode(W::new(b'S').u32(xid).u8(1).bytes()).unwrap();
        d
    }

    fn t1_relation(xid: Option<u32>) -> W {
        let mut w = W::new(b'R');
        if let Some(x) = xid {
            w = w.u32(x);
        }
        w.u32(16402)
            .cstr("public")
            .cstr("t1")
            .u8(b'd')
            .i16(3)
            .u8(1)
            .cstr("id")
            .u32(23)
            .i32(-1)
            .u8(0)
            .cstr("name")
            .u32(25)
            .i32(-1)
            .u8(0)
            .cstr("big")
            .u32(25)
            .i32(-1)
    }

    // ----------------------------------------------------------------------------- B C O

    #[test]
    fn begin_observed() {
        let p = W::new(b'B').u64(0x1942A38).i64(TS).u32(752).bytes();
        assert_eq!(p.len(), 21);
        let m = decode(p).unwrap();
        assert_eq!(
            m,
            PgOutputMessage::Begin {
                final_lsn: "0/1942A38".parse().unwrap(),
                commit_time: TS,
                xid: Xid(752),
            }
        );
        assert_eq!(m.type_byte(), b'B');
        assert_eq!(m.name(), "Begin");
    }

    #[test]
    fn commit_observed() {
        let p = W::new(b'C')
            .u8(0)
            .u64(0x1942A38)
            .u64(0x1942A68)
            .i64(TS)
            .bytes();
        assert_eq!(p.len(), 26);
        assert_eq!(
            decode(p).unwrap(),
            PgOutputMessage::Commit {
                flags: 0,
                commit_lsn: Lsn(0x1942A38),
                end_lsn: Lsn(0x1942A68),
                commit_time: TS,
            }
        );
    }

    #[test]
    fn commit_with_flags_is_a_newer_protocol() {
        let p = W::new(b'C').u8(2).u64(1).u64(2).i64(3).bytes();
        let e = decode(p).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnknownFlags {
                message: "Commit",
                flags: 2,
                offset: 1
            }
        );
        assert!(e.to_string().contains("newer protocol"), "{e}");
    }

    #[test]
    fn origin_observed() {
        let p = W::new(b'O').u64(0xABCDEF).cstr("upstream_node").bytes();
        assert_eq!(
            decode(p).unwrap(),
            PgOutputMessage::Origin {
                origin_lsn: "0/ABCDEF".parse().unwrap(),
                name: "upstream_node".into(),
            }
        );
    }

    #[test]
    fn origin_allowed_inside_stream_block() {
        let mut d = in_stream(779);
        let p = W::new(b'O').u64(0).cstr("up").bytes();
        assert!(matches!(
            d.decode(p).unwrap(),
            PgOutputMessage::Origin { .. }
        ));
    }

    // ----------------------------------------------------------------------------- R Y

    #[test]
    fn relation_observed() {
        let m = decode(t1_relation(None).bytes()).unwrap();
        let PgOutputMessage::Relation(r) = m else {
            panic!("{m:?}")
        };
        assert_eq!(r.xid, None);
        assert_eq!(r.oid.0, 16402);
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("public", "t1"));
        assert_eq!(r.schema(), "public");
        assert_eq!(r.replica_identity, ReplicaIdentity::Default);
        let cols: Vec<_> = r
            .columns
            .iter()
            .map(|c| (c.is_key(), c.name.as_str(), c.type_oid.0, c.type_modifier))
            .collect();
        assert_eq!(
            cols,
            [
                (true, "id", 23, -1),
                (false, "name", 25, -1),
                (false, "big", 25, -1)
            ]
        );
        assert_eq!(r.key_columns().map(|(i, _)| i).collect::<Vec<_>>(), [0]);
        assert_eq!(r.column_index("big"), Some(2));
    }

    #[test]
    fn relation_replica_identities() {
        for (b, ident) in [
            (b'd', ReplicaIdentity::Default),
            (b'n', ReplicaIdentity::Nothing),
            (b'f', ReplicaIdentity::Full),
            (b'i', ReplicaIdentity::Index),
        ] {
            let p = W::new(b'R').u32(1).cstr("").cstr("x").u8(b).i16(0).bytes();
            let PgOutputMessage::Relation(r) = decode(p).unwrap() else {
                panic!()
            };
            assert_eq!(r.replica_identity, ident);
            assert_eq!(ident.as_byte(), b);
            assert_eq!(r.schema(), "pg_catalog");
        }
        let p = W::new(b'R')
            .u32(1)
            .cstr("")
            .cstr("x")
            .u8(b'z')
            .i16(0)
            .bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidByte {
                message: "Relation",
                byte: b'z',
                offset: 8,
                ..
            }
        ));
    }

    #[test]
    fn relation_negative_or_lying_column_count() {
        let p = W::new(b'R')
            .u32(1)
            .cstr("a")
            .cstr("b")
            .u8(b'd')
            .i16(-1)
            .bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::NegativeCount { value: -1, .. }
        ));
        let p = W::new(b'R')
            .u32(1)
            .cstr("a")
            .cstr("b")
            .u8(b'd')
            .i16(i16::MAX)
            .bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
    }

    #[test]
    fn relation_name_must_be_utf8_and_terminated() {
        let p = W::new(b'R').u32(1).raw(b"\xff\xfe\0").cstr("b").bytes();
        assert_eq!(
            decode(p).unwrap_err(),
            DecodeError::InvalidUtf8 {
                message: "Relation",
                field: "namespace",
                offset: 5
            }
        );
        let p = W::new(b'R').u32(1).raw(b"public").bytes();
        assert_eq!(
            decode(p).unwrap_err(),
            DecodeError::UnterminatedString {
                message: "Relation",
                offset: 5
            }
        );
    }

    #[test]
    fn type_of_domain_observed() {
        let p = W::new(b'Y').u32(16400).cstr("").cstr("int4").bytes();
        assert_eq!(
            decode(p).unwrap(),
            PgOutputMessage::Type {
                xid: None,
                oid: 16400.into(),
                namespace: String::new(),
                name: "int4".into(),
            }
        );
    }

    // ----------------------------------------------------------------------------- I U D

    #[test]
    fn inserts_observed() {
        for (vals, id) in [
            ([V::T("1"), V::T("a"), V::T("x")], "1"),
            ([V::T("2"), V::T("b"), V::T("y")], "2"),
        ] {
            let p = W::new(b'I').u32(16402).u8(b'N').tuple(&vals).bytes();
            let m = decode(p.clone()).unwrap();
            let PgOutputMessage::Insert { xid, rel, new } = &m else {
                panic!("{m:?}")
            };
            assert_eq!((*xid, rel.0), (None, 16402));
            assert_eq!(new.len(), 3);
            assert_eq!(new.get(0), Some(ColumnValue::Text(id.as_bytes())));
            assert_eq!(new, &tuple(&vals));
            // Zero-copy: the value is a slice of the received payload.
            let v = new.value_bytes(0).unwrap();
            let range = p.as_ptr_range();
            assert!(range.contains(&v.as_ptr()));
        }
    }

    #[test]
    fn insert_binary_null_and_empty_values() {
        let vals = [V::B(&[0, 0, 0, 42]), V::N, V::T(""), V::B(&[])];
        let p = W::new(b'I').u32(7).u8(b'N').tuple(&vals).bytes();
        let PgOutputMessage::Insert { new, .. } = decode(p).unwrap() else {
            panic!()
        };
        let got: Vec<_> = new.iter().collect();
        assert_eq!(
            got,
            [
                ColumnValue::Binary(&[0, 0, 0, 42]),
                ColumnValue::Null,
                ColumnValue::Text(b""),
                ColumnValue::Binary(b"")
            ]
        );
        assert!(new.get(1).unwrap().is_null());
        assert_eq!(new.value_bytes(1), None);
        assert_eq!(new.value_bytes(9), None);
        assert_eq!(new.get(4), None);
    }

    #[test]
    fn insert_needs_new_marker() {
        let p = W::new(b'I').u32(7).u8(b'K').tuple(&[V::N]).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidByte {
                message: "Insert",
                byte: b'K',
                offset: 5,
                ..
            }
        ));
    }

    #[test]
    fn update_with_old_key_observed() {
        let p = W::new(b'U')
            .u32(16402)
            .u8(b'K')
            .tuple(&[V::T("2"), V::N, V::N])
            .u8(b'N')
            .tuple(&[V::T("10"), V::T("b"), V::T("y")])
            .bytes();
        assert_eq!(
            decode(p).unwrap(),
            PgOutputMessage::Update {
                xid: None,
                rel: 16402.into(),
                old: Some(OldTuple::Key(tuple(&[V::T("2"), V::N, V::N]))),
                new: tuple(&[V::T("10"), V::T("b"), V::T("y")]),
            }
        );
    }

    #[test]
    fn update_without_old_and_with_full_old_and_unchanged_toast() {
        let p = W::new(b'U')
            .u32(16402)
            .u8(b'N')
            .tuple(&[V::T("1"), V::T("c"), V::U])
            .bytes();
        let PgOutputMessage::Update { old, new, .. } = decode(p).unwrap() else {
            panic!()
        };
        assert_eq!(old, None);
        assert!(new.get(2).unwrap().is_unchanged_toast());
        assert!(!new.get(2).unwrap().is_null());

        let p = W::new(b'U')
            .u32(16402)
            .u8(b'O')
            .tuple(&[V::T("1"), V::T("a"), V::T("long")])
            .u8(b'N')
            .tuple(&[V::T("1"), V::T("c"), V::U])
            .bytes();
        let PgOutputMessage::Update { old, .. } = decode(p).unwrap() else {
            panic!()
        };
        let old = old.unwrap();
        assert_eq!(old.marker(), b'O');
        assert_eq!(
            old,
            OldTuple::Full(tuple(&[V::T("1"), V::T("a"), V::T("long")]))
        );
        assert_eq!(old.tuple().value_bytes(2).unwrap(), "long");
    }

    #[test]
    fn update_old_tuple_must_be_followed_by_new() {
        let p = W::new(b'U')
            .u32(1)
            .u8(b'K')
            .tuple(&[V::T("2")])
            .u8(b'K')
            .tuple(&[V::T("3")])
            .bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidByte { byte: b'K', .. }
        ));
        let p = W::new(b'U').u32(1).u8(b'X').bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidByte { byte: b'X', .. }
        ));
    }

    #[test]
    fn delete_key_and_full() {
        let p = W::new(b'D')
            .u32(16402)
            .u8(b'K')
            .tuple(&[V::T("10"), V::N, V::N])
            .bytes();
        assert_eq!(
            decode(p).unwrap(),
            PgOutputMessage::Delete {
                xid: None,
                rel: 16402.into(),
                old: OldTuple::Key(tuple(&[V::T("10"), V::N, V::N])),
            }
        );
        let p = W::new(b'D').u32(5).u8(b'O').tuple(&[V::T("1")]).bytes();
        assert!(matches!(
            decode(p).unwrap(),
            PgOutputMessage::Delete {
                old: OldTuple::Full(_),
                ..
            }
        ));
        let p = W::new(b'D').u32(5).u8(b'N').tuple(&[V::T("1")]).bytes();
        assert!(decode(p).is_err());
    }

    #[test]
    fn tuple_errors() {
        // Unknown column kind.
        let p = W::new(b'I').u32(1).u8(b'N').i16(1).u8(b'x').bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidByte {
                field: "column kind",
                byte: b'x',
                offset: 8,
                ..
            }
        ));
        // Negative column count.
        let p = W::new(b'I').u32(1).u8(b'N').i16(-3).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::NegativeCount { value: -3, .. }
        ));
        // A value length past the end (and u32::MAX, which is -1 as PostgreSQL's int32).
        for len in [6, u32::MAX] {
            let p = W::new(b'I')
                .u32(1)
                .u8(b'N')
                .i16(1)
                .u8(b't')
                .u32(len)
                .raw(b"abc")
                .bytes();
            assert!(matches!(
                decode(p).unwrap_err(),
                DecodeError::Truncated {
                    message: "Insert",
                    offset: 13,
                    available: 3,
                    ..
                }
            ));
        }
        // A huge column count with almost no bytes fails fast.
        let p = W::new(b'I').u32(1).u8(b'N').i16(i16::MAX).u8(b'n').bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
    }

    // ----------------------------------------------------------------------------- T M

    #[test]
    fn truncate_options() {
        for (opts, cascade, restart) in [
            (0, false, false),
            (1, true, false),
            (2, false, true),
            (3, true, true),
        ] {
            let p = W::new(b'T').u32(2).u8(opts).u32(16402).u32(16410).bytes();
            assert_eq!(
                decode(p).unwrap(),
                PgOutputMessage::Truncate {
                    xid: None,
                    relations: vec![16402.into(), 16410.into()],
                    cascade,
                    restart_identity: restart,
                }
            );
        }
        let p = W::new(b'T').u32(1).u8(4).u32(16402).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::UnknownFlags {
                message: "Truncate",
                flags: 4,
                offset: 5
            }
        ));
        // A relation count that the payload cannot hold.
        let p = W::new(b'T').u32(u32::MAX).u8(0).u32(1).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
        let p = W::new(b'T').u32(1).u8(0).u32(1).u32(2).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::TrailingBytes { trailing: 4, .. }
        ));
    }

    #[test]
    fn message_non_transactional_observed() {
        let p = W::new(b'M')
            .u8(0)
            .u64(0x1943078)
            .cstr("nt")
            .u32(5)
            .raw(b"world")
            .bytes();
        let range = p.as_ptr_range();
        let m = decode(p).unwrap();
        assert_eq!(
            m,
            PgOutputMessage::Message {
                xid: None,
                transactional: false,
                lsn: "0/1943078".parse().unwrap(),
                prefix: "nt".into(),
                content: Bytes::from_static(b"world"),
            }
        );
        let PgOutputMessage::Message { content, .. } = m else {
            panic!()
        };
        assert!(range.contains(&content.as_ptr()));
    }

    #[test]
    fn message_transactional_and_errors() {
        let p = W::new(b'M').u8(1).u64(9).cstr("p").u32(0).bytes();
        assert!(matches!(
            decode(p).unwrap(),
            PgOutputMessage::Message {
                transactional: true,
                ref content,
                ..
            } if content.is_empty()
        ));
        let p = W::new(b'M').u8(3).u64(9).cstr("p").u32(0).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::UnknownFlags { flags: 3, .. }
        ));
        let p = W::new(b'M').u8(0).u64(9).raw(b"\xc3\0").u32(0).bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::InvalidUtf8 {
                field: "prefix",
                ..
            }
        ));
        let p = W::new(b'M')
            .u8(0)
            .u64(9)
            .cstr("p")
            .u32(10)
            .raw(b"short")
            .bytes();
        assert!(matches!(
            decode(p).unwrap_err(),
            DecodeError::Truncated {
                needed: 10,
                available: 5,
                ..
            }
        ));
    }

    // ----------------------------------------------------------------------------- streams

    #[test]
    fn stream_block_with_subtransaction_xids() {
        let mut d = Decoder::new();
        assert!(!d.in_stream_block());
        assert_eq!(
            d.decode(W::new(b'S').u32(779).u8(1).bytes()).unwrap(),
            PgOutputMessage::StreamStart {
                xid: Xid(779),
                first_segment: true
            }
        );
        assert_eq!(d.stream_xid(), Some(Xid(779)));

        // Relation inside the stream carries the (sub)transaction's xid.
        let m = d.decode(t1_relation(Some(780)).bytes()).unwrap();
        assert_eq!(m.stream_xid(), Some(Xid(780)));
        let PgOutputMessage::Relation(r) = m else {
            panic!()
        };
        assert_eq!(
            (r.xid, r.oid.0, r.columns.len()),
            (Some(Xid(780)), 16402, 3)
        );

        for sub in [780, 781, 779] {
            let p = W::new(b'I')
                .u32(sub)
                .u32(16402)
                .u8(b'N')
                .tuple(&[V::T("1"), V::T("a"), V::T("x")])
                .bytes();
            let m = d.decode(p).unwrap();
            assert!(
                matches!(m, PgOutputMessage::Insert { xid: Some(Xid(x)), rel, .. } if x == sub && rel.0 == 16402),
                "{m:?}"
            );
        }
        let p = W::new(b'Y')
            .u32(780)
            .u32(16400)
            .cstr("")
            .cstr("int4")
            .bytes();
        assert_eq!(d.decode(p).unwrap().stream_xid(), Some(Xid(780)));
        let p = W::new(b'U')
            .u32(781)
            .u32(16402)
            .u8(b'N')
            .tuple(&[V::T("1")])
            .bytes();
        assert_eq!(d.decode(p).unwrap().stream_xid(), Some(Xid(781)));
        let p = W::new(b'D')
            .u32(781)
            .u32(16402)
            .u8(b'K')
            .tuple(&[V::T("1")])
            .bytes();
        assert_eq!(d.decode(p).unwrap().stream_xid(), Some(Xid(781)));
        let p = W::new(b'T').u32(779).u32(1).u8(0).u32(16402).bytes();
        assert_eq!(d.decode(p).unwrap().stream_xid(), Some(Xid(779)));
        let p = W::new(b'M')
            .u32(779)
            .u8(1)
            .u64(5)
            .cstr("x")
            .u32(1)
            .raw(b"y")
            .bytes();
        assert_eq!(d.decode(p).unwrap().stream_xid(), Some(Xid(779)));

        assert_eq!(
            d.decode(W::new(b'E').bytes()).unwrap(),
            PgOutputMessage::StreamStop
        );
        assert!(!d.in_stream_block());

        // Outside the block the same Insert bytes have no xid: the 780 would be read as the OID.
        let p = W::new(b'I').u32(16402).u8(b'N').tuple(&[V::T("1")]).bytes();
        assert!(matches!(
            d.decode(p).unwrap(),
            PgOutputMessage::Insert { xid: None, .. }
        ));

        // A later block of the same transaction, then its commit outside any block.
        assert_eq!(
            d.decode(W::new(b'S').u32(779).u8(0).bytes()).unwrap(),
            PgOutputMessage::StreamStart {
                xid: Xid(779),
                first_segment: false
            }
        );
        d.decode(W::new(b'E').bytes()).unwrap();
        let p = W::new(b'c')
            .u32(779)
            .u8(0)
            .u64(0x2000)
            .u64(0x2030)
            .i64(TS)
            .bytes();
        assert_eq!(
            d.decode(p).unwrap(),
            PgOutputMessage::StreamCommit {
                xid: Xid(779),
                flags: 0,
                commit_lsn: Lsn(0x2000),
                end_lsn: Lsn(0x2030),
                commit_time: TS,
            }
        );
    }

    #[test]
    fn stream_state_errors() {
        let mut d = Decoder::new();
        assert_eq!(
            d.decode(W::new(b'E').bytes()).unwrap_err(),
            DecodeError::StreamNotOpen
        );
        d.decode(W::new(b'S').u32(10).u8(1).bytes()).unwrap();
        assert_eq!(
            d.decode(W::new(b'S').u32(11).u8(1).bytes()).unwrap_err(),
            DecodeError::StreamAlreadyOpen {
                xid: Xid(11),
                open: Xid(10)
            }
        );
        // Transaction control inside a block means the decoder lost track.
        let begin = W::new(b'B').u64(1).i64(2).u32(3).bytes();
        assert_eq!(
            d.decode(begin.clone()).unwrap_err(),
            DecodeError::UnexpectedInStream {
                message: "Begin",
                open: Xid(10)
            }
        );
        let abort = W::new(b'A').u32(10).u32(10).bytes();
        assert!(matches!(
            d.decode(abort.clone()).unwrap_err(),
            DecodeError::UnexpectedInStream {
                message: "Stream Abort",
                ..
            }
        ));
        // Failed decodes leave the state alone.
        assert_eq!(d.stream_xid(), Some(Xid(10)));
        // A malformed Stream Stop does not close the block.
        assert!(matches!(
            d.decode(W::new(b'E').u8(0).bytes()).unwrap_err(),
            DecodeError::TrailingBytes { .. }
        ));
        assert!(d.in_stream_block());
        d.decode(W::new(b'E').bytes()).unwrap();
        d.decode(begin).unwrap();
        d.decode(abort).unwrap();
        // Bad first-segment flag.
        assert!(matches!(
            d.decode(W::new(b'S').u32(1).u8(2).bytes()).unwrap_err(),
            DecodeError::InvalidByte {
                byte: 2,
                offset: 5,
                ..
            }
        ));
        // reset() forgets an open block.
        d.decode(W::new(b'S').u32(12).u8(1).bytes()).unwrap();
        d.reset();
        assert!(!d.in_stream_block());
    }

    #[test]
    fn stream_abort_v2_and_v4_forms() {
        let mut d = Decoder::new();
        // proto 2: 8 bytes after the type. A subtransaction abort.
        assert_eq!(
            d.decode(W::new(b'A').u32(779).u32(781).bytes()).unwrap(),
            PgOutputMessage::StreamAbort {
                xid: Xid(779),
                subxid: Xid(781),
                abort_lsn: None,
                abort_time: None,
            }
        );
        // proto 4 with streaming 'parallel': 24 bytes. The whole transaction.
        let p = W::new(b'A').u32(779).u32(779).u64(0x3000).i64(TS).bytes();
        assert_eq!(p.len(), 25);
        assert_eq!(
            d.decode(p).unwrap(),
            PgOutputMessage::StreamAbort {
                xid: Xid(779),
                subxid: Xid(779),
                abort_lsn: Some(Lsn(0x3000)),
                abort_time: Some(TS),
            }
        );
        // Anything between or beyond is malformed.
        for extra in [1usize, 8, 15] {
            let p = W::new(b'A').u32(1).u32(1).raw(&vec![0; extra]).bytes();
            assert!(
                matches!(d.decode(p).unwrap_err(), DecodeError::Truncated { .. }),
                "{extra}"
            );
        }
        let p = W::new(b'A').u32(1).u32(1).raw(&[0; 17]).bytes();
        assert!(matches!(
            d.decode(p).unwrap_err(),
            DecodeError::TrailingBytes {
                offset: 25,
                trailing: 1,
                ..
            }
        ));
        let p = W::new(b'A').u32(1).bytes();
        assert!(matches!(
            d.decode(p).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
    }

    // ----------------------------------------------------------------------------- two-phase

    #[test]
    fn two_phase_messages() {
        let mut d = Decoder::new();
        let p = W::new(b'b')
            .u64(0x5000)
            .u64(0x5040)
            .i64(TS)
            .u32(800)
            .cstr("gid-1")
            .bytes();
        assert_eq!(
            d.decode(p).unwrap(),
            PgOutputMessage::BeginPrepare {
                prepare_lsn: Lsn(0x5000),
                end_lsn: Lsn(0x5040),
                prepare_time: TS,
                xid: Xid(800),
                gid: "gid-1".into(),
            }
        );
        for tag in [b'P', b'p'] {
            let p = W::new(tag)
                .u8(0)
                .u64(0x5000)
                .u64(0x5040)
                .i64(TS)
                .u32(800)
                .cstr("gid-1")
                .bytes();
            let m = d.decode(p).unwrap();
            let expected_fields = (0u8, Lsn(0x5000), Lsn(0x5040), TS, Xid(800), "gid-1");
            match m {
                PgOutputMessage::Prepare {
                    flags,
                    prepare_lsn,
                    end_lsn,
                    prepare_time,
                    xid,
                    ref gid,
                } if tag == b'P' => assert_eq!(
                    (flags, prepare_lsn, end_lsn, prepare_time, xid, gid.as_str()),
                    expected_fields
                ),
                PgOutputMessage::StreamPrepare {
                    flags,
                    prepare_lsn,
                    end_lsn,
                    prepare_time,
                    xid,
                    ref gid,
                } if tag == b'p' => assert_eq!(
                    (flags, prepare_lsn, end_lsn, prepare_time, xid, gid.as_str()),
                    expected_fields
                ),
                other => panic!("{other:?}"),
            }
        }
        let p = W::new(b'K')
            .u8(0)
            .u64(0x6000)
            .u64(0x6030)
            .i64(TS + 1)
            .u32(800)
            .cstr("gid-1")
            .bytes();
        assert_eq!(
            d.decode(p).unwrap(),
            PgOutputMessage::CommitPrepared {
                flags: 0,
                commit_lsn: Lsn(0x6000),
                end_lsn: Lsn(0x6030),
                commit_time: TS + 1,
                xid: Xid(800),
                gid: "gid-1".into(),
            }
        );
        let p = W::new(b'r')
            .u8(0)
            .u64(0x5040)
            .u64(0x7030)
            .i64(TS)
            .i64(TS + 2)
            .u32(801)
            .cstr("gid-2")
            .bytes();
        assert_eq!(
            d.decode(p).unwrap(),
            PgOutputMessage::RollbackPrepared {
                flags: 0,
                prepare_end_lsn: Lsn(0x5040),
                rollback_end_lsn: Lsn(0x7030),
                prepare_time: TS,
                rollback_time: TS + 2,
                xid: Xid(801),
                gid: "gid-2".into(),
            }
        );
    }

    #[test]
    fn non_zero_flags_rejected_in_every_flagged_message() {
        let cases: [(u8, &str, Bytes); 6] = [
            (
                b'C',
                "Commit",
                W::new(b'C').u8(1).u64(1).u64(2).i64(3).bytes(),
            ),
            (
                b'c',
                "Stream Commit",
                W::new(b'c').u32(9).u8(1).u64(1).u64(2).i64(3).bytes(),
            ),
            (
                b'P',
                "Prepare",
                W::new(b'P')
                    .u8(1)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("g")
                    .bytes(),
            ),
            (
                b'p',
                "Stream Prepare",
                W::new(b'p')
                    .u8(1)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("g")
                    .bytes(),
            ),
            (
                b'K',
                "Commit Prepared",
                W::new(b'K')
                    .u8(1)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .u32(4)
                    .cstr("g")
                    .bytes(),
            ),
            (
                b'r',
                "Rollback Prepared",
                W::new(b'r')
                    .u8(1)
                    .u64(1)
                    .u64(2)
                    .i64(3)
                    .i64(4)
                    .u32(5)
                    .cstr("g")
                    .bytes(),
            ),
        ];
        for (tag, name, p) in cases {
            let offset = if tag == b'c' { 5 } else { 1 };
            assert_eq!(
                decode(p).unwrap_err(),
                DecodeError::UnknownFlags {
                    message: name,
                    flags: 1,
                    offset
                }
            );
        }
    }

    // ----------------------------------------------------------------------------- framing

    #[test]
    fn unknown_type_and_empty_payload() {
        let e = decode(W::new(b'Z').u32(0).bytes()).unwrap_err();
        assert_eq!(
            e,
            DecodeError::UnknownMessageType {
                layer: "pgoutput",
                byte: b'Z'
            }
        );
        assert!(
            e.to_string().contains("'Z'") || e.to_string().contains("Z"),
            "{e}"
        );
        // The keepalive 'k' is a different layer: not a pgoutput message.
        assert!(matches!(
            decode(W::new(b'k').bytes()).unwrap_err(),
            DecodeError::UnknownMessageType { byte: b'k', .. }
        ));
        assert_eq!(
            decode(Bytes::new()).unwrap_err(),
            DecodeError::Empty { layer: "pgoutput" }
        );
    }

    #[test]
    fn trailing_bytes_rejected() {
        let cases = [
            W::new(b'B').u64(1).i64(2).u32(3).u8(0).bytes(),
            W::new(b'C').u8(0).u64(1).u64(2).i64(3).u8(0).bytes(),
            W::new(b'E').u8(0).bytes(),
            W::new(b'O').u64(1).cstr("o").u8(0).bytes(),
            W::new(b'I').u32(1).u8(b'N').tuple(&[V::N]).u8(0).bytes(),
            W::new(b'Y').u32(1).cstr("").cstr("t").u8(0).bytes(),
            t1_relation(None).u8(0).bytes(),
            W::new(b'b')
                .u64(1)
                .u64(2)
                .i64(3)
                .u32(4)
                .cstr("g")
                .u8(0)
                .bytes(),
        ];
        for p in cases {
            let len = p.len();
            match decode(p) {
                Err(DecodeError::TrailingBytes {
                    offset, trailing, ..
                }) => assert_eq!((offset, trailing), (len - 1, 1)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn truncated_begin_reports_offset() {
        let p = W::new(b'B').u64(1).i64(2).raw(&[0, 0]).bytes();
        assert_eq!(
            decode(p).unwrap_err(),
            DecodeError::Truncated {
                message: "Begin",
                offset: 17,
                needed: 4,
                available: 2
            }
        );
    }

    /// The whole §5.4 observation, through the CopyData layer.
    #[test]
    fn observed_session_through_copy_data() {
        use pgcdc_core::pgoutput::{ReplicationMessage, parse_copy_data};

        fn w(start: u64, msg: W) -> Bytes {
            let mut v = vec![b'w'];
            v.extend_from_slice(&start.to_be_bytes());
            v.extend_from_slice(&start.to_be_bytes());
            v.extend_from_slice(&TS.to_be_bytes());
            v.extend_from_slice(&msg.0);
            Bytes::from(v)
        }
        let mut k = vec![b'k'];
        k.extend_from_slice(&0x19428C8u64.to_be_bytes());
        k.extend_from_slice(&TS.to_be_bytes());
        k.push(0);
        let frames = vec![
            Bytes::from(k),
            w(0x19428C8, W::new(b'B').u64(0x1942A38).i64(TS).u32(752)),
            w(0, t1_relation(None)),
            w(
                0x19428C8,
                W::new(b'I')
                    .u32(16402)
                    .u8(b'N')
                    .tuple(&[V::T("1"), V::T("a"), V::T("x")]),
            ),
            w(
                0x19429B0,
                W::new(b'I')
                    .u32(16402)
                    .u8(b'N')
                    .tuple(&[V::T("2"), V::T("b"), V::T("y")]),
            ),
            w(
                0x1942A68,
                W::new(b'C').u8(0).u64(0x1942A38).u64(0x1942A68).i64(TS),
            ),
            w(
                0x1942AF0,
                W::new(b'U')
                    .u32(16402)
                    .u8(b'K')
                    .tuple(&[V::T("2"), V::N, V::N])
                    .u8(b'N')
                    .tuple(&[V::T("10"), V::T("b"), V::T("y")]),
            ),
            w(
                0x1943078,
                W::new(b'M')
                    .u8(0)
                    .u64(0x1943078)
                    .cstr("nt")
                    .u32(5)
                    .raw(b"world"),
            ),
            w(0x1943038, W::new(b'B').u64(0x1943078).i64(TS).u32(753)),
        ];
        let mut d = Decoder::new();
        let mut names = Vec::new();
        let mut ack = None;
        for f in frames {
            match parse_copy_data(f).unwrap() {
                ReplicationMessage::Keepalive {
                    wal_end,
                    reply_requested,
                    ..
                } => {
                    assert_eq!(wal_end.to_string(), "0/19428C8");
                    assert!(!reply_requested);
                    names.push("keepalive");
                }
                ReplicationMessage::XLogData {
                    wal_start, data, ..
                } => {
                    let m = d.decode(data).unwrap();
                    if let PgOutputMessage::Commit { end_lsn, .. } = m {
                        assert_eq!(end_lsn, wal_start);
                        ack = Some(end_lsn);
                    }
                    names.push(m.name());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            names,
            [
                "keepalive",
                "Begin",
                "Relation",
                "Insert",
                "Insert",
                "Commit",
                "Update",
                "Message",
                "Begin"
            ]
        );
        assert_eq!(ack.unwrap().to_string(), "0/1942A68");
    }
}
