//! `numeric`: arbitrary-precision decimals kept as their exact decimal text.

use std::fmt;
use std::str::FromStr;

use super::error::ValueError;
use super::oid::Oid;
use super::scan::Reader;
use super::text_value::AsciiBuilder;
use super::text_value::PgText;

/// A PostgreSQL `numeric`, kept exactly.
///
/// A finite value holds its canonical decimal text as PostgreSQL prints it: an optional `-`,
/// the integer digits without leading zeros (`0` when there are none), then, when the scale is
/// positive, `.` and exactly *scale* fraction digits (trailing zeros are significant: `123.4500`).
/// Zero is never negative. There is never an exponent. Values of any length (PostgreSQL allows
/// 131072 integer digits and 16383 fraction digits) round-trip exactly.
///
/// The text is a [`PgText`], so values of up to 30 characters need no heap allocation.
///
/// Build one with [`str::parse`] (which validates and canonicalizes) rather than by hand.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Numeric {
    /// A finite value: its canonical decimal text.
    Finite(PgText),
    /// `NaN`.
    NaN,
    /// `Infinity` (PostgreSQL 14+).
    PosInfinity,
    /// `-Infinity` (PostgreSQL 14+).
    NegInfinity,
}

/// The error for text that is not a PostgreSQL `numeric`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid numeric: {0}")]
pub struct ParseNumericError(&'static str);

impl Numeric {
    /// The text PostgreSQL prints: the digits, `NaN`, `Infinity` or `-Infinity`.
    pub fn as_str(&self) -> &str {
        match self {
            Numeric::Finite(s) => s.as_str(),
            Numeric::NaN => "NaN",
            Numeric::PosInfinity => "Infinity",
            Numeric::NegInfinity => "-Infinity",
        }
    }

    /// Whether this is a finite value.
    pub fn is_finite(&self) -> bool {
        matches!(self, Numeric::Finite(_))
    }

    /// Whether this is a finite value below zero, or `-Infinity`.
    pub fn is_negative(&self) -> bool {
        match self {
            Numeric::Finite(s) => s.starts_with('-'),
            Numeric::NegInfinity => true,
            _ => false,
        }
    }

    /// The number of fraction digits (PostgreSQL's display scale), or `None` when not finite.
    pub fn scale(&self) -> Option<usize> {
        match self {
            Numeric::Finite(s) => Some(s.split_once('.').map_or(0, |(_, f)| f.len())),
            _ => None,
        }
    }

    /// The nearest `f64` (NaN and the infinities map to their `f64` counterparts).
    pub fn to_f64(&self) -> f64 {
        match self {
            Numeric::Finite(s) => s.parse().unwrap_or(f64::NAN),
            Numeric::NaN => f64::NAN,
            Numeric::PosInfinity => f64::INFINITY,
            Numeric::NegInfinity => f64::NEG_INFINITY,
        }
    }

    /// The value as an `i128` when it is finite, has no non-zero fraction digit and fits.
    pub fn to_i128(&self) -> Option<i128> {
        let Numeric::Finite(s) = self else {
            return None;
        };
        let s = s.as_str();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.bytes().any(|b| b != b'0') {
            return None;
        }
        int.parse().ok()
    }
}

impl fmt::Display for Numeric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Numeric {
    type Err = ParseNumericError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_text(s.as_bytes()).map_err(ParseNumericError)
    }
}

/// Parses `numeric` text: `[-]digits[.digits]`, `NaN`, `Infinity`, `-Infinity` (case is
/// ignored for the specials). A leading `+`, leading zeros, `5.` and `.5` are accepted and
/// canonicalized; exponents are refused (PostgreSQL never prints one).
pub(crate) fn parse_text(s: &[u8]) -> Result<Numeric, &'static str> {
    if is_canonical(s) {
        // Only ASCII digits, '-' and '.' are present.
        return PgText::from_utf8(s).map(Numeric::Finite).ok_or("not ASCII");
    }
    parse_text_general(s)
}

