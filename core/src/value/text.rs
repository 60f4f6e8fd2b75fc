//! The built-in scalar types from PostgreSQL's text output (pgoutput `'t'` values,
//! PROTOCOL.md §6.1), under the pinned session settings: `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=postgres`,
//! `extra_float_digits=3`, `bytea_output=hex`.

use bytes::Bytes;

use super::datetime;
use super::error::{ValueError, json_error};
use super::json::Json;
use super::misc::{self, Money};
use super::numeric;
use super::oid::Oid;
use super::text_value::PgText;
use super::types::Value;

/// A value kept as text: [`Value::Unknown`].
pub(crate) fn decode_unknown(oid: Oid, bytes: &[u8]) -> Result<Value, ValueError> {
    Ok(Value::Unknown {
        type_oid: oid,
        text: utf8(oid, bytes)?,
    })
}

pub(crate) fn utf8(oid: Oid, bytes: &[u8]) -> Result<String, ValueError> {
    utf8_str(oid, bytes).map(str::to_owned)
}

#[inline]
pub(crate) fn utf8_str(oid: Oid, bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| ValueError::InvalidText {
        type_oid: oid,
        reason: "not valid UTF-8",
    })
}

/// Parses an optionally negative decimal integer with no sign character other than `-`.
#[inline]
pub(crate) fn parse_i64(s: &[u8]) -> Result<i64, &'static str> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err("expected digits");
    }
    let mut acc: u64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err("expected only digits");
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d)))
            .ok_or("out of range")?;
    }
    if neg {
        if acc > 1 << 63 {
            return Err("out of range");
        }
        Ok(0i64.wrapping_sub_unsigned(acc))
    } else {
        i64::try_from(acc).map_err(|_| "out of range")
    }
}

#[inline]
pub(crate) fn parse_bool(s: &[u8]) -> Result<bool, &'static str> {
    match s {
        b"t" | b"true" => Ok(true),
        b"f" | b"false" => Ok(false),
        _ => Err("expected 't' or 'f'"),
    }
}

/// Decodes the built-in scalar types; `None` when `oid` is not one.
#[inline]
pub(crate) fn decode_scalar(oid: Oid, b: &[u8]) -> Option<Result<Value, ValueError>> {
    let bad = |reason: &'static str| ValueError::InvalidText {
        type_oid: oid,
        reason,
    };
    Some(match oid {
        Oid::INT4 => parse_i64(b)
            .and_then(|v| i32::try_from(v).map_err(|_| "out of range"))
            .map(Value::Int4)
            .map_err(bad),
        Oid::INT8 => parse_i64(b).map(Value::Int8).map_err(bad),
        Oid::TEXT | Oid::VARCHAR | Oid::BPCHAR | Oid::NAME => {
            utf8_str(oid, b).map(|s| Value::Text(PgText::from(s)))
        }
        Oid::BOOL => parse_bool(b).map(Value::Bool).map_err(bad),
        Oid::NUMERIC => numeric::parse_text(b).map(Value::Numeric).map_err(bad),
        Oid::TIMESTAMPTZ => datetime::parse_timestamp(b, true)
            .map(Value::TimestampTz)
            .map_err(bad),
        Oid::TIMESTAMP => datetime::parse_timestamp(b, false)
            .map(Value::Timestamp)
            .map_err(bad),
        Oid::INT2 => parse_i64(b)
            .and_then(|v| i16::try_from(v).map_err(|_| "out of range"))
            .map(Value::Int2)
            .map_err(bad),
        Oid::OID => match b {
            [b'-', ..] => Err(bad("oid is unsigned")),
            _ => parse_i64(b)
                .and_then(|v| u32::try_from(v).map_err(|_| "out of range"))
                .map(Value::Oid)
                .map_err(bad),
        },
        Oid::FLOAT4 => misc::parse_f32(b).map(Value::Float4).map_err(bad),
        Oid::FLOAT8 => misc::parse_f64(b).map(Value::Float8).map_err(bad),
        Oid::CHAR | Oid::XML | Oid::UNKNOWN | Oid::CSTRING | Oid::REFCURSOR => {
            utf8_str(oid, b).map(|s| Value::Text(PgText::from(s)))
        }
        Oid::UUID => misc::parse_uuid(b).map(Value::Uuid).map_err(bad),
        Oid::DATE => datetime::parse_date(b).map(Value::Date).map_err(bad),
        Oid::TIME => datetime::parse_time(b).map(Value::Time).map_err(bad),
        Oid::TIMETZ => datetime::parse_timetz(b).map(Value::TimeTz).map_err(bad),
        Oid::INTERVAL => datetime::parse_interval(b)
            .map(Value::Interval)
            .map_err(bad),
        Oid::JSON => json(oid, b).map(Value::Json),
        Oid::JSONB => json(oid, b).map(Value::Jsonb),
        Oid::BYTEA => misc::parse_bytea(b)
            .map(|v| Value::Bytea(Bytes::from(v)))
            .map_err(bad),
        Oid::INET => misc::parse_inet(b).map(Value::Inet).map_err(bad),
        Oid::CIDR => misc::parse_inet(b).map(Value::Cidr).map_err(bad),
        Oid::MACADDR => misc::parse_mac::<6>(b).map(Value::MacAddr).map_err(bad),
        Oid::MACADDR8 => misc::parse_mac::<8>(b).map(Value::MacAddr8).map_err(bad),
        Oid::MONEY => std::str::from_utf8(b)
            .map(|t| Value::Money(Money::from_text(t)))
            .map_err(|_| bad("not valid UTF-8")),
        Oid::BIT | Oid::VARBIT => misc::parse_bits(b).map(Value::Bit).map_err(bad),
        Oid::PG_LSN => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Value::Lsn)
            .ok_or_else(|| bad("expected X/X")),
        _ => return None,
    })
}

fn json(oid: Oid, b: &[u8]) -> Result<Json, ValueError> {
    let s = std::str::from_utf8(b).map_err(|_| ValueError::InvalidText {
        type_oid: oid,
        reason: "not valid UTF-8",
    })?;
    Json::parse(s).map_err(|e| json_error(oid, e, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert!(parse_i64(b"9223372036854775808").is_err());
        assert!(parse_i64(b"-9223372036854775809").is_err());
        assert!(parse_i64(b"99999999999999999999999").is_err());
        assert_eq!(parse_i64(b"-0"), Ok(0));
        for bad in ["", "-", "+1", " 1", "1 ", "1.0", "0x1", "--1"] {
            assert!(parse_i64(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
