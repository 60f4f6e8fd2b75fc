//! The built-in scalar types from their binary send formats (pgoutput `'b'` values,
//! PROTOCOL.md §6.2), and the text kept for those without a structured form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::datetime::{Date, Interval, Time, TimeTz, Timestamp, USECS_PER_DAY};
use super::error::{ValueError, json_error};
use super::json::Json;
use super::misc::{BitString, Inet, Money, PgF64, char_text};
use super::numeric;
use super::oid::TypeOid;
use super::scan::{Reader, exact};
use super::text_value::PgText;
use super::types::Value;
use crate::Lsn;

/// A user type the registry cannot decode: kept as text when its bytes look like text (an
/// enum's binary form is its label), refused otherwise.
///
/// Valid UTF-8 is not enough: binary send formats are full of small integers whose bytes are
/// valid UTF-8 (a composite's `record_send` output starts `00 00 00 02`, an empty range is the
/// single byte `01`), and keeping those as "text" would pass binary data off as the type's
/// text output. Bytes with NUL or another C0 control character other than tab, newline and
/// carriage return are refused, and the caller falls back to hex.
pub(crate) fn decode_opaque(oid: TypeOid, bytes: &[u8]) -> Result<Value, ValueError> {
    let control = bytes
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f);
    match std::str::from_utf8(bytes) {
        Ok(s) if !control => Ok(Value::Unknown {
            type_oid: oid,
            text: s.to_owned(),
        }),
        _ => Err(ValueError::NoBinaryDecoder { type_oid: oid }),
    }
}

pub(crate) fn utf8(oid: TypeOid, bytes: &[u8]) -> Result<String, ValueError> {
    utf8_str(oid, bytes).map(str::to_owned)
}

#[inline]
pub(crate) fn utf8_str(oid: TypeOid, bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| ValueError::InvalidBinary {
        type_oid: oid,
        reason: "not valid UTF-8",
    })
}