/// Whether `s` is a finite numeric in the canonical form PostgreSQL prints (see
/// [`Numeric`]): `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, not a negative zero. One pass, for the
/// common case.
#[inline]
pub(crate) fn is_canonical(s: &[u8]) -> bool {
    let (neg, body) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let mut dot = None;
    let mut nonzero = false;
    for (i, &b) in body.iter().enumerate() {
        if b.is_ascii_digit() {
            nonzero |= b != b'0';
        } else if b == b'.' && dot.is_none() {
            dot = Some(i);
        } else {
            return false;
        }
    }
    let int_len = dot.unwrap_or(body.len());
    int_len >= 1
        && !(int_len > 1 && body.first() == Some(&b'0'))
        && dot.is_none_or(|d| d + 1 < body.len())
        && (!neg || nonzero)
}

/// [`parse_text`] without the fast path.
fn parse_text_general(s: &[u8]) -> Result<Numeric, &'static str> {
    let (neg, body) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let Some(&first) = body.first() else {
        return Err("empty");
    };
    if !first.is_ascii_digit() && first != b'.' {
        if body.eq_ignore_ascii_case(b"nan") && s.len() == 3 {
            return Ok(Numeric::NaN);
        }
        if body.eq_ignore_ascii_case(b"infinity") || body.eq_ignore_ascii_case(b"inf") {
            return Ok(if neg {
                Numeric::NegInfinity
            } else {
                Numeric::PosInfinity
            });
        }
        return Err("expected digits");
    }
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(p) => (
            body.get(..p).unwrap_or(&[]),
            Some(body.get(p + 1..).unwrap_or(&[])),
        ),
        None => (body, None),
    };
    if !int.iter().all(u8::is_ascii_digit) || !frac.unwrap_or(&[]).iter().all(u8::is_ascii_digit) {
        return Err("expected only digits and one '.'");
    }
    let frac_len = frac.map_or(0, <[u8]>::len);
    if int.is_empty() && frac_len == 0 {
        return Err("expected digits");
    }
    let all_zero = int.iter().chain(frac.unwrap_or(&[])).all(|&b| b == b'0');
    let non_canonical = matches!(s.first(), Some(b'+'))
        || (neg && all_zero)
        || int.is_empty()
        || (int.len() > 1 && int.starts_with(b"0"))
        || frac.is_some_and(<[u8]>::is_empty);
    let canonical = !non_canonical;
    if canonical {
        // Only ASCII digits, '-' and '.' are present.
        return PgText::from_utf8(s).map(Numeric::Finite).ok_or("not ASCII");
    }
    let int = match int.iter().position(|&b| b != b'0') {
        Some(p) => int.get(p..).unwrap_or(&[]),
        None => b"0",
    };
    let mut out = AsciiBuilder::with_capacity(int.len() + frac_len + 2);
    if neg && !all_zero {
        out.push(b'-');
    }
    int.iter().for_each(|&b| out.push(b));
    if frac_len > 0 {
        out.push(b'.');
        frac.unwrap_or(&[]).iter().for_each(|&b| out.push(b));
    }
    Ok(Numeric::Finite(out.finish()))
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
const NUMERIC_DSCALE_MAX: i16 = 0x3FFF;

/// Decodes `numeric_send` output: `i16 ndigits, i16 weight, u16 sign, i16 dscale`, then
/// `ndigits` base-10000 digits. Digits beyond `dscale` are truncated, as `numeric_recv` does.
pub(crate) fn decode_binary(bytes: &[u8]) -> Result<Numeric, ValueError> {
    Ok(match decode_binary_parts(bytes)? {
        BinaryNumeric::Special(n) => n,
        BinaryNumeric::Finite(f) => Numeric::Finite(f.to_text()),
    })
}

/// Validated `numeric_send` output.
pub(crate) enum BinaryNumeric<'a> {
    /// `NaN` or an infinity.
    Special(Numeric),
    /// A finite value, to be written as text.
    Finite(FiniteBinary<'a>),
}

/// A finite binary numeric: sign, weight, display scale and its base-10000 digits (big-endian
/// `i16`s, each checked to be in `0..10000`).
pub(crate) struct FiniteBinary<'a> {
    neg: bool,
    weight: i32,
    dscale: usize,
    digits: &'a [u8],
}

