//! Text-format decoding (`pgcdc_core::value::decode_text`) of every built-in type, with the
//! values observed on PostgreSQL 15 and listed in PROTOCOL.md §6.1.
#![allow(missing_docs)]

use std::net::IpAddr;

use pgcdc_core::Lsn;
use pgcdc_core::value::{
    Array, ArrayDim, BitString, Date, Inet, Interval, Json, MAX_NESTING, Numeric, Oid, Range, Time,
    TimeTz, Timestamp, TypeKind, TypeRegistry, Value, ValueError, decode_text,
    decode_text_lossless,
};

fn reg() -> TypeRegistry {
    TypeRegistry::new()
}

fn dec(oid: Oid, s: &str) -> Value {
    decode_text(oid, -1, s.as_bytes(), &reg()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(oid: Oid, s: &str) -> ValueError {
    match decode_text(oid, -1, s.as_bytes(), &reg()) {
        Ok(v) => panic!("{s:?} decoded as {oid} to {v:?}"),
        Err(e) => e,
    }
}

/// Decodes and checks that Display gives the same text back.
fn rt(oid: Oid, s: &str) -> Value {
    let v = dec(oid, s);
    assert_eq!(v.to_string(), s, "display of {v:?}");
    assert_eq!(v.to_display_string(), s);
    v
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn num(s: &str) -> Value {
    Value::Numeric(Numeric::Finite(s.into()))
}

fn unknown(oid: Oid, s: &str) -> Value {
    Value::Unknown {
        type_oid: oid,
        text: s.to_owned(),
    }
}

#[test]
fn value_bools() {
    assert_eq!(rt(Oid::BOOL, "t"), Value::Bool(true));
    assert_eq!(rt(Oid::BOOL, "f"), Value::Bool(false));
    err(Oid::BOOL, "x");
    err(Oid::BOOL, "");
}

#[test]
fn value_integers() {
    assert_eq!(rt(Oid::INT2, "-32768"), Value::Int2(i16::MIN));
    assert_eq!(rt(Oid::INT2, "32767"), Value::Int2(i16::MAX));
    assert_eq!(rt(Oid::INT4, "-2147483648"), Value::Int4(i32::MIN));
    assert_eq!(rt(Oid::INT4, "2147483647"), Value::Int4(i32::MAX));
    assert_eq!(rt(Oid::INT4, "0"), Value::Int4(0));
    assert_eq!(rt(Oid::INT8, "-9223372036854775808"), Value::Int8(i64::MIN));
    assert_eq!(rt(Oid::INT8, "9223372036854775807"), Value::Int8(i64::MAX));
    assert_eq!(rt(Oid::OID, "4294967295"), Value::Oid(u32::MAX));
    err(Oid::INT2, "32768");
    err(Oid::INT4, "2147483648");
    err(Oid::INT8, "9223372036854775808");
    err(Oid::OID, "4294967296");
    err(Oid::OID, "-1");
    err(Oid::INT4, "1.5");
    err(Oid::INT4, "");
    err(Oid::INT4, "12a");
}

#[test]
fn value_floats() {
    for s in [
        "0.1",
        "0.30000000000000004",
        "1.5",
        "1e-300",
        "1e+15",
        "1e+100",
        "-0",
        "NaN",
        "Infinity",
        "-Infinity",
        "123456789012345",
        "-1.7976931348623157e+308",
        "2.2250738585072014e-308",
    ] {
        rt(Oid::FLOAT8, s);
    }
    for s in [
        "1.2345679e+08",
        "3.4028235e+38",
        "0.1",
        "-0",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e-45",
    ] {
        rt(Oid::FLOAT4, s);
    }
    let Value::Float8(z) = dec(Oid::FLOAT8, "-0") else {
        panic!()
    };
    assert!(z == 0.0 && z.is_sign_negative());
    let Value::Float8(n) = dec(Oid::FLOAT8, "NaN") else {
        panic!()
    };
    assert!(n.is_nan());
    assert_eq!(dec(Oid::FLOAT8, "1e+15"), Value::Float8(1e15));
    assert_eq!(dec(Oid::FLOAT4, "0.1"), Value::Float4(0.1));
    err(Oid::FLOAT8, "inf");
    err(Oid::FLOAT8, "1e999");
    err(Oid::FLOAT4, "1e39");
    err(Oid::FLOAT8, "abc");
}

#[test]
fn value_numerics() {
    for s in [
        "100000000000000000000",
        "0.000000000000000000000000000001",
        "123.4500",
        "0.000",
        "0",
        "-1.5",
    ] {
        assert_eq!(rt(Oid::NUMERIC, s), num(s));
    }
    assert_eq!(rt(Oid::NUMERIC, "NaN"), Value::Numeric(Numeric::NaN));
    assert_eq!(
        rt(Oid::NUMERIC, "Infinity"),
        Value::Numeric(Numeric::PosInfinity)
    );
    assert_eq!(
        rt(Oid::NUMERIC, "-Infinity"),
        Value::Numeric(Numeric::NegInfinity)
    );
    let big = format!("-{}.{}", "9".repeat(1000), "1".repeat(1000));
    assert_eq!(rt(Oid::NUMERIC, &big), num(&big));
    err(Oid::NUMERIC, "1e10");
    err(Oid::NUMERIC, "1.2.3");
    err(Oid::NUMERIC, "");
}

#[test]
fn value_money() {
    for (s, cents) in [
        ("$12.34", Some(1234)),
        ("-$0.50", Some(-50)),
        ("$1,000,001.00", Some(100_000_100)),
        ("12,34 €", None),
    ] {
        let Value::Money(m) = rt(Oid::MONEY, s) else {
            panic!()
        };
        assert_eq!(m.cents, cents, "{s}");
        assert_eq!(&*m.text, s);
    }
}

#[test]
fn value_text_like() {
    assert_eq!(rt(Oid::TEXT, "as stored"), text("as stored"));
    assert_eq!(rt(Oid::TEXT, ""), text(""));
    assert_eq!(rt(Oid::VARCHAR, "héllo wörld"), text("héllo wörld"));
    assert_eq!(rt(Oid::BPCHAR, "x  "), text("x  "));
    assert_eq!(rt(Oid::NAME, "pg_class"), text("pg_class"));
    assert_eq!(rt(Oid::CHAR, "a"), text("a"));
    assert_eq!(rt(Oid::CHAR, "\\351"), text("\\351"));
    assert_eq!(rt(Oid::XML, "<a>b</a>"), text("<a>b</a>"));
    assert_eq!(rt(Oid::UNKNOWN, "?"), text("?"));
    assert!(decode_text(Oid::TEXT, -1, b"\xff", &reg()).is_err());
}

#[test]
fn value_bytea() {
    assert_eq!(
        rt(Oid::BYTEA, "\\xdeadbeef00"),
        Value::Bytea(vec![0xde, 0xad, 0xbe, 0xef, 0].into())
    );
    assert_eq!(rt(Oid::BYTEA, "\\x"), Value::Bytea(Vec::new().into()));
    // bytea_output=escape is accepted too.
    assert_eq!(
        dec(Oid::BYTEA, "\\336\\255\\\\ab"),
        Value::Bytea(vec![0xde, 0xad, b'\\', b'a', b'b'].into())
    );
    err(Oid::BYTEA, "\\xabc");
    err(Oid::BYTEA, "\\9");
}

#[test]
fn value_uuid() {
    let v = rt(Oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(
        v,
        Value::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ])
    );
    assert_eq!(dec(Oid::UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), v);
    err(Oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1");
}

#[test]
fn value_json_and_jsonb() {
    let v = dec(Oid::JSON, r#"{"a": [1, 2.50, null], "b":"x"}"#);
    let Value::Json(j) = &v else { panic!() };
    assert_eq!(
        j,
        &Json::Object(vec![
            (
                "a".into(),
                Json::Array(vec![
                    Json::Number("1".into()),
                    Json::Number("2.50".into()),
                    Json::Null
                ])
            ),
            ("b".into(), Json::String("x".into())),
        ])
    );
    assert_eq!(v.to_string(), r#"{"a": [1, 2.50, null], "b": "x"}"#);
    rt(Oid::JSONB, r#"{"a": [1, 2.50, null], "b": "x"}"#);
    assert_eq!(
        rt(Oid::JSONB, "3.0"),
        Value::Jsonb(Json::Number("3.0".into()))
    );
    assert_eq!(
        rt(Oid::JSONB, r#""str""#),
        Value::Jsonb(Json::String("str".into()))
    );
    rt(Oid::JSONB, r#"{"k": 1, "k": 2}"#);
    rt(Oid::JSONB, "[]");
    rt(
        Oid::JSONB,
        r#"{"n": 123456789012345678901234567890.000000000000000001}"#,
    );
    err(Oid::JSON, "{");
    err(Oid::JSONB, "[1,]");
    let deep = format!(
        "{}{}",
        "[".repeat(MAX_NESTING + 1),
        "]".repeat(MAX_NESTING + 1)
    );
    assert!(matches!(err(Oid::JSONB, &deep), ValueError::TooDeep { .. }));
    let ok = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
    rt(Oid::JSONB, &ok);
}

#[test]
fn value_dates() {
    for s in [
        "2024-02-29",
        "0001-01-01 BC",
        "4713-01-01 BC",
        "10000-01-01",
        "5874897-12-31",
        "infinity",
        "-infinity",
    ] {
        rt(Oid::DATE, s);
    }
    assert_eq!(dec(Oid::DATE, "2000-01-01"), Value::Date(Date(0)));
    assert_eq!(dec(Oid::DATE, "infinity"), Value::Date(Date::INFINITY));
    assert_eq!(dec(Oid::DATE, "-infinity"), Value::Date(Date(i32::MIN)));
    let Value::Date(d) = dec(Oid::DATE, "2024-02-29") else {
        panic!()
    };
    assert_eq!(d.to_ymd(), Some((2024, 2, 29)));
    err(Oid::DATE, "2023-02-29");
    err(Oid::DATE, "2024/02/29");
}

#[test]
fn value_times() {
    for s in ["23:59:59.999999", "00:00:00", "24:00:00", "12:00:00.5"] {
        rt(Oid::TIME, s);
    }
    assert_eq!(
        dec(Oid::TIME, "24:00:00"),
        Value::Time(Time(86_400_000_000))
    );
    for s in [
        "12:00:00+02",
        "00:00:00-00:30",
        "24:00:00+15:59",
        "12:00:00.123-03:30",
    ] {
        rt(Oid::TIMETZ, s);
    }
    assert_eq!(
        dec(Oid::TIMETZ, "00:00:00-00:30"),
        Value::TimeTz(TimeTz {
            micros: 0,
            offset_seconds: -1800
        })
    );
    err(Oid::TIME, "24:00:00.000001");
    err(Oid::TIMETZ, "12:00:00");
}

#[test]
fn value_timestamps() {
    for s in [
        "2024-02-29 13:45:01.123456",
        "2024-01-01 00:00:00.000001",
        "0044-03-15 12:00:00 BC",
        "294276-12-31 23:59:59.999999",
        "infinity",
        "-infinity",
    ] {
        rt(Oid::TIMESTAMP, s);
    }
    assert_eq!(
        dec(Oid::TIMESTAMP, "2000-01-01 00:00:00"),
        Value::Timestamp(Timestamp(0))
    );
    assert_eq!(
        dec(Oid::TIMESTAMP, "infinity"),
        Value::Timestamp(Timestamp(i64::MAX))
    );
    assert_eq!(
        dec(Oid::TIMESTAMP, "-infinity"),
        Value::Timestamp(Timestamp(i64::MIN))
    );
    for s in [
        "2024-02-29 08:15:01.5+00",
        "0001-01-01 00:00:00+00 BC",
        "infinity",
        "-infinity",
    ] {
        rt(Oid::TIMESTAMPTZ, s);
    }
    let a = dec(Oid::TIMESTAMPTZ, "2024-02-29 13:45:01.5+05:30");
    assert_eq!(a, dec(Oid::TIMESTAMPTZ, "2024-02-29 08:15:01.5+00"));
    assert_eq!(a.to_string(), "2024-02-29 08:15:01.5+00");
    assert_eq!(
        dec(Oid::TIMESTAMPTZ, "1850-01-01 12:19:32+00:19:32").to_string(),
        "1850-01-01 12:00:00+00"
    );
    let Value::TimestampTz(ts) = a else { panic!() };
    assert_eq!(ts.to_unix_nanos(), Some(1_709_194_501_500_000_000));
    assert_eq!(ts.to_unix_micros(), Some(1_709_194_501_500_000));
    err(Oid::TIMESTAMPTZ, "2024-02-29 08:15:01.5");
    err(Oid::TIMESTAMP, "2024-02-30 00:00:00");
}

#[test]
fn value_intervals() {
    for (s, months, days, micros) in [
        (
            "1 year 2 mons 3 days 04:05:06.789",
            14,
            3,
            14_706_789_000i64,
        ),
        ("-1 days -00:00:01", 0, -1, -1_000_000),
        ("-1 mons +1 day -00:00:01.5", -1, 1, -1_500_000),
        ("1 year 6 mons", 18, 0, 0),
        ("00:00:00", 0, 0, 0),
        ("-178000000 years", -2_136_000_000, 0, 0),
        ("1 mon 1 day", 1, 1, 0),
    ] {
        assert_eq!(
            rt(Oid::INTERVAL, s),
            Value::Interval(Interval {
                months,
                days,
                micros
            }),
            "{s}"
        );
    }
    err(Oid::INTERVAL, "P1Y");
    err(Oid::INTERVAL, "1 fortnight");
}

#[test]
fn value_network() {
    for s in ["192.168.0.1/24", "10.1.2.3", "::1", "::ffff:1.2.3.4"] {
        assert!(matches!(rt(Oid::INET, s), Value::Inet(_)));
    }
    for s in ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32"] {
        assert!(matches!(rt(Oid::CIDR, s), Value::Cidr(_)));
    }
    assert_eq!(
        dec(Oid::INET, "192.168.0.1/24"),
        Value::Inet(Inet {
            addr: IpAddr::from([192, 168, 0, 1]),
            prefix: 24
        })
    );
    assert_eq!(
        rt(Oid::MACADDR, "08:00:2b:01:02:03"),
        Value::MacAddr([8, 0, 0x2b, 1, 2, 3])
    );
    assert_eq!(
        rt(Oid::MACADDR8, "08:00:2b:01:02:03:04:05"),
        Value::MacAddr8([8, 0, 0x2b, 1, 2, 3, 4, 5])
    );
    err(Oid::INET, "300.1.1.1");
    err(Oid::CIDR, "10.0.0.0/33");
    err(Oid::MACADDR, "08:00:2b:01:02");
}

#[test]
fn value_bits_and_lsn() {
    assert_eq!(
        rt(Oid::BIT, "1010"),
        Value::Bit(BitString {
            len: 4,
            bytes: vec![0xa0]
        })
    );
    rt(Oid::VARBIT, "101");
    rt(Oid::VARBIT, "");
    err(Oid::BIT, "12");
    assert_eq!(rt(Oid::PG_LSN, "0/16B3748"), Value::Lsn(Lsn(0x16B3748)));
    assert_eq!(dec(Oid::PG_LSN, "0/016B3748"), Value::Lsn(Lsn(0x16B3748)));
    err(Oid::PG_LSN, "016B3748");
}

#[test]
fn value_kept_as_text() {
    assert_eq!(rt(Oid::POINT, "(1.5,-2)"), unknown(Oid::POINT, "(1.5,-2)"));
    rt(Oid::POINT, "(1e+300,1e-300)");
    assert_eq!(
        rt(Oid::RECORD, "(1,\"x y\")"),
        unknown(Oid::RECORD, "(1,\"x y\")")
    );
    assert_eq!(
        rt(Oid(99999), "anything at all"),
        unknown(Oid(99999), "anything at all")
    );
    rt(Oid::TSVECTOR, "'a' 'b'");
    rt(Oid::XID, "12345");
}

#[test]
fn value_lossless_fallback() {
    assert_eq!(
        decode_text_lossless(Oid::INT4, -1, b"12x", &reg()),
        unknown(Oid::INT4, "12x")
    );
    assert_eq!(
        decode_text_lossless(Oid::INT4, -1, b"12", &reg()),
        Value::Int4(12)
    );
    assert_eq!(
        decode_text_lossless(Oid::TEXT, -1, b"a\xffb", &reg()),
        unknown(Oid::TEXT, "a\u{fffd}b")
    );
    let e = err(Oid::INT4, "12x");
    assert_eq!(
        e,
        ValueError::InvalidText {
            type_oid: Oid::INT4,
            reason: "expected only digits"
        }
    );
    assert!(e.to_string().contains("int4 (oid 23)"), "{e}");
}

fn int_range(lo: Option<i32>, hi: Option<i32>, lo_inc: bool, hi_inc: bool) -> Range {
    Range {
        lower: lo.map(|v| Box::new(Value::Int4(v))),
        upper: hi.map(|v| Box::new(Value::Int4(v))),
        lower_inc: lo_inc,
        upper_inc: hi_inc,
        empty: false,
    }
}

#[test]
fn value_ranges() {
    assert_eq!(
        rt(Oid::INT4RANGE, "[1,10)"),
        Value::Range(int_range(Some(1), Some(10), true, false))
    );
    assert_eq!(
        rt(Oid::INT4RANGE, "(,6)"),
        Value::Range(int_range(None, Some(6), false, false))
    );
    assert_eq!(rt(Oid::INT4RANGE, "empty"), Value::Range(Range::empty()));
    rt(Oid::INT4RANGE, "(,)");
    rt(Oid::INT8RANGE, "[-9223372036854775808,0)");
    rt(Oid::NUMRANGE, "[1.50,2.5]");
    rt(Oid::NUMRANGE, "(NaN,Infinity)");
    let d = rt(Oid::DATERANGE, "[2024-01-01,)");
    let Value::Range(r) = d else { panic!() };
    assert_eq!(r.lower.as_deref(), Some(&dec(Oid::DATE, "2024-01-01")));
    assert!(r.upper.is_none());
    let ts = rt(
        Oid::TSRANGE,
        r#"["2024-01-01 00:00:00","2024-01-02 00:00:00")"#,
    );
    let Value::Range(r) = ts else { panic!() };
    assert_eq!(
        r.upper.as_deref(),
        Some(&dec(Oid::TIMESTAMP, "2024-01-02 00:00:00"))
    );
    rt(Oid::TSTZRANGE, r#"["2024-01-01 00:00:00+00",infinity)"#);
    rt(Oid::DATERANGE, "[2024-01-01,infinity)");
    // Input forms PostgreSQL also accepts.
    assert_eq!(dec(Oid::INT4RANGE, " EMPTY "), Value::Range(Range::empty()));
    assert_eq!(
        dec(Oid::INT4RANGE, "[\"1\",\"5\"]"),
        Value::Range(int_range(Some(1), Some(5), true, true))
    );
    err(Oid::INT4RANGE, "[1,10");
    err(Oid::INT4RANGE, "1,10)");
    err(Oid::INT4RANGE, "[1,10)x");
    err(Oid::INT4RANGE, "[a,10)");
}

#[test]
fn value_text_range_quoting() {
    let mut r = reg();
    r.register(Oid(30000), TypeKind::Range { subtype: Oid::TEXT });
    for s in [
        r#"["a b","c""d")"#,
        r#"["","x\\y"]"#,
        r#"["(",")"]"#,
        "[a,z)",
    ] {
        let v = decode_text(Oid(30000), -1, s.as_bytes(), &r).unwrap();
        assert_eq!(v.to_string(), s);
    }
    let v = decode_text(Oid(30000), -1, br#"["c""d",e\,f)"#, &r).unwrap();
    let Value::Range(rg) = v else { panic!() };
    assert_eq!(rg.lower.as_deref(), Some(&text("c\"d")));
    assert_eq!(rg.upper.as_deref(), Some(&text("e,f")));
}

#[test]
fn value_multiranges() {
    let v = dec(Oid::INT4MULTIRANGE, "{[1,3), [5,7)}");
    assert_eq!(
        v,
        Value::Multirange(vec![
            int_range(Some(1), Some(3), true, false),
            int_range(Some(5), Some(7), true, false)
        ])
    );
    assert_eq!(v.to_string(), "{[1,3),[5,7)}");
    assert_eq!(rt(Oid::INT4MULTIRANGE, "{}"), Value::Multirange(vec![]));
    rt(
        Oid::TSMULTIRANGE,
        r#"{["2024-01-01 00:00:00","2024-01-02 00:00:00"),["2024-02-01 00:00:00",)}"#,
    );
    rt(Oid::DATEMULTIRANGE, "{[2024-01-01,2024-02-01)}");
    rt(Oid::NUMMULTIRANGE, "{(,0.5]}");
    err(Oid::INT4MULTIRANGE, "{[1,3) [5,7)}");
    err(Oid::INT4MULTIRANGE, "[1,3)");
    err(Oid::INT4MULTIRANGE, "{[1,3),}");
}

fn arr(elem: Oid, dims: &[(i32, u32)], elements: Vec<Value>) -> Value {
    Value::Array(Box::new(Array {
        element_type: elem,
        dims: dims
            .iter()
            .map(|&(lower_bound, len)| ArrayDim { lower_bound, len })
            .collect(),
        elements,
    }))
}

#[test]
fn value_arrays() {
    assert_eq!(
        rt(Oid::INT4_ARRAY, "{1,NULL,3}"),
        arr(
            Oid::INT4,
            &[(1, 3)],
            vec![Value::Int4(1), Value::Null, Value::Int4(3)]
        )
    );
    assert_eq!(rt(Oid::INT4_ARRAY, "{}"), arr(Oid::INT4, &[], vec![]));
    assert_eq!(
        rt(Oid::INT4_ARRAY, "{{1,2},{3,4}}"),
        arr(
            Oid::INT4,
            &[(1, 2), (1, 2)],
            (1..=4).map(Value::Int4).collect()
        )
    );
    assert_eq!(
        rt(Oid::INT4_ARRAY, "[0:1]={1,2}"),
        arr(Oid::INT4, &[(0, 2)], vec![Value::Int4(1), Value::Int4(2)])
    );
    rt(Oid::INT4_ARRAY, "[-5:-4][3:5]={{1,2,3},{4,5,6}}");
    rt(Oid::INT4_ARRAY, "{{{1},{2}},{{3},{4}}}");
    assert_eq!(
        rt(
            Oid::TEXT_ARRAY,
            r#"{"a b","c,d","e\"f",NULL,"NULL","","a\\b"," x "}"#
        ),
        arr(
            Oid::TEXT,
            &[(1, 8)],
            vec![
                text("a b"),
                text("c,d"),
                text("e\"f"),
                Value::Null,
                text("NULL"),
                text(""),
                text("a\\b"),
                text(" x "),
            ]
        )
    );
    rt(Oid::TEXT_ARRAY, "{\"{\",\"}\",\"null\",nulls,é,\"a\tb\"}");
    assert_eq!(
        dec(Oid::TEXT_ARRAY, r#"{"a\tb"}"#),
        arr(Oid::TEXT, &[(1, 1)], vec![text("atb")])
    );
    rt(Oid::VARCHAR_ARRAY, r#"{abc,"x  "}"#);
    // Whitespace around elements is ignored; unquoted NULL in any case is NULL.
    assert_eq!(
        dec(Oid::TEXT_ARRAY, " { a , null ,\"b\" } "),
        arr(
            Oid::TEXT,
            &[(1, 3)],
            vec![text("a"), Value::Null, text("b")]
        )
    );
    // Escapes outside quotes and mixed quoting.
    assert_eq!(
        dec(Oid::TEXT_ARRAY, r#"{a\,b,x"y z"w,\ }"#),
        arr(
            Oid::TEXT,
            &[(1, 3)],
            vec![text("a,b"), text("xy zw"), text(" ")]
        )
    );
    // box uses ';'.
    assert_eq!(
        rt(Oid::BOX_ARRAY, "{(1,1),(0,0);(2,2),(1,1)}"),
        arr(
            Oid::BOX,
            &[(1, 2)],
            vec![
                unknown(Oid::BOX, "(1,1),(0,0)"),
                unknown(Oid::BOX, "(2,2),(1,1)")
            ]
        )
    );
    rt(Oid::POINT_ARRAY, r#"{"(1,2)","(3,4)"}"#);
    rt(
        Oid::TIMESTAMPTZ_ARRAY,
        r#"{"2024-02-29 08:15:01.5+00",infinity,NULL}"#,
    );
    rt(Oid::DATE_ARRAY, "{2024-02-29,\"0001-01-01 BC\"}");
    rt(Oid::NUMERIC_ARRAY, "{1.50,NaN,-Infinity}");
    rt(Oid::FLOAT8_ARRAY, "{0.1,-0,NaN,1e+100}");
    rt(Oid::BOOL_ARRAY, "{t,f,NULL}");
    rt(Oid::BYTEA_ARRAY, r#"{"\\xdead","\\x"}"#);
    rt(Oid::UUID_ARRAY, "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}");
    rt(
        Oid::INTERVAL_ARRAY,
        r#"{"1 day","-1 days -00:00:01",00:00:00}"#,
    );
    rt(Oid::INET_ARRAY, "{10.0.0.1,::1/64}");
    rt(
        Oid::JSONB_ARRAY,
        r#"{"{\"a\": [1, 2.50, null]}",[],NULL,"\"s\""}"#,
    );
    rt(Oid::INT4RANGE_ARRAY, r#"{"[1,3)",empty,"(,)"}"#);
    rt(Oid::INT4MULTIRANGE_ARRAY, r#"{"{[1,3),[5,7)}","{}"}"#);
    rt(Oid::MONEY_ARRAY, r#"{$1.00,"$1,000.00"}"#);
    rt(Oid::CHAR_ARRAY, "{a,b}");
    rt(Oid::OID_ARRAY, "{4294967295}");
    // Unknown element types keep their text.
    let mut r = reg();
    r.register(
        Oid(40000),
        TypeKind::Array {
            element: Oid(40001),
        },
    );
    assert_eq!(
        decode_text(Oid(40000), -1, b"{x,\"y z\"}", &r).unwrap(),
        arr(
            Oid(40001),
            &[(1, 2)],
            vec![unknown(Oid(40001), "x"), unknown(Oid(40001), "y z")]
        )
    );
}

#[test]
fn value_malformed_arrays() {
    for s in [
        "",
        "{",
        "}",
        "{1,2",
        "{1,}",
        "{,1}",
        "{1 2}",
        "{{1,2},{3}}",
        "{{1,2},3}",
        "{1,{2}}",
        "{{},{}}",
        "{\"1}",
        "{1}}",
        "{1} x",
        "[1:3]={1,2}",
        "[2:1]={}",
        "[1:2]{1,2}",
        "[0:1]={{1,2},{3,4}}",
        "{a}",
        "{1\\",
    ] {
        err(Oid::INT4_ARRAY, s);
    }
    // Nesting beyond the limit is refused, at the limit it works.
    let ok = format!("{}1{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
    rt(Oid::INT4_ARRAY, &ok);
    let deep = format!(
        "{}1{}",
        "{".repeat(MAX_NESTING + 1),
        "}".repeat(MAX_NESTING + 1)
    );
    assert!(matches!(
        err(Oid::INT4_ARRAY, &deep),
        ValueError::TooDeep { .. }
    ));
    let hostile = "{".repeat(1_000_000);
    assert!(decode_text(Oid::INT4_ARRAY, -1, hostile.as_bytes(), &reg()).is_err());
}

#[test]
fn value_user_types() {
    let mut r = reg();
    // CREATE DOMAIN posint AS int: Y 16400 "" "int4"
    r.register_from_type_message(Oid(16400), "", "int4");
    assert_eq!(
        decode_text(Oid(16400), -1, b"42", &r).unwrap(),
        Value::Int4(42)
    );
    // A domain over an array type.
    r.register_from_type_message(Oid(16401), "pg_catalog", "_text");
    assert_eq!(
        decode_text(Oid(16401), -1, b"{a}", &r).unwrap().to_string(),
        "{a}"
    );
    // An enum: unknown until registered.
    r.register_from_type_message(Oid(16500), "public", "mood");
    assert_eq!(
        decode_text(Oid(16500), -1, b"happy", &r).unwrap(),
        unknown(Oid(16500), "happy")
    );
    r.register(Oid(16500), TypeKind::Enum);
    let happy = Value::Enum {
        type_oid: Oid(16500),
        label: "happy".into(),
    };
    assert_eq!(decode_text(Oid(16500), -1, b"happy", &r).unwrap(), happy);
    assert_eq!(happy.to_string(), "happy");
    // Its array type, learned by name.
    r.register_from_type_message(Oid(16499), "public", "_mood");
    assert_eq!(
        decode_text(Oid(16499), -1, b"{happy,NULL,\"very sad\"}", &r).unwrap(),
        arr(
            Oid(16500),
            &[(1, 3)],
            vec![
                happy.clone(),
                Value::Null,
                Value::Enum {
                    type_oid: Oid(16500),
                    label: "very sad".into()
                }
            ]
        )
    );
    // An array type whose element type was never described still decodes as a list.
    r.register_from_type_message(Oid(16900), "public", "_point3d");
    assert_eq!(
        decode_text(Oid(16900), -1, b"{\"(1,2,3)\",NULL}", &r).unwrap(),
        arr(
            Oid::INVALID,
            &[(1, 2)],
            vec![unknown(Oid::INVALID, "(1,2,3)"), Value::Null]
        )
    );
    // A domain over the enum (the Type message carries the enum's name).
    r.register_from_type_message(Oid(16510), "public", "mood");
    assert_eq!(decode_text(Oid(16510), -1, b"happy", &r).unwrap(), happy);
    // A user range over numeric and its multirange.
    r.register(
        Oid(16600),
        TypeKind::Range {
            subtype: Oid::NUMERIC,
        },
    );
    r.register(Oid(16601), TypeKind::Multirange { range: Oid(16600) });
    assert_eq!(
        decode_text(Oid(16601), -1, b"{[1.5,2.5)}", &r)
            .unwrap()
            .to_string(),
        "{[1.5,2.5)}"
    );
    // Composites stay text.
    r.register(Oid(16700), TypeKind::Composite);
    assert_eq!(
        decode_text(Oid(16700), -1, b"(1,\"x y\")", &r).unwrap(),
        unknown(Oid(16700), "(1,\"x y\")")
    );
    // Cycles are survived.
    r.register(
        Oid(16800),
        TypeKind::Array {
            element: Oid(16800),
        },
    );
    assert!(decode_text(Oid(16800), -1, b"{{{x}}}", &r).is_err());
}

#[test]
fn value_display_helpers() {
    assert_eq!(Value::Null.to_string(), "NULL");
    assert_eq!(Value::Date(Date::INFINITY).to_string(), "infinity");
    assert_eq!(
        Value::Interval(Interval {
            months: 0,
            days: 1,
            micros: 0
        })
        .to_string(),
        "1 day"
    );
    assert_eq!(
        Value::TimestampTz(Timestamp(0)).to_string(),
        "2000-01-01 00:00:00+00"
    );
    assert_eq!(
        Value::Timestamp(Timestamp(0)).to_string(),
        "2000-01-01 00:00:00"
    );
    assert_eq!(Timestamp(0).to_string_utc(), "2000-01-01 00:00:00+00");
    assert_eq!(text("x").as_str(), Some("x"));
}
