//! Binary-format decoding (`pgcdc_core::value::decode_binary`) with the layouts and examples
//! of PROTOCOL.md §6.2.
#![allow(missing_docs)]

use std::net::IpAddr;

use pgcdc_core::Lsn;
use pgcdc_core::value::{
    Array, ArrayDim, BitString, Date, Inet, Interval, Json, MAX_NESTING, Numeric, Oid, Range, Time,
    TimeTz, Timestamp, TypeKind, TypeRegistry, Value, ValueError, decode_binary, decode_text,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn dec(oid: Oid, b: &[u8]) -> Value {
    decode_binary(oid, b, &TypeRegistry::new()).unwrap_or_else(|e| panic!("{b:02x?}: {e}"))
}

fn bad(oid: Oid, b: &[u8]) -> ValueError {
    match decode_binary(oid, b, &TypeRegistry::new()) {
        Ok(v) => panic!("{b:02x?} decoded as {oid} to {v:?}"),
        Err(e) => e,
    }
}

/// Decoding the binary form gives the same value as decoding the text form.
fn same_as_text(oid: Oid, b: &[u8], text: &str) {
    let reg = TypeRegistry::new();
    let from_bin = decode_binary(oid, b, &reg).unwrap();
    let from_text = decode_text(oid, -1, text.as_bytes(), &reg).unwrap();
    assert_eq!(from_bin, from_text, "{text}");
    assert_eq!(from_bin.to_string(), text);
}

fn num(s: &str) -> Value {
    Value::Numeric(Numeric::Finite(s.into()))
}

#[test]
fn value_scalars() {
    assert_eq!(dec(Oid::BOOL, &[1]), Value::Bool(true));
    assert_eq!(dec(Oid::BOOL, &[0]), Value::Bool(false));
    assert_eq!(dec(Oid::INT2, &hex("8000")), Value::Int2(i16::MIN));
    assert_eq!(dec(Oid::INT4, &hex("0000002a")), Value::Int4(42));
    assert_eq!(
        dec(Oid::INT8, &hex("7fffffffffffffff")),
        Value::Int8(i64::MAX)
    );
    assert_eq!(dec(Oid::OID, &hex("ffffffff")), Value::Oid(u32::MAX));
    let Value::Float4(f) = dec(Oid::FLOAT4, &hex("7fc00000")) else {
        panic!()
    };
    assert!(f.is_nan());
    assert_eq!(
        dec(Oid::FLOAT8, &hex("7ff0000000000000")),
        Value::Float8(f64::INFINITY)
    );
    let Value::Float8(z) = dec(Oid::FLOAT8, &hex("8000000000000000")) else {
        panic!()
    };
    assert!(z == 0.0 && z.is_sign_negative());
    same_as_text(Oid::FLOAT8, &0.1f64.to_be_bytes(), "0.1");
    same_as_text(Oid::FLOAT4, &1.5f32.to_be_bytes(), "1.5");
    for (oid, len) in [
        (Oid::BOOL, 2),
        (Oid::INT2, 4),
        (Oid::INT4, 2),
        (Oid::INT8, 4),
        (Oid::OID, 8),
        (Oid::FLOAT4, 8),
        (Oid::FLOAT8, 4),
        (Oid::UUID, 15),
        (Oid::DATE, 8),
        (Oid::TIME, 4),
        (Oid::TIMETZ, 8),
        (Oid::TIMESTAMP, 4),
        (Oid::TIMESTAMPTZ, 9),
        (Oid::INTERVAL, 12),
        (Oid::MACADDR, 8),
        (Oid::MACADDR8, 6),
        (Oid::MONEY, 4),
        (Oid::PG_LSN, 4),
        (Oid::CHAR, 2),
    ] {
        assert!(matches!(
            bad(oid, &vec![0; len]),
            ValueError::InvalidBinary { .. }
        ));
    }
}

#[test]
fn value_numerics() {
    assert_eq!(
        dec(Oid::NUMERIC, &hex("0003 0001 0000 0003 007b 11d7 22ce")),
        num("1234567.891")
    );
    assert_eq!(
        dec(Oid::NUMERIC, &hex("0001 fff8 0000 001e 0064")),
        num("0.000000000000000000000000000001")
    );
    same_as_text(
        Oid::NUMERIC,
        &hex("0003 0001 0000 0003 007b 11d7 22ce"),
        "1234567.891",
    );
    assert_eq!(
        dec(Oid::NUMERIC, &hex("0000 0000 c000 0000")),
        Value::Numeric(Numeric::NaN)
    );
    assert_eq!(
        dec(Oid::NUMERIC, &hex("0000 0000 d000 0000")),
        Value::Numeric(Numeric::PosInfinity)
    );
    // -Infinity was observed with dscale 0x20, which is ignored.
    assert_eq!(
        dec(Oid::NUMERIC, &hex("0000 0000 f000 0020")),
        Value::Numeric(Numeric::NegInfinity)
    );
    // 123.4500: digits 123, 4500, dscale 4
    same_as_text(
        Oid::NUMERIC,
        &hex("0002 0000 0000 0004 007b 1194"),
        "123.4500",
    );
    // -100000000000000000000 = -1 * 10000^5
    same_as_text(
        Oid::NUMERIC,
        &hex("0001 0005 4000 0000 0001"),
        "-100000000000000000000",
    );
    same_as_text(Oid::NUMERIC, &hex("0000 0000 0000 0003"), "0.000");
    bad(Oid::NUMERIC, &hex("0001 0000 0000 0000 2710"));
    bad(Oid::NUMERIC, &hex("0002 0000 0000 0000 0001"));
}

#[test]
fn value_text_like() {
    assert_eq!(dec(Oid::TEXT, b"h\xc3\xa9llo"), Value::Text("héllo".into()));
    assert_eq!(dec(Oid::BPCHAR, b"x  "), Value::Text("x  ".into()));
    for oid in [Oid::VARCHAR, Oid::NAME, Oid::XML, Oid::UNKNOWN] {
        assert_eq!(dec(oid, b"abc"), Value::Text("abc".into()));
    }
    assert_eq!(dec(Oid::CHAR, b"a"), Value::Text("a".into()));
    assert_eq!(dec(Oid::CHAR, &[0xe9]), Value::Text("\\351".into()));
    assert!(matches!(
        bad(Oid::TEXT, b"\xff"),
        ValueError::InvalidBinary { .. }
    ));
    assert_eq!(
        dec(Oid::BYTEA, &[0, 0xff, 0x5c]),
        Value::Bytea(vec![0, 0xff, 0x5c].into())
    );
    assert_eq!(dec(Oid::BYTEA, &[]).to_string(), "\\x");
    same_as_text(
        Oid::UUID,
        &hex("a0eebc999c0b4ef8bb6d6bb9bd380a11"),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    );
}

#[test]
fn value_json() {
    let j = dec(Oid::JSONB, b"\x01{\"a\": [1, 2.50, null], \"b\": \"x\"}");
    assert_eq!(j.to_string(), r#"{"a": [1, 2.50, null], "b": "x"}"#);
    assert!(matches!(j, Value::Jsonb(Json::Object(_))));
    assert!(matches!(
        dec(Oid::JSON, b"[1, 2]"),
        Value::Json(Json::Array(_))
    ));
    bad(Oid::JSONB, b"\x02{}");
    bad(Oid::JSONB, b"");
    bad(Oid::JSONB, b"\x01{");
}

#[test]
fn value_dates_and_times() {
    assert_eq!(dec(Oid::DATE, &hex("00000000")), Value::Date(Date(0)));
    assert_eq!(
        dec(Oid::DATE, &i32::MAX.to_be_bytes()),
        Value::Date(Date::INFINITY)
    );
    assert_eq!(
        dec(Oid::DATE, &i32::MIN.to_be_bytes()),
        Value::Date(Date::NEG_INFINITY)
    );
    same_as_text(Oid::DATE, &i32::MAX.to_be_bytes(), "infinity");
    same_as_text(Oid::DATE, &i32::MIN.to_be_bytes(), "-infinity");
    same_as_text(Oid::DATE, &8825i32.to_be_bytes(), "2024-02-29");
    same_as_text(
        Oid::TIME,
        &86_399_999_999i64.to_be_bytes(),
        "23:59:59.999999",
    );
    same_as_text(Oid::TIME, &86_400_000_000i64.to_be_bytes(), "24:00:00");
    bad(Oid::TIME, &86_400_000_001i64.to_be_bytes());
    bad(Oid::TIME, &(-1i64).to_be_bytes());
    // timetz: the zone is seconds WEST of UTC: +02 → -7200, -00:30 → +1800.
    let mut b = (12i64 * 3_600_000_000).to_be_bytes().to_vec();
    b.extend_from_slice(&(-7200i32).to_be_bytes());
    assert_eq!(
        dec(Oid::TIMETZ, &b),
        Value::TimeTz(TimeTz {
            micros: 12 * 3_600_000_000,
            offset_seconds: 7200
        })
    );
    same_as_text(Oid::TIMETZ, &b, "12:00:00+02");
    let mut b = 0i64.to_be_bytes().to_vec();
    b.extend_from_slice(&1800i32.to_be_bytes());
    same_as_text(Oid::TIMETZ, &b, "00:00:00-00:30");
    let mut b = 0i64.to_be_bytes().to_vec();
    b.extend_from_slice(&(16 * 3600i32).to_be_bytes());
    bad(Oid::TIMETZ, &b);
    assert_eq!(dec(Oid::TIME, &0i64.to_be_bytes()), Value::Time(Time(0)));
}

#[test]
fn value_timestamps() {
    assert_eq!(
        dec(Oid::TIMESTAMP, &i64::MAX.to_be_bytes()),
        Value::Timestamp(Timestamp::INFINITY)
    );
    assert_eq!(
        dec(Oid::TIMESTAMPTZ, &i64::MIN.to_be_bytes()),
        Value::TimestampTz(Timestamp::NEG_INFINITY)
    );
    same_as_text(Oid::TIMESTAMP, &i64::MAX.to_be_bytes(), "infinity");
    same_as_text(Oid::TIMESTAMPTZ, &i64::MIN.to_be_bytes(), "-infinity");
    // 2024-02-29 08:15:01.5 UTC
    let us: i64 = 8825 * 86_400_000_000 + (8 * 3600 + 15 * 60 + 1) * 1_000_000 + 500_000;
    same_as_text(
        Oid::TIMESTAMPTZ,
        &us.to_be_bytes(),
        "2024-02-29 08:15:01.5+00",
    );
    same_as_text(Oid::TIMESTAMP, &us.to_be_bytes(), "2024-02-29 08:15:01.5");
    let Value::TimestampTz(ts) = dec(Oid::TIMESTAMPTZ, &us.to_be_bytes()) else {
        panic!()
    };
    assert_eq!(ts.to_unix_nanos(), Some(1_709_194_501_500_000_000));
}

#[test]
fn value_intervals() {
    // i64 microseconds, i32 days, i32 months
    let mut b = 14_706_789_000i64.to_be_bytes().to_vec();
    b.extend_from_slice(&3i32.to_be_bytes());
    b.extend_from_slice(&14i32.to_be_bytes());
    assert_eq!(
        dec(Oid::INTERVAL, &b),
        Value::Interval(Interval {
            months: 14,
            days: 3,
            micros: 14_706_789_000
        })
    );
    same_as_text(Oid::INTERVAL, &b, "1 year 2 mons 3 days 04:05:06.789");
}

#[test]
fn value_network_money_bits_lsn() {
    same_as_text(Oid::INET, &hex("02 18 00 04 c0a80001"), "192.168.0.1/24");
    same_as_text(Oid::INET, &hex("02 20 00 04 0a010203"), "10.1.2.3");
    same_as_text(Oid::CIDR, &hex("02 08 01 04 0a000000"), "10.0.0.0/8");
    same_as_text(
        Oid::CIDR,
        &hex("03 20 01 10 20010db8000000000000000000000000"),
        "2001:db8::/32",
    );
    assert_eq!(
        dec(
            Oid::INET,
            &hex("03 80 00 10 00000000000000000000000000000001")
        ),
        Value::Inet(Inet {
            addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            prefix: 128
        })
    );
    bad(Oid::INET, &hex("02 21 00 04 0a010203"));
    bad(Oid::INET, &hex("02 20 00 10 0a010203"));
    bad(Oid::INET, &hex("04 20 00 04 0a010203"));
    same_as_text(Oid::MACADDR, &hex("08002b010203"), "08:00:2b:01:02:03");
    same_as_text(
        Oid::MACADDR8,
        &hex("08002b0102030405"),
        "08:00:2b:01:02:03:04:05",
    );
    let Value::Money(m) = dec(Oid::MONEY, &100_000_100i64.to_be_bytes()) else {
        panic!()
    };
    assert_eq!(m.cents, Some(100_000_100));
    assert_eq!(&*m.text, "$1,000,001.00");
    let Value::Money(m) = dec(Oid::MONEY, &(-50i64).to_be_bytes()) else {
        panic!()
    };
    assert_eq!(&*m.text, "-$0.50");
    same_as_text(Oid::BIT, &hex("00000004 a0"), "1010");
    same_as_text(Oid::VARBIT, &hex("00000000"), "");
    same_as_text(Oid::VARBIT, &hex("00000009 a080"), "101000001");
    // Pad bits are zeroed.
    assert_eq!(
        dec(Oid::VARBIT, &hex("00000003 ff")),
        Value::Bit(BitString {
            len: 3,
            bytes: vec![0xe0]
        })
    );
    bad(Oid::BIT, &hex("00000009 a0"));
    bad(Oid::BIT, &hex("ffffffff"));
    assert_eq!(
        dec(Oid::PG_LSN, &0x16B3748u64.to_be_bytes()),
        Value::Lsn(Lsn(0x16B3748))
    );
}

// ---------------------------------------------------------------------------------------------
// Arrays and ranges.

fn bin_array(elem: u32, dims: &[(i32, i32)], elems: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(dims.len() as i32).to_be_bytes());
    b.extend_from_slice(&i32::from(elems.iter().any(Option::is_none)).to_be_bytes());
    b.extend_from_slice(&elem.to_be_bytes());
    for &(len, lb) in dims {
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&lb.to_be_bytes());
    }
    for e in elems {
        match e {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(d) => {
                b.extend_from_slice(&(d.len() as i32).to_be_bytes());
                b.extend_from_slice(d);
            }
        }
    }
    b
}

