//! The built-in scalar types from their binary send formats (pgoutput `'b'` values,
//! PROTOCOL.md §6.2), and the text kept for those without a structured form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

use super::datetime::{Date, Interval, Time, TimeTz, Timestamp, USECS_PER_DAY};
use super::error::{ValueError, json_error};
use super::json::Json;
use super::misc::{BitString, Inet, Money, PgF64, char_text};
use super::numeric;
use super::oid::Oid;
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
pub(crate) fn decode_opaque(oid: Oid, bytes: &[u8]) -> Result<Value, ValueError> {
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

pub(crate) fn utf8(oid: Oid, bytes: &[u8]) -> Result<String, ValueError> {
    utf8_str(oid, bytes).map(str::to_owned)
}

#[inline]
pub(crate) fn utf8_str(oid: Oid, bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| ValueError::InvalidBinary {
        type_oid: oid,
        reason: "not valid UTF-8",
    })
}

/// Decodes the built-in scalars; `None` when `oid` is not one.
#[inline]
pub(crate) fn decode_scalar(oid: Oid, b: &[u8]) -> Option<Result<Value, ValueError>> {
    let bad = |reason: &'static str| ValueError::InvalidBinary {
        type_oid: oid,
        reason,
    };
    let len = |_| bad("wrong length");
    Some(match oid {
        Oid::BOOL => match b {
            [x] => Ok(Value::Bool(*x != 0)),
            _ => Err(bad("wrong length")),
        },
        Oid::INT2 => exact(b)
            .map(|a| Value::Int2(i16::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::INT4 => exact(b)
            .map(|a| Value::Int4(i32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::INT8 => exact(b)
            .map(|a| Value::Int8(i64::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::OID => exact(b)
            .map(|a| Value::Oid(u32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::FLOAT4 => exact(b)
            .map(|a| Value::Float4(f32::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::FLOAT8 => exact(b)
            .map(|a| Value::Float8(f64::from_be_bytes(a)))
            .ok_or_else(|| len(())),
        Oid::NUMERIC => numeric::decode_binary(b).map(Value::Numeric),
        Oid::TEXT
        | Oid::VARCHAR
        | Oid::BPCHAR
        | Oid::NAME
        | Oid::XML
        | Oid::UNKNOWN
        | Oid::CSTRING
        | Oid::REFCURSOR => utf8_str(oid, b).map(|s| Value::Text(PgText::from(s))),
        Oid::CHAR => match b {
            [c] => Ok(Value::Text(PgText::from(char_text(*c)))),
            _ => Err(bad("wrong length")),
        },
        Oid::BYTEA => Ok(Value::Bytea(Bytes::copy_from_slice(b))),
        Oid::UUID => exact(b).map(Value::Uuid).ok_or_else(|| len(())),
        Oid::DATE => exact(b)
            .map(|a| Value::Date(Date(i32::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        Oid::TIME => match exact(b).map(i64::from_be_bytes) {
            Some(us) if (0..=USECS_PER_DAY).contains(&us) => Ok(Value::Time(Time(us))),
            Some(_) => Err(bad("time out of range")),
            None => Err(bad("wrong length")),
        },
        Oid::TIMETZ => {
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
        Oid::TIMESTAMP => exact(b)
            .map(|a| Value::Timestamp(Timestamp(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        Oid::TIMESTAMPTZ => exact(b)
            .map(|a| Value::TimestampTz(Timestamp(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        Oid::INTERVAL => {
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
        Oid::JSON => json(oid, b).map(Value::Json),
        Oid::JSONB => match b.split_first() {
            Some((1, rest)) => json(oid, rest).map(Value::Jsonb),
            Some(_) => Err(bad("unsupported jsonb version")),
            None => Err(bad("empty jsonb")),
        },
        Oid::INET | Oid::CIDR => inet(b).map_err(bad).map(|i| {
            if oid == Oid::CIDR {
                Value::Cidr(i)
            } else {
                Value::Inet(i)
            }
        }),
        Oid::MACADDR => exact(b).map(Value::MacAddr).ok_or_else(|| len(())),
        Oid::MACADDR8 => exact(b).map(Value::MacAddr8).ok_or_else(|| len(())),
        Oid::MONEY => exact(b)
            .map(|a| Value::Money(Money::from_cents(i64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        Oid::BIT | Oid::VARBIT => bits(b).map_err(bad).map(Value::Bit),
        Oid::PG_LSN => exact(b)
            .map(|a| Value::Lsn(Lsn(u64::from_be_bytes(a))))
            .ok_or_else(|| len(())),
        _ => return None,
    })
}

fn json(oid: Oid, b: &[u8]) -> Result<Json, ValueError> {
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
pub(crate) fn as_text(oid: Oid, b: &[u8]) -> Option<String> {
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
        Oid::XID | Oid::CID => return exact(b).map(|a| u32::from_be_bytes(a).to_string()),
        Oid::XID8 => return exact(b).map(|a| u64::from_be_bytes(a).to_string()),
        Oid::TID => {
            let (Some(block), Some(off)) = (r.u32(), r.u16()) else {
                return None;
            };
            if !r.is_empty() {
                return None;
            }
            let _ = write!(out, "({block},{off})");
        }
        Oid::POINT => {
            let [x, y] = <[_; 2]>::try_from(floats(2)?).ok()?;
            let _ = write!(out, "({x},{y})");
        }
        Oid::LSEG => {
            let [a, b, c, d] = <[_; 4]>::try_from(floats(4)?).ok()?;
            let _ = write!(out, "[({a},{b}),({c},{d})]");
        }
        Oid::BOX => {
            let [a, b, c, d] = <[_; 4]>::try_from(floats(4)?).ok()?;
            let _ = write!(out, "({a},{b}),({c},{d})");
        }
        Oid::LINE => {
            let [a, b, c] = <[_; 3]>::try_from(floats(3)?).ok()?;
            let _ = write!(out, "{{{a},{b},{c}}}");
        }
        Oid::CIRCLE => {
            let [x, y, rad] = <[_; 3]>::try_from(floats(3)?).ok()?;
            let _ = write!(out, "<({x},{y}),{rad}>");
        }
        _ => return None,
    }
    Some(out)
}