/// Decodes the built-in scalars; `None` when `oid` is not one.
#[inline]
pub(crate) fn decode_scalar(oid: TypeOid, b: &[u8]) -> Option<Result<Value, ValueError>> {
    let bad = |reason: &'static str| ValueError::InvalidBinary {
        type_oid: oid,
        reason,
    };
    let len = |_| bad("wrong length");
    Some(match oid {
        TypeOid::BOOL => match b {
            [x] => Ok(Value::Bool(*x != 0)),
            _ => Err(bad("wrong length")),
        },
        TypeOid::INT2 => exact(b)
            .map(|a| Value::Int2(i16::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::INT4 => exact(b)
            .map(|a| Value::Int4(i32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::INT8 => exact(b)
            .map(|a| Value::Int8(i64::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::OID => exact(b)
            .map(|a| Value::Oid(u32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::FLOAT4 => exact(b)
            .map(|a| Value::Float4(f32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::FLOAT8 => exact(b)
            .map(|a| Value::Float8(f64::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        TypeOid::NUMERIC => numeric::decode_binary(b).map(Value::Numeric),
        TypeOid::TEXT
        | TypeOid::VARCHAR
        | TypeOid::BPCHAR
        | TypeOid::NAME
        | TypeOid::XML
        | TypeOid::UNKNOWN
        | TypeOid::CSTRING
        | TypeOid::REFCURSOR => utf8_str(oid, b).map(|s| Value::Text(PgText::from(s))),
        TypeOid::CHAR => match b {
            [c] => Ok(Value::Text(PgText::from(char_text(*c)))),
            _ => Err(bad("wrong length")),
        },
        TypeOid::BYTEA => Ok(Value::Bytea(Bytes::copy_from_slice(b))),
        TypeOid::UUID => exact(b).map(Value::Uuid).ok_or_else(|| len(())),
        TypeOid::DATE => exact(b)
            .map(|a| Value::Date(Date(i32::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        TypeOid::TIME => match exact(b).map(i64::from_be_bytes) {
            Some(us) if (0..=USECS_PER_DAY).contains(&us) => Ok(Value::Time(Time(us))),
            Some(_) => Err(bad("time out of range")),
            None => Err(bad("wrong length")),
        },
        TypeOid::TIMETZ => {
            let mut r = Reader::new(b);
            match (r.i64(), r.i32(), r.is_empty()) {
                (Some(us), Some(zone), true) => {
                    if !(0..=USECS_PER_DAY).contains(&us) {
                        Err(bad("time out of range"))
                    } else if i64::from(zone).abs() >= 16 * 3600 {
                        Err(bad("time zone offset out of range"))
                    } else {
                        // The wire holds seconds west of UTC.
                        Ok(Value::TimeTz(TimeTz {
                            micros: us,
                            offset_seconds: -zone,
                        }))
                    }
                }
                _ => Err(bad("wrong length")),
            }
        }
        TypeOid::TIMESTAMP => exact(b)
            .map(|a| Value::Timestamp(Timestamp(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        TypeOid::TIMESTAMPTZ => exact(b)
            .map(|a| Value::TimestampTz(Timestamp(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        TypeOid::INTERVAL => {
            let mut r = Reader::new(b);
            match (r.i64(), r.i32(), r.i32(), r.is_empty()) {
                (Some(micros), Some(days), Some(months), true) => Ok(Value::Interval(Interval {
                    months,
                    days,
                    micros,
                })),
                _ => Err(bad("wrong length")),
            }
        }
        TypeOid::JSON => json(oid, b).map(Value::Json),
        TypeOid::JSONB => match b.split_first() {
            Some((1, rest)) => json(oid, rest).map(Value::Jsonb),
            Some(_) => Err(bad("unsupported jsonb version")),
            None => Err(bad("empty jsonb")),
        },
        TypeOid::INET | TypeOid::CIDR => inet(b).map_err(bad).map(|i| {
            if oid == TypeOid::CIDR {
                Value::Cidr(i)
            } else {
                Value::Inet(i)
            }
        }),
        TypeOid::MACADDR => exact(b).map(Value::MacAddr).ok_or_else(|| len(())),
        TypeOid::MACADDR8 => exact(b).map(Value::MacAddr8).ok_or_else(|| len(())),
        TypeOid::MONEY => exact(b)
            .map(|a| Value::Money(Money::from_cents(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        TypeOid::BIT | TypeOid::VARBIT => bits(b).map_err(bad).map(Value::Bit),
        TypeOid::PG_LSN => exact(b)
            .map(|a| Value::Lsn(Lsn(u64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        _ => return None,
    })
}

fn json(oid: TypeOid, b: &[u8]) -> Result<Json, ValueError> {
    let s = std::str::from_utf8(b).map_err(|_| ValueError::InvalidBinary {
        type_oid: oid,
        reason: "not valid UTF-8",
    })?;
    Json::parse(s).map_err(|e| json_error(oid, e, true))
}

fn inet(b: &[u8]) -> Result<Inet, &'static str> {
    let mut r = Reader::new(b);
    let (Some(family), Some(bits), Some(_is_cidr), Some(n)) = (r.u8(), r.u8(), r.u8(), r.u8())
    else {
        return Err("shorter than the 4-byte header");
    };
    let addr = match (family, n, r.rest()) {
        (2, 4, rest) => {
            let a: [u8; 4] = rest.try_into().map_err(|_| "wrong address length")?;
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (3, 16, rest) => {
            let a: [u8; 16] = rest.try_into().map_err(|_| "wrong address length")?;
            IpAddr::V6(Ipv6Addr::from(a))
        }
        (2 | 3, _, _) => return Err("wrong address length"),
        _ => return Err("unknown address family"),
    };
    let inet = Inet { addr, prefix: bits };
    if bits > inet.max_prefix() {
        return Err("netmask length out of range");
    }
    Ok(inet)
}

fn bits(b: &[u8]) -> Result<BitString, &'static str> {
    let mut r = Reader::new(b);
    let n = r.i32().ok_or("missing bit length")?;
    let n = usize::try_from(n).map_err(|_| "negative bit length")?;
    if r.remaining() != n.div_ceil(8) {
        return Err("length does not match the bit count");
    }
    let mut bytes = r.rest().to_vec();
    // Zero the pad bits, as varbit_recv does.
    if n % 8 != 0 {
        if let Some(last) = bytes.last_mut() {
            *last &= 0xFFu8 << (8 - n % 8);
        }
    }
    Ok(BitString { len: n, bytes })
}

/// The text form of built-ins that text mode keeps as [`Value::Unknown`], for those with a
/// simple binary layout; `None` for the rest (and for malformed input).
pub(crate) fn as_text(oid: TypeOid, b: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    let mut r = Reader::new(b);
    let mut out = String::new();
    let mut floats = |n: usize| -> Option<Vec<PgF64>> {
        let v = (0..n)
            .map(|_| r.i64().map(|x| PgF64(f64::from_bits(x as u64))))
            .collect::<Option<Vec<_>>>()?;
        r.is_empty().then_some(v)
    };
    match oid {
        TypeOid::XID | TypeOid::CID => return exact(b).map(|a| u32::from_be_bytes(a).to_string()),
        TypeOid::XID8 => return exact(b).map(|a| u64::from_be_bytes(a).to_string()),
        TypeOid::TID => {
            let (Some(block), Some(off)) = (r.u32(), r.u16()) else {
                return None;
            };
            if !r.is_empty() {
                return None;
            }
            let _ = write!(out, "({block},{off})");
        }
        TypeOid::POINT => {
            let [x, y] = <[_; 2]>::try_from(floats(2)?).ok()?;
            let _ = write!(out, "({x},{y})");
        }
        TypeOid::LSEG => {
            let [a, b, c, d] = <[_; 4]>::try_from(floats(4)?).ok()?;
            let _ = write!(out, "[({a},{b}),({c},{d})]");
        }
        TypeOid::BOX => {
            let [a, b, c, d] = <[_; 4]>::try_from(floats(4)?).ok()?;
            let _ = write!(out, "({a},{b}),({c},{d})");
        }
        TypeOid::LINE => {
            let [a, b, c] = <[_; 3]>::try_from(floats(3)?).ok()?;
            let _ = write!(out, "{{{a},{b},{c}}}");
        }
        TypeOid::CIRCLE => {
            let [x, y, rad] = <[_; 3]>::try_from(floats(3)?).ok()?;
            let _ = write!(out, "<({x},{y}),{rad}>");
        }
        _ => return None,
    }
    Some(out)
}