fn i4(v: i32) -> Option<Vec<u8>> {
    Some(v.to_be_bytes().to_vec())
}

#[test]
fn value_arrays() {
    same_as_text(
        Oid::INT4_ARRAY,
        &bin_array(23, &[(3, 1)], &[i4(1), None, i4(3)]),
        "{1,NULL,3}",
    );
    same_as_text(Oid::INT4_ARRAY, &bin_array(23, &[], &[]), "{}");
    same_as_text(
        Oid::INT4_ARRAY,
        &bin_array(23, &[(2, 1), (2, 1)], &[i4(1), i4(2), i4(3), i4(4)]),
        "{{1,2},{3,4}}",
    );
    same_as_text(
        Oid::INT4_ARRAY,
        &bin_array(23, &[(2, 0)], &[i4(1), i4(2)]),
        "[0:1]={1,2}",
    );
    same_as_text(
        Oid::TEXT_ARRAY,
        &bin_array(
            25,
            &[(4, 1)],
            &[
                Some(b"a b".to_vec()),
                Some(b"NULL".to_vec()),
                None,
                Some(Vec::new()),
            ],
        ),
        r#"{"a b","NULL",NULL,""}"#,
    );
    // A zero-length dimension is an empty array.
    assert_eq!(
        dec(Oid::INT4_ARRAY, &bin_array(23, &[(0, 1)], &[])).to_string(),
        "{}"
    );
    let v = dec(Oid::INT4_ARRAY, &bin_array(23, &[(2, 1)], &[i4(7), i4(8)]));
    assert_eq!(
        v,
        Value::Array(Box::new(Array {
            element_type: Oid::INT4,
            dims: vec![ArrayDim {
                lower_bound: 1,
                len: 2
            }],
            elements: vec![Value::Int4(7), Value::Int4(8)]
        }))
    );
    // Malformed arrays.
    bad(Oid::INT4_ARRAY, &bin_array(23, &[(3, 1)], &[i4(1), i4(2)]));
    bad(Oid::INT4_ARRAY, &bin_array(23, &[(1, 1)], &[i4(1), i4(2)]));
    bad(Oid::INT4_ARRAY, &bin_array(23, &[(-1, 1)], &[]));
    bad(
        Oid::INT4_ARRAY,
        &bin_array(23, &[(i32::MAX, 1), (i32::MAX, 1)], &[]),
    );
    bad(
        Oid::INT4_ARRAY,
        &bin_array(23, &[(2, i32::MAX)], &[i4(1), i4(2)]),
    );
    bad(Oid::INT4_ARRAY, &bin_array(23, &[(1, 1)], &[Some(vec![1])]));
    bad(Oid::INT4_ARRAY, &hex("00000001 00000000"));
    let mut neg_len = bin_array(23, &[(1, 1)], &[]);
    neg_len.extend_from_slice(&(-2i32).to_be_bytes());
    bad(Oid::INT4_ARRAY, &neg_len);
}