/// Validates `numeric_send` output (see [`decode_binary`]).
#[inline]
pub(crate) fn decode_binary_parts(bytes: &[u8]) -> Result<BinaryNumeric<'_>, ValueError> {
    let err = |reason| ValueError::InvalidBinary {
        type_oid: Oid::NUMERIC,
        reason,
    };
    let mut r = Reader::new(bytes);
    let (Some(ndigits), Some(weight), Some(sign), Some(dscale)) =
        (r.i16(), r.i16(), r.u16(), r.i16())
    else {
        return Err(err("shorter than the 8-byte header"));
    };
    let ndigits = usize::try_from(ndigits).map_err(|_| err("negative digit count"))?;
    if r.remaining() != ndigits * 2 {
        return Err(err("length does not match the digit count"));
    }
    match sign {
        NUMERIC_NAN => return Ok(BinaryNumeric::Special(Numeric::NaN)),
        NUMERIC_PINF => return Ok(BinaryNumeric::Special(Numeric::PosInfinity)),
        NUMERIC_NINF => return Ok(BinaryNumeric::Special(Numeric::NegInfinity)),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(err("invalid sign")),
    }
    if !(0..=NUMERIC_DSCALE_MAX).contains(&dscale) {
        return Err(err("invalid display scale"));
    }
    // The base-10000 digits, read in place: `ndigits` big-endian `i16`s (checked above).
    let digits = r.rest();
    if digits.chunks_exact(2).any(|d| {
        d.first_chunk()
            .is_none_or(|&d| !(0..10000).contains(&i16::from_be_bytes(d)))
    }) {
        return Err(err("digit out of range 0..9999"));
    }
    Ok(BinaryNumeric::Finite(FiniteBinary {
        neg: sign == NUMERIC_NEG,
        weight: i32::from(weight),
        dscale: usize::try_from(dscale).unwrap_or(0),
        digits,
    }))
}

impl FiniteBinary<'_> {
    /// The canonical text.
    pub(crate) fn to_text(&self) -> PgText {
        let digits = self.digits;
        let weight = self.weight;
        let dscale = self.dscale;
        let digit = |i: i32| -> u16 {
            // Group i has weight `weight - i`.
            usize::try_from(i)
                .ok()
                .and_then(|i| digits.get(2 * i..))
                .and_then(<[u8]>::first_chunk)
                .map_or(0, |&d| u16::from_be_bytes(d))
        };
        let int_groups = usize::try_from(weight + 1).unwrap_or(0);
        let mut out = AsciiBuilder::with_capacity(1 + int_groups.saturating_mul(4) + 1 + dscale);
        if self.neg {
            out.push(b'-');
        }
        if int_groups == 0 {
            out.push(b'0');
        } else {
            let first = digit(0);
            push_u16(&mut out, first, false);
            for i in 1..=weight {
                push_u16(&mut out, digit(i), true);
            }
        }
        if dscale > 0 {
            out.push(b'.');
            let mut written = 0usize;
            let mut i = weight + 1;
            while written < dscale {
                let d = digit(i);
                let group = [d / 1000, d / 100 % 10, d / 10 % 10, d % 10];
                for g in group {
                    if written == dscale {
                        break;
                    }
                    out.push(b'0' + g as u8);
                    written += 1;
                }
                i += 1;
            }
        }
        if self.neg && !out.as_bytes().iter().any(|b| (b'1'..=b'9').contains(b)) {
            // A negative that truncates to zero loses its sign.
            out.remove_first();
        }
        out.finish()
    }
}

