//! Scalar types with their own small formats: network addresses, `money`, bit strings,
//! `bytea`, `uuid`, MAC addresses and floating point.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

type PResult<T> = Result<T, &'static str>;

// ---------------------------------------------------------------------------------------------
// inet / cidr

/// An `inet` or `cidr` value: an address and its prefix length in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inet {
    /// The address (for `cidr`, the host bits are zero).
    pub addr: IpAddr,
    /// The netmask length: 0–32 for IPv4, 0–128 for IPv6.
    pub prefix: u8,
}

impl Inet {
    /// The largest prefix for the address family (32 or 128).
    pub fn max_prefix(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    /// Writes PostgreSQL's text form: the mask is omitted for a full-length `inet` and always
    /// written for `cidr`.
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>, cidr: bool) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}")?,
            IpAddr::V6(a) => write_ipv6(f, a)?,
        }
        if cidr || self.prefix != self.max_prefix() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

impl fmt::Display for Inet {
    /// The `inet` text form (`10.1.2.3`, `192.168.0.1/24`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// IPv6 as PostgreSQL (BIND's `inet_net_ntop`) prints it: RFC 5952, plus the embedded IPv4 form
/// for IPv4-compatible addresses (`::1.2.3.4`).
fn write_ipv6(f: &mut fmt::Formatter<'_>, a: Ipv6Addr) -> fmt::Result {
    let seg = a.segments();
    if let [0, 0, 0, 0, 0, 0, hi, lo] = seg {
        if hi != 0 {
            let [a, b] = hi.to_be_bytes();
            let [c, d] = lo.to_be_bytes();
            return write!(f, "::{}", Ipv4Addr::new(a, b, c, d));
        }
    }
    write!(f, "{a}")
}

/// Parses `addr[/prefix]`; without a prefix the full length is used.
pub(crate) fn parse_inet(s: &[u8]) -> PResult<Inet> {
    let s = std::str::from_utf8(s).map_err(|_| "not UTF-8")?;
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| "invalid IP address")?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid netmask length");
            }
            p.parse::<u8>().map_err(|_| "invalid netmask length")?
        }
    };
    if prefix > max {
        return Err("netmask length out of range");
    }
    Ok(Inet { addr, prefix })
}

// ---------------------------------------------------------------------------------------------
// macaddr / macaddr8

/// Parses `N` colon- (or hyphen-) separated hex octets.
pub(crate) fn parse_mac<const N: usize>(s: &[u8]) -> PResult<[u8; N]> {
    let mut out = [0u8; N];
    let mut parts = s.split(|&b| b == b':' || b == b'-');
    for o in out.iter_mut() {
        let [h, l] = parts.next().ok_or("too few octets")? else {
            return Err("expected two hex digits per octet");
        };
        *o = (hex_val(*h).ok_or("invalid hex digit")? << 4)
            | hex_val(*l).ok_or("invalid hex digit")?;
    }
    if parts.next().is_some() {
        return Err("too many octets");
    }
    Ok(out)
}

/// Writes a MAC address as `08:00:2b:01:02:03`.
pub(crate) fn write_mac(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// money

/// A `money` value.
///
/// Its text form depends on the server's `lc_monetary`, so the text is kept as received, and
/// the amount in the smallest currency unit (cents) is filled in when it can be read without
/// guessing: from the binary format always, from text of the `$1,000.00` / `-$0.50` /
/// `($0.50)` shape (two fraction digits) otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    /// The text form (for a binary value, the `C`-locale form `$1,000.00`).
    pub text: Box<str>,
    /// The amount in the smallest currency unit, when known.
    pub cents: Option<i64>,
}