#[test]
fn value_arrays_of_user_types() {
    let mut reg = TypeRegistry::new();
    reg.register_from_type_message(Oid(16500), "public", "mood");
    reg.register(Oid(16500), TypeKind::Enum);
    reg.register_from_type_message(Oid(16499), "public", "_mood");
    let b = bin_array(16500, &[(2, 1)], &[Some(b"happy".to_vec()), None]);
    let v = decode_binary(Oid(16499), &b, &reg).unwrap();
    assert_eq!(v.to_string(), "{happy,NULL}");
    let Value::Array(a) = v else { panic!() };
    assert_eq!(
        a.elements.first(),
        Some(&Value::Enum {
            type_oid: Oid(16500),
            label: "happy".into()
        })
    );
    // The publisher's element OID is unknown here: the registry's element type is used.
    let b = bin_array(99999, &[(1, 1)], &[Some(b"sad".to_vec())]);
    let v = decode_binary(Oid(16499), &b, &reg).unwrap();
    assert_eq!(v.to_string(), "{sad}");
    // A domain decodes as its base type.
    reg.register_from_type_message(Oid(16400), "", "int4");
    assert_eq!(
        decode_binary(Oid(16400), &42i32.to_be_bytes(), &reg).unwrap(),
        Value::Int4(42)
    );
    // An unregistered user type: text-like bytes are kept, others refused.
    assert_eq!(
        decode_binary(Oid(17000), b"label", &reg).unwrap(),
        Value::Unknown {
            type_oid: Oid(17000),
            text: "label".into()
        }
    );
    assert_eq!(
        decode_binary(Oid(17000), b"\xff\x00", &reg),
        Err(ValueError::NoBinaryDecoder {
            type_oid: Oid(17000)
        })
    );
    // Built-ins without a structured form get the same text as in text mode...
    let mut p = 1.5f64.to_be_bytes().to_vec();
    p.extend_from_slice(&(-2f64).to_be_bytes());
    assert_eq!(
        decode_binary(Oid::POINT, &p, &reg).unwrap(),
        decode_text(Oid::POINT, -1, b"(1.5,-2)", &reg).unwrap()
    );
    let mut bx = Vec::new();
    for v in [1f64, 1.0, 0.0, 0.0] {
        bx.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(
        decode_binary(Oid::BOX, &bx, &reg).unwrap().to_string(),
        "(1,1),(0,0)"
    );
    assert_eq!(
        decode_binary(Oid::XID, &752u32.to_be_bytes(), &reg)
            .unwrap()
            .to_string(),
        "752"
    );
    assert_eq!(
        decode_binary(Oid::TID, &hex("00000001 0002"), &reg)
            .unwrap()
            .to_string(),
        "(1,2)"
    );
    assert!(decode_binary(Oid::POINT, &[0u8; 15], &reg).is_err());
    // ...others are refused rather than guessed at.
    assert_eq!(
        decode_binary(Oid::TSVECTOR, b"abc", &reg),
        Err(ValueError::NoBinaryDecoder {
            type_oid: Oid::TSVECTOR
        })
    );
}

#[test]
fn value_nesting_is_bounded() {
    // An array type registered as its own element: each level is a valid nested array.
    let mut reg = TypeRegistry::new();
    reg.register(
        Oid(20000),
        TypeKind::Array {
            element: Oid(20000),
        },
    );
    let nest = |levels: usize| {
        let mut b = bin_array(20000, &[], &[]);
        for _ in 0..levels {
            b = bin_array(20000, &[(1, 1)], &[Some(b)]);
        }
        b
    };
    assert!(decode_binary(Oid(20000), &nest(MAX_NESTING), &reg).is_ok());
    assert!(matches!(
        decode_binary(Oid(20000), &nest(MAX_NESTING + 1), &reg),
        Err(ValueError::TooDeep { .. })
    ));
    assert!(decode_binary(Oid(20000), &nest(1_000), &reg).is_err());
    // Too many dimensions.
    let dims = vec![(1, 1); MAX_NESTING + 1];
    assert!(matches!(
        decode_binary(Oid::INT4_ARRAY, &bin_array(23, &dims, &[i4(1)]), &reg),
        Err(ValueError::TooDeep { .. })
    ));
}

fn bin_range(flags: u8, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) -> Vec<u8> {
    let mut b = vec![flags];
    for d in [lower, upper].into_iter().flatten() {
        b.extend_from_slice(&(d.len() as i32).to_be_bytes());
        b.extend_from_slice(&d);
    }
    b
}

#[test]
fn value_ranges() {
    same_as_text(Oid::INT4RANGE, &bin_range(0x02, i4(1), i4(10)), "[1,10)");
    same_as_text(Oid::INT4RANGE, &bin_range(0x08, None, i4(6)), "(,6)");
    same_as_text(Oid::INT4RANGE, &bin_range(0x01, None, None), "empty");
    same_as_text(Oid::INT4RANGE, &bin_range(0x18, None, None), "(,)");
    same_as_text(
        Oid::NUMRANGE,
        &bin_range(
            0x06,
            Some(hex("0001 0000 0000 0000 0001")),
            Some(hex("0001 0000 0000 0000 0002")),
        ),
        "[1,2]",
    );
    same_as_text(
        Oid::DATERANGE,
        &bin_range(0x12, Some(8766i32.to_be_bytes().to_vec()), None),
        "[2024-01-01,)",
    );
    assert_eq!(
        dec(Oid::INT4RANGE, &bin_range(0x01, None, None)),
        Value::Range(Range::empty())
    );
    bad(Oid::INT4RANGE, &bin_range(0x02, i4(1), None));
    bad(Oid::INT4RANGE, &bin_range(0x80, i4(1), i4(2)));
    bad(Oid::INT4RANGE, &[]);
    let mut extra = bin_range(0x01, None, None);
    extra.push(0);
    bad(Oid::INT4RANGE, &extra);

    // Multirange: i32 count, then length-prefixed ranges.
    let r1 = bin_range(0x02, i4(1), i4(3));
    let r2 = bin_range(0x02, i4(5), i4(7));
    let mut mr = 2i32.to_be_bytes().to_vec();
    for r in [&r1, &r2] {
        mr.extend_from_slice(&(r.len() as i32).to_be_bytes());
        mr.extend_from_slice(r);
    }
    same_as_text(Oid::INT4MULTIRANGE, &mr, "{[1,3),[5,7)}");
    same_as_text(Oid::INT4MULTIRANGE, &0i32.to_be_bytes(), "{}");
    bad(Oid::INT4MULTIRANGE, &1_000_000i32.to_be_bytes());
    // An array of ranges.
    same_as_text(
        Oid::INT4RANGE_ARRAY,
        &bin_array(3904, &[(2, 1)], &[Some(r1), None]),
        r#"{"[1,3)",NULL}"#,
    );
}
