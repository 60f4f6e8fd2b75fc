//! Property tests for `pgcdc_core::value`: decoders never panic on any input, and values
//! formatted the way PostgreSQL prints them parse back to the same value.
#![allow(missing_docs)]

use std::net::IpAddr;

use pgcdc_core::value::{
    Array, Date, Inet, Interval, Json, Numeric, Oid, Range, Time, TimeTz, Timestamp, TypeKind,
    TypeRegistry, Value, decode_binary, decode_text,
};
use proptest::prelude::*;

/// A registry with one user type of every kind (and a cycle), so user-type paths are hit too.
fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    r.register_from_type_message(Oid(16400), "", "int4");
    r.register_from_type_message(Oid(16401), "", "_numeric");
    r.register(Oid(16500), TypeKind::Enum);
    r.register(
        Oid(16501),
        TypeKind::Array {
            element: Oid(16500),
        },
    );
    r.register(Oid(16600), TypeKind::Range { subtype: Oid::TEXT });
    r.register(Oid(16601), TypeKind::Multirange { range: Oid(16600) });
    r.register(Oid(16700), TypeKind::Composite);
    r.register(
        Oid(16800),
        TypeKind::Array {
            element: Oid(16800),
        },
    );
    r.register(
        Oid(16801),
        TypeKind::Range {
            subtype: Oid(16801),
        },
    );
    r
}

fn all_oids() -> Vec<Oid> {
    let mut v: Vec<Oid> = Oid::builtins().collect();
    v.extend(
        [
            16400, 16401, 16500, 16501, 16600, 16601, 16700, 16800, 16801, 99999,
        ]
        .map(Oid),
    );
    v
}

/// Text made of the characters that matter to PostgreSQL's parsers.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> =
        b"{}[](),;\"\\ \t:-+./@$01234567899eExabcdfTtNULnulinfityempBC".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..96)
}

/// Binary data that gets past the array/range/numeric headers often.
fn binaryish() -> impl Strategy<Value = Vec<u8>> {
    let oids: Vec<u32> = all_oids().iter().map(|o| o.0).collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            0i32..4,
            0i32..2,
            prop::sample::select(oids),
            prop::collection::vec((0i32..4, -2i32..3), 0..4),
            prop::collection::vec(
                prop_oneof![
                    Just(-1i32).prop_map(|l| l.to_be_bytes().to_vec()),
                    prop::collection::vec(any::<u8>(), 0..12).prop_map(|d| {
                        let mut b = (d.len() as i32).to_be_bytes().to_vec();
                        b.extend(d);
                        b
                    }),
                ],
                0..8
            ),
        )
            .prop_map(|(ndim, flags, elem, dims, elems)| {
                let mut b = ndim.to_be_bytes().to_vec();
                b.extend(flags.to_be_bytes());
                b.extend(elem.to_be_bytes());
                for (len, lb) in dims.iter().take(ndim as usize) {
                    b.extend(len.to_be_bytes());
                    b.extend(lb.to_be_bytes());
                }
                for e in elems {
                    b.extend(e);
                }
                b
            }),
        (
            any::<u8>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..10), 0..3)
        )
            .prop_map(|(flags, bounds)| {
                let mut b = vec![flags & 0x1f];
                for d in bounds {
                    b.extend((d.len() as i32).to_be_bytes());
                    b.extend(d);
                }
                b
            }),
        (
            0i16..4,
            -3i16..4,
            prop::sample::select(vec![0u16, 0x4000, 0xC000, 0x1234]),
            0i16..20,
            prop::collection::vec(0i16..10000, 0..4)
        )
            .prop_map(|(n, w, s, d, digits)| {
                let mut b = n.to_be_bytes().to_vec();
                b.extend(w.to_be_bytes());
                b.extend(s.to_be_bytes());
                b.extend(d.to_be_bytes());
                for x in digits {
                    b.extend(x.to_be_bytes());
                }
                b
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers and generators for round trips.

fn canonical_numeric() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![
            Just(String::from("0")),
            "[1-9][0-9]{0,40}",
            "[1-9][0-9]{0,999}",
        ],
        prop_oneof![
            Just(None),
            "[0-9]{1,40}".prop_map(Some),
            "[0-9]{1,1000}".prop_map(Some),
        ],
    )
        .prop_map(|(neg, int, frac)| {
            let mut s = String::new();
            let zero = int == "0" && frac.as_deref().is_none_or(|f| f.bytes().all(|b| b == b'0'));
            if neg && !zero {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            s
        })
}

/// numeric_send of a canonical decimal string.
fn numeric_send(s: &str) -> Vec<u8> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let dscale = frac.len() as i16;
    let int = int.trim_start_matches('0');
    let pad_int = (4 - int.len() % 4) % 4;
    let int_p = format!("{}{}", "0".repeat(pad_int), int);
    let pad_frac = (4 - frac.len() % 4) % 4;
    let frac_p = format!("{}{}", frac, "0".repeat(pad_frac));
    let mut groups: Vec<i16> = int_p
        .as_bytes()
        .chunks(4)
        .chain(frac_p.as_bytes().chunks(4))
        .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
        .collect();
    let mut weight = (int_p.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let mut b = (groups.len() as i16).to_be_bytes().to_vec();
    b.extend(weight.to_be_bytes());
    b.extend((if neg { 0x4000u16 } else { 0 }).to_be_bytes());
    b.extend(dscale.to_be_bytes());
    for g in groups {
        b.extend(g.to_be_bytes());
    }
    b
}

/// PostgreSQL's range of timestamps: 4714-11-24 00:00:00 BC .. 294276-12-31 23:59:59.999999.
const MIN_TS: i64 = -211_813_488_000_000_000;
const END_TS: i64 = 9_223_371_331_200_000_000;
/// PostgreSQL's range of dates, as days since 2000-01-01.
const MIN_DATE: i32 = -2_451_545;
const MAX_DATE: i32 = 2_145_031_948;

fn json_number() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?"
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        json_number().prop_map(Json::Number),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((any::<String>(), inner), 0..6).prop_map(Json::Object),
        ]
    })
}