impl Money {
    /// A money value from its amount in cents, with the `C`-locale text (`-$1,000.50`).
    pub fn from_cents(cents: i64) -> Money {
        let neg = cents < 0;
        let abs = cents.unsigned_abs();
        let int = (abs / 100).to_string();
        let mut text = String::with_capacity(int.len() + int.len() / 3 + 5);
        if neg {
            text.push('-');
        }
        text.push('$');
        let first = int.len() % 3;
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (i + 3 - first) % 3 == 0 {
                text.push(',');
            }
            text.push(c);
        }
        let frac = abs % 100;
        text.push('.');
        text.push(char::from(b'0' + (frac / 10) as u8));
        text.push(char::from(b'0' + (frac % 10) as u8));
        Money {
            text: text.into_boxed_str(),
            cents: Some(cents),
        }
    }

    /// Reads money text, keeping it and parsing the cents when the shape is unambiguous.
    pub fn from_text(text: &str) -> Money {
        Money {
            cents: parse_money_cents(text),
            text: text.into(),
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `[-|(][$][-]d{1,3}(,ddd)*.dd[)]` and similar: digits with `,` group separators and exactly
/// two fraction digits after a `.`, wrapped in `-`, `$`, spaces or parentheses.
fn parse_money_cents(text: &str) -> Option<i64> {
    let t = text.trim();
    let (t, paren) = match t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        Some(inner) => (inner.trim(), true),
        None => (t, false),
    };
    let mut neg = paren;
    let mut body = t;
    // Leading decorations: '-', '$', spaces in any order.
    loop {
        if let Some(r) = body.strip_prefix('-') {
            if neg {
                return None;
            }
            neg = true;
            body = r;
        } else if let Some(r) = body.strip_prefix('$') {
            body = r;
        } else if let Some(r) = body.strip_prefix(' ') {
            body = r;
        } else {
            break;
        }
    }
    // A trailing '-' (some locales).
    if let Some(r) = body.strip_suffix('-') {
        if neg {
            return None;
        }
        neg = true;
        body = r.trim_end();
    }
    let (int, frac) = body.rsplit_once('.')?;
    let fb = frac.as_bytes();
    let [a, b] = fb else {
        return None;
    };
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return None;
    }
    if int.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    let groups: Vec<&str> = int.split(',').collect();
    for (i, g) in groups.iter().enumerate() {
        let ok_len = if i == 0 {
            !g.is_empty() && (groups.len() == 1 || g.len() <= 3)
        } else {
            g.len() == 3
        };
        if !ok_len || !g.bytes().all(|c| c.is_ascii_digit()) || g.len() > 20 {
            return None;
        }
        for c in g.bytes() {
            v = v.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
        }
        if v > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let cents = v * 100 + i128::from((a - b'0') * 10 + (b - b'0'));
    i64::try_from(if neg { -cents } else { cents }).ok()
}

// ---------------------------------------------------------------------------------------------
// bit / varbit

/// A `bit` or `bit varying` value: `len` bits, most significant bit first, packed into
/// `ceil(len / 8)` bytes with the unused low bits of the last byte zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BitString {
    /// The number of bits.
    pub len: usize,
    /// The packed bits.
    pub bytes: Vec<u8>,
}

impl BitString {
    /// Bit `i` (0 is the leftmost), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<bool> {
        if i >= self.len {
            return None;
        }
        self.bytes.get(i / 8).map(|b| b & (0x80 >> (i % 8)) != 0)
    }

    /// Builds a bit string from its bits.
    pub fn from_bits(bits: impl IntoIterator<Item = bool>) -> BitString {
        let mut out = BitString::default();
        for bit in bits {
            if out.len % 8 == 0 {
                out.bytes.push(0);
            }
            if bit {
                if let Some(last) = out.bytes.last_mut() {
                    *last |= 0x80 >> (out.len % 8);
                }
            }
            out.len += 1;
        }
        out
    }
}

impl fmt::Display for BitString {
    /// `0`s and `1`s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in 0..self.len {
            f.write_str(if self.get(i) == Some(true) { "1" } else { "0" })?;
        }
        Ok(())
    }
}