fn push_u16(out: &mut AsciiBuilder, d: u16, pad: bool) {
    let digits = [d / 1000, d / 100 % 10, d / 10 % 10, d % 10];
    let mut started = pad;
    for (i, g) in digits.into_iter().enumerate() {
        if g != 0 || i == 3 {
            started = true;
        }
        if started {
            out.push(b'0' + g as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(s: &str) -> Numeric {
        Numeric::Finite(s.into())
    }

    #[test]
    fn text_forms() {
        for s in [
            "0",
            "-1",
            "123.4500",
            "0.000",
            "100000000000000000000",
            "0.000000000000000000000000000001",
        ] {
            assert_eq!(parse_text(s.as_bytes()), Ok(fin(s)));
        }
        assert_eq!(parse_text(b"NaN"), Ok(Numeric::NaN));
        assert_eq!(parse_text(b"Infinity"), Ok(Numeric::PosInfinity));
        assert_eq!(parse_text(b"-Infinity"), Ok(Numeric::NegInfinity));
        assert_eq!(parse_text(b"007.50"), Ok(fin("7.50")));
        assert_eq!(parse_text(b"-0.00"), Ok(fin("0.00")));
        assert_eq!(parse_text(b"+5."), Ok(fin("5")));
        assert_eq!(parse_text(b".5"), Ok(fin("0.5")));
        for bad in [
            "", "-", ".", "1e5", "1.2.3", "abc", "-NaN", " 1", "1 ", "0x10",
        ] {
            assert!(parse_text(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn canonical_fast_path() {
        for s in ["0", "-1", "1.5", "0.000", "-0.001", "10", "123.4500"] {
            assert!(is_canonical(s.as_bytes()), "{s}");
        }
        for s in [
            "", "-", ".", "-0", "-0.00", "00", "01", "1.", ".5", "+1", "1.2.3", "1e5", "NaN",
        ] {
            assert!(!is_canonical(s.as_bytes()), "{s}");
        }
    }

    proptest::proptest! {
        /// The one-pass path gives what the general parser gives.
        #[test]
        fn fast_text_is_general(s in "[-+]?[0-9]{0,4}(\\.[0-9]{0,4})?[.0-9a]?") {
            let b = s.as_bytes();
            let general = parse_text_general(b);
            if is_canonical(b) {
                proptest::prop_assert_eq!(Ok(fin(&s)), general.clone());
            }
            proptest::prop_assert_eq!(parse_text(b), general);
        }
    }

    #[test]
    fn accessors() {
        let n = fin("-123.4500");
        assert!(n.is_negative());
        assert_eq!(n.scale(), Some(4));
        assert_eq!(n.to_f64(), -123.45);
        assert_eq!(fin("12.000").to_i128(), Some(12));
        assert_eq!(fin("12.001").to_i128(), None);
        assert_eq!(Numeric::NaN.scale(), None);
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn binary_examples() {
        assert_eq!(
            decode_binary(&hex("0003 0001 0000 0003 007b 11d7 22ce")),
            Ok(fin("1234567.891"))
        );
        assert_eq!(
            decode_binary(&hex("0001 fff8 0000 001e 0064")),
            Ok(fin("0.000000000000000000000000000001"))
        );
        assert_eq!(decode_binary(&hex("0000 0000 0000 0000")), Ok(fin("0")));
        assert_eq!(decode_binary(&hex("0000 0000 0000 0003")), Ok(fin("0.000")));
        assert_eq!(decode_binary(&hex("0000 0000 c000 0000")), Ok(Numeric::NaN));
        assert_eq!(
            decode_binary(&hex("0000 0000 d000 0000")),
            Ok(Numeric::PosInfinity)
        );
        assert_eq!(
            decode_binary(&hex("0000 0000 f000 0020")),
            Ok(Numeric::NegInfinity)
        );
        // -1.5 with dscale 1: digits 1, 5000
        assert_eq!(
            decode_binary(&hex("0002 0000 4000 0001 0001 1388")),
            Ok(fin("-1.5"))
        );
        // 100000000 = 1 * 10000^2
        assert_eq!(
            decode_binary(&hex("0001 0002 0000 0000 0001")),
            Ok(fin("100000000"))
        );
        // Truncation of digits past dscale; a negative that truncates to zero loses its sign.
        assert_eq!(
            decode_binary(&hex("0001 ffff 4000 0002 0001")),
            Ok(fin("0.00"))
        );
        for bad in [
            "",
            "0001 0000 0000 0000",
            "0000 0000 1234 0000",
            "0001 0000 0000 0000 2710",
            "ffff 0000 0000 0000",
            "0000 0000 0000 8000",
        ] {
            assert!(decode_binary(&hex(bad)).is_err(), "{bad}");
        }
    }
}