fn ip() -> impl Strategy<Value = Inet> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, p)| Inet {
            addr: IpAddr::from(a),
            prefix: p
        }),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, p)| Inet {
            addr: IpAddr::from(a),
            prefix: p
        }),
        (any::<[u8; 4]>(), 0u8..=128).prop_map(|(a, p)| {
            // IPv4-compatible and -mapped IPv6 addresses.
            let mut b = [0u8; 16];
            b[12..].copy_from_slice(&a);
            if p % 2 == 0 {
                b[10] = 0xff;
                b[11] = 0xff;
            }
            Inet {
                addr: IpAddr::from(b),
                prefix: p,
            }
        }),
    ]
}

fn round_trip(oid: Oid, v: &Value) -> Value {
    let s = v.to_string();
    decode_text(oid, -1, s.as_bytes(), &TypeRegistry::new())
        .unwrap_or_else(|e| panic!("{s:?} as {oid}: {e}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn value_decode_text_never_panics(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..64), texty()],
    ) {
        let reg = registry();
        for oid in all_oids() {
            let _ = decode_text(oid, -1, &bytes, &reg);
        }
    }

    #[test]
    fn value_decode_binary_never_panics(bytes in binaryish()) {
        let reg = registry();
        for oid in all_oids() {
            let _ = decode_binary(oid, &bytes, &reg);
        }
    }

    #[test]
    fn value_decoded_text_displays_stably(bytes in texty()) {
        // Whatever parses, its Display parses again to the same value.
        let reg = registry();
        for oid in all_oids() {
            if let Ok(v) = decode_text(oid, -1, &bytes, &reg) {
                let shown = v.to_string();
                let again = decode_text(oid, -1, shown.as_bytes(), &reg);
                match (&v, &again) {
                    (_, Ok(w)) if w.to_string() == shown => {}
                    _ => panic!("{oid}: {:?} -> {v:?} -> {shown:?} -> {again:?}",
                        String::from_utf8_lossy(&bytes)),
                }
            }
        }
    }

    #[test]
    fn value_ints_round_trip(a in any::<i64>(), b in any::<i32>(), c in any::<i16>(), d in any::<u32>()) {
        prop_assert_eq!(round_trip(Oid::INT8, &Value::Int8(a)), Value::Int8(a));
        prop_assert_eq!(round_trip(Oid::INT4, &Value::Int4(b)), Value::Int4(b));
        prop_assert_eq!(round_trip(Oid::INT2, &Value::Int2(c)), Value::Int2(c));
        prop_assert_eq!(round_trip(Oid::OID, &Value::Oid(d)), Value::Oid(d));
    }

    #[test]
    fn value_floats_round_trip(bits in any::<u64>(), bits32 in any::<u32>(), f in any::<f64>()) {
        for x in [f64::from_bits(bits), f] {
            let Value::Float8(y) = round_trip(Oid::FLOAT8, &Value::Float8(x)) else {
                panic!()
            };
            prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{x:e} {y:e}");
        }
        let x = f32::from_bits(bits32);
        let Value::Float4(y) = round_trip(Oid::FLOAT4, &Value::Float4(x)) else { panic!() };
        prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()), "{x:e} {y:e}");
    }

    #[test]
    fn value_numeric_round_trips_exactly(s in canonical_numeric()) {
        let reg = TypeRegistry::new();
        let v = decode_text(Oid::NUMERIC, -1, s.as_bytes(), &reg).unwrap();
        prop_assert_eq!(&v, &Value::Numeric(Numeric::Finite(s.clone().into())));
        prop_assert_eq!(v.to_string(), s.clone());
        let b = decode_binary(Oid::NUMERIC, &numeric_send(&s), &reg).unwrap();
        prop_assert_eq!(b, v);
    }

    #[test]
    fn value_timestamps_round_trip(
        us in prop_oneof![MIN_TS..END_TS, (i64::MIN + 1)..i64::MAX],
    ) {
        let ts = Timestamp(us);
        prop_assert_eq!(round_trip(Oid::TIMESTAMP, &Value::Timestamp(ts)), Value::Timestamp(ts));
        prop_assert_eq!(round_trip(Oid::TIMESTAMPTZ, &Value::TimestampTz(ts)), Value::TimestampTz(ts));
        let shown = ts.to_string_utc();
        prop_assert!(shown.ends_with("+00") || shown.ends_with("+00 BC"));
        if let Some(n) = ts.to_unix_nanos() {
            prop_assert_eq!(i128::from(n), (i128::from(us) + 946_684_800_000_000) * 1000);
        }
    }

    #[test]
    fn value_dates_and_times_round_trip(
        d in prop_oneof![MIN_DATE..=MAX_DATE, (i32::MIN + 1)..i32::MAX],
        t in 0i64..=86_400_000_000,
        off in -57_599i32..=57_599,
    ) {
        prop_assert_eq!(round_trip(Oid::DATE, &Value::Date(Date(d))), Value::Date(Date(d)));
        prop_assert_eq!(round_trip(Oid::TIME, &Value::Time(Time(t))), Value::Time(Time(t)));
        let tz = Value::TimeTz(TimeTz { micros: t, offset_seconds: off });
        prop_assert_eq!(round_trip(Oid::TIMETZ, &tz), tz);
    }

    #[test]
    fn value_intervals_round_trip(months in any::<i32>(), days in any::<i32>(), micros in any::<i64>()) {
        let iv = Interval { months, days, micros };
        prop_assume!(iv != Interval::INFINITY && iv != Interval::NEG_INFINITY);
        prop_assert_eq!(round_trip(Oid::INTERVAL, &Value::Interval(iv)), Value::Interval(iv));
    }

    #[test]
    fn value_text_arrays_round_trip(
        items in prop::collection::vec(prop::option::of(any::<String>()), 0..12),
        two_d in any::<bool>(),
    ) {
        let elems: Vec<Value> = items
            .into_iter()
            .map(|o| o.map_or(Value::Null, |s| Value::Text(s.into())))
            .collect();
        let mut a = Array::from_elements(Oid::TEXT, elems);
        if two_d && a.elements.len() % 2 == 0 && !a.elements.is_empty() {
            let n = a.elements.len() as u32;
            a.dims = vec![
                pgcdc_core::value::ArrayDim { lower_bound: 1, len: 2 },
                pgcdc_core::value::ArrayDim { lower_bound: -3, len: n / 2 },
            ];
        }
        let v = Value::Array(Box::new(a));
        prop_assert_eq!(round_trip(Oid::TEXT_ARRAY, &v), v);
    }

    #[test]
    fn value_json_round_trips(j in json_value()) {
        let v = Value::Jsonb(j);
        prop_assert_eq!(round_trip(Oid::JSONB, &v), v.clone());
        let Value::Jsonb(j) = v else { panic!() };
        let json = Value::Json(j);
        prop_assert_eq!(round_trip(Oid::JSON, &json), json);
    }

    #[test]
    fn value_misc_round_trips(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        uuid in any::<[u8; 16]>(),
        inet in ip(),
        lo in prop::option::of(any::<i32>()),
        hi in prop::option::of(any::<i32>()),
        inc in any::<(bool, bool)>(),
        label in any::<String>(),
    ) {
        let v = Value::Bytea(bytes.into());
        prop_assert_eq!(round_trip(Oid::BYTEA, &v), v);
        let v = Value::Uuid(uuid);
        prop_assert_eq!(round_trip(Oid::UUID, &v), v);
        let v = Value::Inet(inet);
        prop_assert_eq!(round_trip(Oid::INET, &v), v);
        let v = Value::Cidr(inet);
        prop_assert_eq!(round_trip(Oid::CIDR, &v), v);
        let r = Range {
            lower_inc: inc.0 && lo.is_some(),
            upper_inc: inc.1 && hi.is_some(),
            lower: lo.map(|x| Box::new(Value::Int4(x))),
            upper: hi.map(|x| Box::new(Value::Int4(x))),
            empty: false,
        };
        let v = Value::Range(r.clone());
        prop_assert_eq!(round_trip(Oid::INT4RANGE, &v), v);
        let v = Value::Multirange(vec![r.clone(), Range::empty(), r]);
        prop_assert_eq!(round_trip(Oid::INT4MULTIRANGE, &v), v);
        // Text bounds of a user range survive quoting.
        let mut reg = TypeRegistry::new();
        reg.register(Oid(16600), TypeKind::Range { subtype: Oid::TEXT });
        let r = Value::Range(Range {
            lower: Some(Box::new(Value::Text(label.clone().into()))),
            upper: Some(Box::new(Value::Text(label.into()))),
            lower_inc: true,
            upper_inc: false,
            empty: false,
        });
        let back = decode_text(Oid(16600), -1, r.to_string().as_bytes(), &reg).unwrap();
        prop_assert_eq!(back, r);
    }
}