/// Parses a string of `0` and `1`.
pub(crate) fn parse_bits(s: &[u8]) -> PResult<BitString> {
    let mut out = BitString {
        len: 0,
        bytes: Vec::with_capacity(s.len().div_ceil(8)),
    };
    for &c in s {
        let bit = match c {
            b'0' => false,
            b'1' => true,
            _ => return Err("expected only '0' and '1'"),
        };
        if out.len % 8 == 0 {
            out.bytes.push(0);
        }
        if bit {
            if let Some(last) = out.bytes.last_mut() {
                *last |= 0x80 >> (out.len % 8);
            }
        }
        out.len += 1;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// bytea

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses `bytea` text: hex (`\xdeadbeef`, whitespace allowed between pairs) or the escape
/// format (`\\` for a backslash, `\ooo` octal, other bytes as themselves).
pub(crate) fn parse_bytea(s: &[u8]) -> PResult<Vec<u8>> {
    if let Some(hex) = s.strip_prefix(b"\\x") {
        let mut out = Vec::with_capacity(hex.len() / 2);
        let mut it = hex.iter().copied();
        while let Some(h) = it.next() {
            if super::scan::is_pg_space(h) {
                continue;
            }
            let l = it.next().ok_or("odd number of hex digits")?;
            out.push(
                (hex_val(h).ok_or("invalid hex digit")? << 4)
                    | hex_val(l).ok_or("invalid hex digit")?,
            );
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            out.push(b);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', t @ ..] => {
                out.push(b'\\');
                rest = t;
            }
            [a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7', t @ ..] => {
                out.push(((a - b'0') << 6) | ((b - b'0') << 3) | (c - b'0'));
                rest = t;
            }
            _ => return Err("invalid escape sequence"),
        }
    }
    Ok(out)
}

/// Writes `\x` and lowercase hex.
pub(crate) fn write_bytea(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    f.write_str("\\x")?;
    for x in b {
        write!(f, "{x:02x}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// uuid

/// Parses `8-4-4-4-12` hex (any case), also accepting 32 hex digits without hyphens and
/// surrounding braces.
pub(crate) fn parse_uuid(s: &[u8]) -> PResult<[u8; 16]> {
    let s = match s {
        [b'{', inner @ .., b'}'] => inner,
        _ => s,
    };
    let hyphenated = s.len() == 36;
    if !hyphenated && s.len() != 32 {
        return Err("expected 32 hex digits");
    }
    let mut out = [0u8; 16];
    let mut nibbles = s.iter().enumerate().filter_map(|(i, &b)| {
        if hyphenated && matches!(i, 8 | 13 | 18 | 23) {
            if b == b'-' { None } else { Some(None) }
        } else {
            Some(hex_val(b))
        }
    });
    for o in out.iter_mut() {
        let h = nibbles.next().flatten().ok_or("invalid uuid")?;
        let l = nibbles.next().flatten().ok_or("invalid uuid")?;
        *o = (h << 4) | l;
    }
    if nibbles.next().is_some() {
        return Err("invalid uuid");
    }
    Ok(out)
}

/// Writes lowercase `8-4-4-4-12`.
pub(crate) fn write_uuid(f: &mut fmt::Formatter<'_>, u: &[u8; 16]) -> fmt::Result {
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            f.write_str("-")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// float4 / float8

fn float_special(s: &[u8]) -> Option<f64> {
    match s {
        b"NaN" => Some(f64::NAN),
        b"Infinity" => Some(f64::INFINITY),
        b"-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn float_chars_ok(s: &[u8]) -> bool {
    matches!(s.first(), Some(b'0'..=b'9' | b'-' | b'.'))
        && s.iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
}

/// Parses `float8` text: the shortest round-trip form, exponents, `NaN`, `Infinity`,
/// `-Infinity`, `-0`. Values that overflow are refused.
pub(crate) fn parse_f64(s: &[u8]) -> PResult<f64> {
    if let Some(v) = float_special(s) {
        return Ok(v);
    }
    if !float_chars_ok(s) {
        return Err("invalid float");
    }
    let t = std::str::from_utf8(s).map_err(|_| "invalid float")?;
    let v: f64 = t.parse().map_err(|_| "invalid float")?;
    if v.is_infinite() {
        return Err("float out of range");
    }
    Ok(v)
}

/// Parses `float4` text (rounded once, directly to `f32`).
pub(crate) fn parse_f32(s: &[u8]) -> PResult<f32> {
    if let Some(v) = float_special(s) {
        return Ok(v as f32);
    }
    if !float_chars_ok(s) {
        return Err("invalid float");
    }
    let t = std::str::from_utf8(s).map_err(|_| "invalid float")?;
    let v: f32 = t.parse().map_err(|_| "invalid float")?;
    if v.is_infinite() {
        return Err("float out of range");
    }
    Ok(v)
}

/// Writes a float as PostgreSQL does with `extra_float_digits > 0`: the shortest digits that
/// round-trip, in fixed notation when the decimal exponent is in `-4..15` (`-4..6` for
/// `float4`), otherwise as `d.ddde±XX`.
pub(crate) fn write_float(
    f: &mut fmt::Formatter<'_>,
    sci: &str,
    fixed_max_exp: i32,
) -> fmt::Result {
    // `sci` is Rust's shortest `{:e}` form: `-1.2345e8`, `1e-300`, `0e0`, `NaN`, `inf`.
    match sci {
        "NaN" => return f.write_str("NaN"),
        "inf" => return f.write_str("Infinity"),
        "-inf" => return f.write_str("-Infinity"),
        _ => {}
    }
    let (neg, body) = match sci.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, sci),
    };
    let Some((mant, exp)) = body.split_once('e') else {
        return f.write_str(sci);
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return f.write_str(sci);
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if neg {
        f.write_str("-")?;
    }
    if (-4..fixed_max_exp).contains(&exp) {
        if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                f.write_str(&digits)?;
                for _ in digits.len()..int_len {
                    f.write_str("0")?;
                }
            } else {
                let (i, fr) = digits.split_at(int_len);
                write!(f, "{i}.{fr}")?;
            }
        } else {
            f.write_str("0.")?;
            for _ in 0..(-exp - 1) {
                f.write_str("0")?;
            }
            f.write_str(&digits)?;
        }
        Ok(())
    } else {
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            write!(f, "{first}")?;
        }
        let rest = chars.as_str();
        if !rest.is_empty() {
            write!(f, ".{rest}")?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(f, "e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Displays an `f64` as PostgreSQL's `float8out`.
pub(crate) struct PgF64(pub f64);

impl fmt::Display for PgF64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_float(f, &format!("{:e}", self.0), 15)
    }
}

/// Displays an `f32` as PostgreSQL's `float4out`.
pub(crate) struct PgF32(pub f32);

impl fmt::Display for PgF32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_float(f, &format!("{:e}", self.0), 6)
    }
}

// ---------------------------------------------------------------------------------------------
// "char"

/// The text form of a `"char"` byte, as PostgreSQL 15+ `charout` writes it: empty for 0, the
/// byte itself when ASCII, `\ooo` octal otherwise.
pub(crate) fn char_text(b: u8) -> String {
    match b {
        0 => String::new(),
        1..=0x7f => char::from(b).to_string(),
        _ => {
            let mut s = String::with_capacity(4);
            s.push('\\');
            s.push(char::from(b'0' + (b >> 6)));
            s.push(char::from(b'0' + ((b >> 3) & 7)));
            s.push(char::from(b'0' + (b & 7)));
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct D<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result>(F);
    impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for D<F> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            (self.0)(f)
        }
    }

    #[test]
    fn inet_forms() {
        for (s, cidr) in [
            ("192.168.0.1/24", false),
            ("10.1.2.3", false),
            ("::1", false),
            ("::ffff:1.2.3.4", false),
            ("::1.2.3.4", false),
            ("10.0.0.0/8", true),
            ("0.0.0.0/0", true),
            ("2001:db8::/32", true),
            ("fe80::1:2/64", false),
        ] {
            let v = parse_inet(s.as_bytes()).unwrap();
            assert_eq!(D(|f| v.write(f, cidr)).to_string(), s);
        }
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "::1/129",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "x",
        ] {
            assert!(parse_inet(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac::<6>(b"08:00:2b:01:02:03"),
            Ok([8, 0, 0x2b, 1, 2, 3])
        );
        assert_eq!(
            parse_mac::<8>(b"08:00:2B:01:02:03:04:05"),
            Ok([8, 0, 0x2b, 1, 2, 3, 4, 5])
        );
        for bad in [
            "08:00:2b:01:02",
            "08:00:2b:01:02:03:04",
            "08:00:2b:01:02:0g",
            "8:00:2b:01:02:03",
        ] {
            assert!(parse_mac::<6>(bad.as_bytes()).is_err(), "{bad}");
        }
        let m = [8u8, 0, 0x2b, 1, 2, 3];
        assert_eq!(D(|f| write_mac(f, &m)).to_string(), "08:00:2b:01:02:03");
    }

    #[test]
    fn money() {
        for (t, c) in [
            ("$12.34", Some(1234)),
            ("-$0.50", Some(-50)),
            ("$1,000,001.00", Some(100_000_100)),
            ("($0.50)", Some(-50)),
            ("$-1.00", Some(-100)),
            ("-$92,233,720,368,547,758.08", Some(i64::MIN)),
            ("$92,233,720,368,547,758.07", Some(i64::MAX)),
            ("$92,233,720,368,547,758.08", None),
            ("12,34 €", None),
            ("¥1,000", None),
            ("$1,00.00", None),
            ("$.50", None),
        ] {
            assert_eq!(Money::from_text(t).cents, c, "{t}");
        }
        for c in [0, 1, -1, 99, 100, 123_456, -100_000_000, i64::MAX, i64::MIN] {
            let m = Money::from_cents(c);
            assert_eq!(parse_money_cents(&m.text), Some(c), "{}", m.text);
        }
        assert_eq!(&*Money::from_cents(100_000_100).text, "$1,000,001.00");
        assert_eq!(&*Money::from_cents(-50).text, "-$0.50");
    }

    #[test]
    fn bits() {
        let b = parse_bits(b"1010").unwrap();
        assert_eq!(
            b,
            BitString {
                len: 4,
                bytes: vec![0xa0]
            }
        );
        assert_eq!(b.to_string(), "1010");
        assert_eq!(parse_bits(b"").unwrap().to_string(), "");
        assert_eq!(parse_bits(b"101000001").unwrap().bytes, vec![0xa0, 0x80]);
        assert!(parse_bits(b"102").is_err());
        assert_eq!(BitString::from_bits([true, false, true]).to_string(), "101");
    }

    #[test]
    fn byteas() {
        assert_eq!(
            parse_bytea(b"\\xdeadbeef00"),
            Ok(vec![0xde, 0xad, 0xbe, 0xef, 0])
        );
        assert_eq!(parse_bytea(b"\\x"), Ok(vec![]));
        assert_eq!(parse_bytea(b"\\xDE AD"), Ok(vec![0xde, 0xad]));
        assert_eq!(
            parse_bytea(b"\\336\\255x\\\\"),
            Ok(vec![0xde, 0xad, b'x', b'\\'])
        );
        assert_eq!(parse_bytea(b""), Ok(vec![]));
        for bad in ["\\xa", "\\xzz", "\\4", "\\400", "\\"] {
            assert!(parse_bytea(bad.as_bytes()).is_err(), "{bad}");
        }
        let b = [0xde, 0xad, 0xbe, 0xef, 0];
        assert_eq!(D(|f| write_bytea(f, &b)).to_string(), "\\xdeadbeef00");
    }

    #[test]
    fn uuids() {
        let u = parse_uuid(b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(
            D(|f| write_uuid(f, &u)).to_string(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert_eq!(parse_uuid(b"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), Ok(u));
        assert_eq!(parse_uuid(b"{a0eebc999c0b4ef8bb6d6bb9bd380a11}"), Ok(u));
        for bad in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99x9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "",
        ] {
            assert!(parse_uuid(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats() {
        for s in [
            "0.1",
            "0.30000000000000004",
            "1.5",
            "1e-300",
            "1e+15",
            "1e+100",
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
            "0",
            "123456789012345",
            "0.0001",
            "1e-05",
            "1.7976931348623157e+308",
            "5e-324",
        ] {
            let v = parse_f64(s.as_bytes()).unwrap();
            assert_eq!(PgF64(v).to_string(), s);
        }
        for s in [
            "1.2345679e+08",
            "3.4028235e+38",
            "123456",
            "1.234567e+06",
            "0.1",
            "-0",
        ] {
            let v = parse_f32(s.as_bytes()).unwrap();
            assert_eq!(PgF32(v).to_string(), s);
        }
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        for bad in ["", "inf", "nan", "1e400", "0x10", "1,5", " 1", "infinity"] {
            assert!(parse_f64(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_f32(b"1e39").is_err());
    }

    #[test]
    fn chars() {
        assert_eq!(char_text(b'a'), "a");
        assert_eq!(char_text(0), "");
        assert_eq!(char_text(0xe9), "\\351");
    }
}
