//! `date`, `time`, `timetz`, `timestamp`, `timestamptz` and `interval`.
//!
//! All use PostgreSQL's own representations: days or microseconds since 2000-01-01, with the
//! same sentinels for ±infinity, so nothing is lost in either direction. Calendar arithmetic is
//! proleptic Gregorian with astronomical years (year 0 is 1 BC), as in PostgreSQL.

use std::fmt;

use super::scan::Scan;

/// Microseconds in a second.
pub(crate) const USECS_PER_SEC: i64 = 1_000_000;
/// Microseconds in a minute.
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
/// Microseconds in an hour.
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
/// Microseconds in a day.
pub(crate) const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// 2000-01-01 00:00:00 UTC as microseconds since the Unix epoch.
const PG_EPOCH_UNIX_USECS: i64 = 946_684_800_000_000;
/// Time zone offsets must be below 16 hours.
const TZ_LIMIT_SECS: i64 = 16 * 3600;

/// A `date`: days since 2000-01-01, with `i32::MAX` for `infinity` and `i32::MIN` for
/// `-infinity`, exactly as PostgreSQL stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

impl Date {
    /// `infinity`.
    pub const INFINITY: Date = Date(i32::MAX);
    /// `-infinity`.
    pub const NEG_INFINITY: Date = Date(i32::MIN);

    /// Whether this is neither `infinity` nor `-infinity`.
    pub fn is_finite(self) -> bool {
        self != Date::INFINITY && self != Date::NEG_INFINITY
    }

    /// Days since 2000-01-01 (the sentinels for the infinities included).
    pub fn days(self) -> i32 {
        self.0
    }

    /// The date of an astronomical year (0 is 1 BC, −1 is 2 BC), month (1–12) and day, or
    /// `None` when invalid or out of range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(i64::from(year), month) {
            return None;
        }
        let d = days_from_civil(i64::from(year), month, day);
        let d = i32::try_from(d).ok()?;
        let date = Date(d);
        date.is_finite().then_some(date)
    }

    /// The astronomical year (0 is 1 BC), month and day; `None` for the infinities.
    pub fn to_ymd(self) -> Option<(i32, u32, u32)> {
        if !self.is_finite() {
            return None;
        }
        let (y, m, d) = civil_from_days(i64::from(self.0));
        Some((i32::try_from(y).ok()?, m, d))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Date::INFINITY {
            return f.write_str("infinity");
        }
        if *self == Date::NEG_INFINITY {
            return f.write_str("-infinity");
        }
        let (y, m, d) = civil_from_days(i64::from(self.0));
        write_ymd(f, y, m, d)?;
        if y <= 0 {
            f.write_str(" BC")?;
        }
        Ok(())
    }
}

/// A `time` without time zone: microseconds since midnight, `0..=86_400_000_000`
/// (`24:00:00` is valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl Time {
    /// Microseconds since midnight.
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Hours, minutes, seconds and microseconds.
    pub fn hms_micro(self) -> (u32, u32, u32, u32) {
        let us = self.0.clamp(0, USECS_PER_DAY);
        let h = us / USECS_PER_HOUR;
        let m = us % USECS_PER_HOUR / USECS_PER_MINUTE;
        let s = us % USECS_PER_MINUTE / USECS_PER_SEC;
        let f = us % USECS_PER_SEC;
        (h as u32, m as u32, s as u32, f as u32)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time(f, self.0)
    }
}

/// A `time with time zone`: microseconds since midnight (local) and the zone's offset in
/// seconds **east** of UTC (`+02` is 7200; the binary format stores the opposite sign).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeTz {
    /// Local microseconds since midnight, `0..=86_400_000_000`.
    pub micros: i64,
    /// The offset in seconds east of UTC (`-00:30` is −1800).
    pub offset_seconds: i32,
}

impl TimeTz {
    /// The same instant as microseconds since midnight UTC (may fall outside one day).
    pub fn utc_micros(&self) -> i64 {
        self.micros - i64::from(self.offset_seconds) * USECS_PER_SEC
    }
}

impl fmt::Display for TimeTz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_time(f, self.micros)?;
        write_offset(f, self.offset_seconds)
    }
}

/// A `timestamp` or `timestamptz`: microseconds since 2000-01-01 00:00:00 (UTC for
/// `timestamptz`), with `i64::MAX` for `infinity` and `i64::MIN` for `-infinity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `infinity`.
    pub const INFINITY: Timestamp = Timestamp(i64::MAX);
    /// `-infinity`.
    pub const NEG_INFINITY: Timestamp = Timestamp(i64::MIN);

    /// Whether this is neither `infinity` nor `-infinity`.
    pub fn is_finite(self) -> bool {
        self != Timestamp::INFINITY && self != Timestamp::NEG_INFINITY
    }

    /// Microseconds since 2000-01-01 (the sentinels for the infinities included).
    pub fn micros(self) -> i64 {
        self.0
    }

    /// Microseconds since the Unix epoch; `None` for the infinities or on overflow.
    pub fn to_unix_micros(self) -> Option<i64> {
        if !self.is_finite() {
            return None;
        }
        self.0.checked_add(PG_EPOCH_UNIX_USECS)
    }

    /// Nanoseconds since the Unix epoch; `None` for the infinities and for instants outside
    /// what an `i64` of nanoseconds holds (before 1677 or after 2262).
    pub fn to_unix_nanos(self) -> Option<i64> {
        self.to_unix_micros()?.checked_mul(1000)
    }

    /// The timestamp of a Unix-epoch microsecond count, or `None` on overflow.
    pub fn from_unix_micros(us: i64) -> Option<Timestamp> {
        let ts = Timestamp(us.checked_sub(PG_EPOCH_UNIX_USECS)?);
        ts.is_finite().then_some(ts)
    }

    /// The date part (in UTC for `timestamptz`); the infinities map to the date infinities.
    pub fn date(self) -> Date {
        if self == Timestamp::INFINITY {
            return Date::INFINITY;
        }
        if self == Timestamp::NEG_INFINITY {
            return Date::NEG_INFINITY;
        }
        Date(i32::try_from(self.0.div_euclid(USECS_PER_DAY)).unwrap_or(i32::MAX))
    }

    /// The time-of-day part; midnight for the infinities.
    pub fn time(self) -> Time {
        if self.is_finite() {
            Time(self.0.rem_euclid(USECS_PER_DAY))
        } else {
            Time(0)
        }
    }

    /// The `timestamptz` text form in the pinned UTC session zone, such as
    /// `2024-02-29 08:15:01.5+00` or `0001-01-01 00:00:00+00 BC`.
    pub fn to_string_utc(self) -> String {
        let mut s = String::with_capacity(32);
        let _ = fmt::write(&mut s, format_args!("{}", TimestampDisplay(self, true)));
        s
    }

    pub(crate) fn display(self, with_offset: bool) -> impl fmt::Display {
        TimestampDisplay(self, with_offset)
    }
}

struct TimestampDisplay(Timestamp, bool);

impl fmt::Display for TimestampDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TimestampDisplay(ts, with_offset) = *self;
        if ts == Timestamp::INFINITY {
            return f.write_str("infinity");
        }
        if ts == Timestamp::NEG_INFINITY {
            return f.write_str("-infinity");
        }
        let days = ts.0.div_euclid(USECS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        write_ymd(f, y, m, d)?;
        f.write_str(" ")?;
        write_time(f, ts.0.rem_euclid(USECS_PER_DAY))?;
        if with_offset {
            f.write_str("+00")?;
        }
        if y <= 0 {
            f.write_str(" BC")?;
        }
        Ok(())
    }
}

impl fmt::Display for Timestamp {
    /// The `timestamp` text form, without an offset: `2024-02-29 13:45:01.123456`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TimestampDisplay(*self, false).fmt(f)
    }
}

/// An `interval`: months, days and microseconds, kept apart as PostgreSQL does (a month is
/// not a fixed number of days, nor a day a fixed number of hours across DST).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Interval {
    /// Months (a year is 12).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

impl Interval {
    /// `infinity` (PostgreSQL 17+).
    pub const INFINITY: Interval = Interval {
        months: i32::MAX,
        days: i32::MAX,
        micros: i64::MAX,
    };
    /// `-infinity` (PostgreSQL 17+).
    pub const NEG_INFINITY: Interval = Interval {
        months: i32::MIN,
        days: i32::MIN,
        micros: i64::MIN,
    };
}

impl fmt::Display for Interval {
    /// The `postgres` IntervalStyle: `1 year 2 mons 3 days 04:05:06.789`, `-1 days -00:00:01`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Interval::INFINITY {
            return f.write_str("infinity");
        }
        if *self == Interval::NEG_INFINITY {
            return f.write_str("-infinity");
        }
        let mut is_zero = true;
        let mut is_before = false;
        let mut part = |f: &mut fmt::Formatter<'_>, v: i64, unit: &str| -> fmt::Result {
            if v == 0 {
                return Ok(());
            }
            if !is_zero {
                f.write_str(" ")?;
            }
            if is_before && v > 0 {
                f.write_str("+")?;
            }
            write!(f, "{v} {unit}")?;
            if v != 1 {
                f.write_str("s")?;
            }
            is_before = v < 0;
            is_zero = false;
            Ok(())
        };
        let months = i64::from(self.months);
        part(f, months / 12, "year")?;
        part(f, months % 12, "mon")?;
        part(f, i64::from(self.days), "day")?;
        if is_zero || self.micros != 0 {
            let us = self.micros;
            let hour = us / USECS_PER_HOUR;
            let min = us % USECS_PER_HOUR / USECS_PER_MINUTE;
            let sec = us % USECS_PER_MINUTE / USECS_PER_SEC;
            let fsec = us % USECS_PER_SEC;
            if !is_zero {
                f.write_str(" ")?;
            }
            if us < 0 {
                f.write_str("-")?;
            } else if is_before {
                f.write_str("+")?;
            }
            write!(
                f,
                "{:02}:{:02}:{:02}",
                hour.unsigned_abs(),
                min.unsigned_abs(),
                sec.unsigned_abs()
            )?;
            write_fraction(f, fsec.unsigned_abs())?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (Howard Hinnant's algorithms, proleptic Gregorian, astronomical years).

/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 2000-01-01 of a valid civil date (`|y|` well below 2^40).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - UNIX_TO_PG_DAYS
}

/// The civil date of a day count since 2000-01-01 (any `i64` day count that came from an
/// `i64` of microseconds or an `i32` of days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468 + UNIX_TO_PG_DAYS;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers.

fn write_ymd(f: &mut fmt::Formatter<'_>, y: i64, m: u32, d: u32) -> fmt::Result {
    let year = if y <= 0 { 1 - y } else { y };
    write!(f, "{year:04}-{m:02}-{d:02}")
}

/// `HH:MM:SS` plus a trimmed fraction.
fn write_time(f: &mut fmt::Formatter<'_>, us: i64) -> fmt::Result {
    let us = us.unsigned_abs();
    let h = us / USECS_PER_HOUR as u64;
    let m = us % USECS_PER_HOUR as u64 / USECS_PER_MINUTE as u64;
    let s = us % USECS_PER_MINUTE as u64 / USECS_PER_SEC as u64;
    write!(f, "{h:02}:{m:02}:{s:02}")?;
    write_fraction(f, us % USECS_PER_SEC as u64)
}

/// `.ffffff` without trailing zeros, nothing for zero.
fn write_fraction(f: &mut fmt::Formatter<'_>, mut frac: u64) -> fmt::Result {
    if frac == 0 {
        return Ok(());
    }
    let mut width = 6;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    write!(f, ".{frac:0width$}")
}

/// `+HH`, `+HH:MM` or `+HH:MM:SS` for an offset east of UTC.
fn write_offset(f: &mut fmt::Formatter<'_>, east: i32) -> fmt::Result {
    let sign = if east >= 0 { '+' } else { '-' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    if s != 0 {
        write!(f, "{sign}{h:02}:{m:02}:{s:02}")
    } else if m != 0 {
        write!(f, "{sign}{h:02}:{m:02}")
    } else {
        write!(f, "{sign}{h:02}")
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing (the ISO DateStyle output of PostgreSQL).

type PResult<T> = Result<T, &'static str>;

/// `Y+-MM-DD` (the year has at least one digit) → validated `(astronomical year, m, d)` once
/// the era is known; returns the raw fields.
fn date_fields(sc: &mut Scan<'_>) -> PResult<(u64, u32, u32)> {
    let y = sc.uint(9).ok_or("expected a year")?;
    sc.expect(b'-', "expected '-' after the year")?;
    let m = sc.fixed_digits(2).ok_or("expected a two-digit month")?;
    sc.expect(b'-', "expected '-' after the month")?;
    let d = sc.fixed_digits(2).ok_or("expected a two-digit day")?;
    Ok((y, m, d))
}

/// Validates date fields and returns days since 2000-01-01.
fn civil_days(y: u64, m: u32, d: u32, bc: bool) -> PResult<i64> {
    if y == 0 {
        return Err("year 0 does not exist");
    }
    let y = i64::try_from(y).map_err(|_| "year out of range")?;
    let astro = if bc { 1 - y } else { y };
    if !(1..=12).contains(&m) {
        return Err("month out of range");
    }
    if d == 0 || d > days_in_month(astro, m) {
        return Err("day out of range for the month");
    }
    Ok(days_from_civil(astro, m, d))
}

/// `HH:MM:SS[.f{1,6}]` → microseconds; hour 24 only as `24:00:00`.
fn time_fields(sc: &mut Scan<'_>) -> PResult<i64> {
    let h = sc.uint(2).ok_or("expected hours")?;
    sc.expect(b':', "expected ':' after the hours")?;
    let m = sc.fixed_digits(2).ok_or("expected two-digit minutes")?;
    sc.expect(b':', "expected ':' after the minutes")?;
    let s = sc.fixed_digits(2).ok_or("expected two-digit seconds")?;
    let frac = fraction(sc)?;
    if h > 24 || m > 59 || s > 59 || (h == 24 && (m != 0 || s != 0 || frac != 0)) {
        return Err("time field out of range");
    }
    Ok(h as i64 * USECS_PER_HOUR
        + i64::from(m) * USECS_PER_MINUTE
        + i64::from(s) * USECS_PER_SEC
        + frac)
}

/// An optional `.` and 1–6 digits → microseconds.
fn fraction(sc: &mut Scan<'_>) -> PResult<i64> {
    if !sc.eat(b'.') {
        return Ok(0);
    }
    let mut v: i64 = 0;
    let mut n = 0;
    while let Some(b) = sc.peek() {
        if !b.is_ascii_digit() {
            break;
        }
        if n == 6 {
            return Err("more than 6 fraction digits");
        }
        v = v * 10 + i64::from(b - b'0');
        n += 1;
        sc.bump();
    }
    if n == 0 {
        return Err("expected digits after '.'");
    }
    for _ in n..6 {
        v *= 10;
    }
    Ok(v)
}

/// `±HH[:MM[:SS]]` → seconds east of UTC.
fn offset_fields(sc: &mut Scan<'_>) -> PResult<i32> {
    let neg = match sc.bump() {
        Some(b'+') => false,
        Some(b'-') => true,
        _ => return Err("expected a '+' or '-' zone offset"),
    };
    let h = sc.uint(2).ok_or("expected offset hours")? as i64;
    let mut m = 0;
    let mut s = 0;
    if sc.eat(b':') {
        m = sc.fixed_digits(2).ok_or("expected offset minutes")?;
        if sc.eat(b':') {
            s = sc.fixed_digits(2).ok_or("expected offset seconds")?;
        }
    }
    if m > 59 || s > 59 {
        return Err("offset field out of range");
    }
    let secs = h * 3600 + i64::from(m) * 60 + i64::from(s);
    if secs >= TZ_LIMIT_SECS {
        return Err("time zone offset out of range");
    }
    let secs = secs as i32;
    Ok(if neg { -secs } else { secs })
}

fn strip_bc(s: &[u8]) -> (&[u8], bool) {
    match s.strip_suffix(b" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

/// The value of an ASCII digit, or a value above 9 for any other byte.
#[inline(always)]
fn digit(b: u8) -> u32 {
    u32::from(b.wrapping_sub(b'0'))
}

/// The values of `N` ASCII digits; `None` when one is not a digit.
#[inline(always)]
fn digits<const N: usize>(b: [u8; N]) -> Option<[u32; N]> {
    let ds = b.map(digit);
    ds.iter().all(|&d| d <= 9).then_some(ds)
}

/// The day count of the last `YYYY-MM-DD` date read through it.
///
/// The timestamps of consecutive rows mostly fall on the same day, so the fast paths of
/// [`parse_timestamp_memo`] and [`parse_date_memo`] reuse the day count when the ten date
/// characters are the same, instead of checking and converting them again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DateMemo {
    last: Option<([u8; 10], i64)>,
}

impl DateMemo {
    /// The day count of `date` (as [`fast_ymd`] gives it), remembered.
    #[inline]
    fn days(&mut self, date: &[u8; 10]) -> Option<i64> {
        if let Some((text, days)) = &self.last
            && text == date
        {
            return Some(*days);
        }
        let days = fast_ymd(date)?;
        self.last = Some((*date, days));
        Some(days)
    }
}

/// `YYYY-MM-DD` with a four-digit year from 1 to 9999 (AD), validated → days since
/// 2000-01-01; `None` for anything else (left to the general parser).
#[inline(always)]
fn fast_ymd(s: &[u8; 10]) -> Option<i64> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *s else {
        return None;
    };
    let [y0, y1, y2, y3, m0, m1, d0, d1] = digits([y0, y1, y2, y3, m0, m1, d0, d1])?;
    let y = y0 * 1000 + y1 * 100 + y2 * 10 + y3;
    let m = m0 * 10 + m1;
    let d = d0 * 10 + d1;
    if y == 0 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(i64::from(y), m) {
        return None;
    }
    Some(days_from_civil(i64::from(y), m, d))
}

/// The common `date` text `YYYY-MM-DD` (year 1 to 9999); `None` for anything else.
#[inline]
fn parse_date_fast(s: &[u8], memo: &mut DateMemo) -> Option<Date> {
    let days = memo.days(s.try_into().ok()?)?;
    // Four-digit years are far inside the `i32` range.
    i32::try_from(days).ok().map(Date)
}

/// The common `timestamp`/`timestamptz` text PostgreSQL prints under `DateStyle=ISO` and a
/// UTC session: `YYYY-MM-DD HH:MM:SS[.f{1,6}]` and, with an offset, `±HH[:MM]` (year 1 to
/// 9999, hour below 24). `None` for anything else, which the general parser handles (and
/// refuses when invalid): whenever this returns a value, the general parser returns the same.
#[inline]
fn parse_timestamp_fast(s: &[u8], with_offset: bool, memo: &mut DateMemo) -> Option<Timestamp> {
    let (date, rest) = s.split_first_chunk::<10>()?;
    let days = memo.days(date)?;
    let (time, mut rest) = rest.split_first_chunk::<9>()?;
    let [b' ', h0, h1, b':', mi0, mi1, b':', s0, s1] = *time else {
        return None;
    };
    let [h0, h1, mi0, mi1, s0, s1] = digits([h0, h1, mi0, mi1, s0, s1])?;
    let (h, mi, sec) = (h0 * 10 + h1, mi0 * 10 + mi1, s0 * 10 + s1);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut us = i64::from(h * 3600 + mi * 60 + sec) * USECS_PER_SEC;
    if let [b'.', tail @ ..] = rest {
        let mut frac = 0u32;
        let mut n = 0usize;
        let mut tail = tail;
        while let [b, more @ ..] = tail {
            let d = digit(*b);
            if d > 9 {
                break;
            }
            if n == 6 {
                return None;
            }
            frac = frac * 10 + d;
            n += 1;
            tail = more;
        }
        if n == 0 {
            return None;
        }
        us += i64::from(frac * [1, 100_000, 10_000, 1000, 100, 10, 1].get(n).copied()?);
        rest = tail;
    }
    if with_offset {
        let (neg, tail) = match rest {
            [b'+', tail @ ..] => (false, tail),
            [b'-', tail @ ..] => (true, tail),
            _ => return None,
        };
        let secs = match *tail {
            [a, b] => {
                let (a, b) = (digit(a), digit(b));
                if a > 9 || b > 9 {
                    return None;
                }
                (a * 10 + b) * 3600
            }
            [a, b, b':', c, d] => {
                let (a, b, c, d) = (digit(a), digit(b), digit(c), digit(d));
                if a > 9 || b > 9 || c > 5 || d > 9 {
                    return None;
                }
                (a * 10 + b) * 3600 + (c * 10 + d) * 60
            }
            _ => return None,
        };
        if i64::from(secs) >= TZ_LIMIT_SECS {
            return None;
        }
        let off = i64::from(secs) * USECS_PER_SEC;
        us = if neg { us + off } else { us - off };
    } else if !rest.is_empty() {
        return None;
    }
    // Years 1..=9999 keep this far inside the `i64` range and away from the sentinels.
    Some(Timestamp(days * USECS_PER_DAY + us))
}

/// Parses `date` text: `2024-02-29`, `0001-01-01 BC`, `5874897-12-31`, `infinity`.
pub(crate) fn parse_date(s: &[u8]) -> PResult<Date> {
    parse_date_memo(s, &mut DateMemo::default())
}

/// [`parse_date`], reusing the day count of `memo`'s last date when `s` is the same date.
#[inline]
pub(crate) fn parse_date_memo(s: &[u8], memo: &mut DateMemo) -> PResult<Date> {
    if let Some(d) = parse_date_fast(s, memo) {
        return Ok(d);
    }
    parse_date_general(s)
}

/// [`parse_date`] without the fast path: every form the server prints.
fn parse_date_general(s: &[u8]) -> PResult<Date> {
    match s {
        b"infinity" => return Ok(Date::INFINITY),
        b"-infinity" => return Ok(Date::NEG_INFINITY),
        _ => {}
    }
    let (body, bc) = strip_bc(s);
    let mut sc = Scan::new(body);
    let (y, m, d) = date_fields(&mut sc)?;
    if !sc.done() {
        return Err("trailing characters");
    }
    let days = civil_days(y, m, d, bc)?;
    let date = Date(i32::try_from(days).map_err(|_| "date out of range")?);
    if !date.is_finite() {
        return Err("date out of range");
    }
    Ok(date)
}

/// Parses `time` text: `23:59:59.999999`, `24:00:00`.
pub(crate) fn parse_time(s: &[u8]) -> PResult<Time> {
    let mut sc = Scan::new(s);
    let t = time_fields(&mut sc)?;
    if !sc.done() {
        return Err("trailing characters");
    }
    Ok(Time(t))
}

/// Parses `timetz` text: `12:00:00+02`, `00:00:00-00:30`, `12:00:00.123-03:30`.
pub(crate) fn parse_timetz(s: &[u8]) -> PResult<TimeTz> {
    let mut sc = Scan::new(s);
    let micros = time_fields(&mut sc)?;
    let offset_seconds = offset_fields(&mut sc)?;
    if !sc.done() {
        return Err("trailing characters");
    }
    Ok(TimeTz {
        micros,
        offset_seconds,
    })
}

/// Parses `timestamp` (`with_offset == false`) or `timestamptz` text and returns UTC
/// microseconds since 2000-01-01.
pub(crate) fn parse_timestamp(s: &[u8], with_offset: bool) -> PResult<Timestamp> {
    parse_timestamp_memo(s, with_offset, &mut DateMemo::default())
}

/// [`parse_timestamp`], reusing the day count of `memo`'s last date when `s` starts with the
/// same date.
#[inline]
pub(crate) fn parse_timestamp_memo(
    s: &[u8],
    with_offset: bool,
    memo: &mut DateMemo,
) -> PResult<Timestamp> {
    if let Some(ts) = parse_timestamp_fast(s, with_offset, memo) {
        return Ok(ts);
    }
    parse_timestamp_general(s, with_offset)
}

/// [`parse_timestamp`] without the fast path.
fn parse_timestamp_general(s: &[u8], with_offset: bool) -> PResult<Timestamp> {
    match s {
        b"infinity" => return Ok(Timestamp::INFINITY),
        b"-infinity" => return Ok(Timestamp::NEG_INFINITY),
        _ => {}
    }
    let (body, bc) = strip_bc(s);
    let mut sc = Scan::new(body);
    let (y, m, d) = date_fields(&mut sc)?;
    sc.expect(b' ', "expected ' ' between date and time")?;
    let t = time_fields(&mut sc)?;
    let off = if with_offset {
        offset_fields(&mut sc)?
    } else {
        0
    };
    if !sc.done() {
        return Err("trailing characters");
    }
    let days = civil_days(y, m, d, bc)?;
    let us = i128::from(days) * i128::from(USECS_PER_DAY) + i128::from(t)
        - i128::from(off) * i128::from(USECS_PER_SEC);
    let ts = Timestamp(i64::try_from(us).map_err(|_| "timestamp out of range")?);
    if !ts.is_finite() {
        return Err("timestamp out of range");
    }
    Ok(ts)
}

/// Parses `interval` text in the `postgres` IntervalStyle (`1 year 2 mons 3 days 04:05:06.789`,
/// `-1 days -00:00:01`, `00:00:00`), also accepting `postgres_verbose` (`@ 1 day 2 hours ago`)
/// and PostgreSQL 17's `infinity`/`-infinity`.
pub(crate) fn parse_interval(s: &[u8]) -> PResult<Interval> {
    match s {
        b"infinity" => return Ok(Interval::INFINITY),
        b"-infinity" => return Ok(Interval::NEG_INFINITY),
        _ => {}
    }
    const OOR: &str = "interval out of range";
    let mut sc = Scan::new(s);
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i128);
    let mut any = false;
    let mut ago = false;
    let skip_spaces = |sc: &mut Scan<'_>| while sc.eat(b' ') {};
    skip_spaces(&mut sc);
    if sc.eat(b'@') {
        skip_spaces(&mut sc);
    }
    while !sc.done() {
        if any && sc.eat_word_ci(b"ago") {
            skip_spaces(&mut sc);
            if !sc.done() {
                return Err("'ago' must come last");
            }
            ago = true;
            break;
        }
        let neg = if sc.eat(b'-') {
            true
        } else {
            sc.eat(b'+');
            false
        };
        let n = sc.uint(18).ok_or("expected a number")? as i64;
        if sc.eat(b':') {
            // A time field: H+:MM[:SS[.ffffff]]
            let m = sc.fixed_digits(2).ok_or("expected two-digit minutes")?;
            let (sec, frac) = if sc.eat(b':') {
                let sec = sc.fixed_digits(2).ok_or("expected two-digit seconds")?;
                (sec, fraction(&mut sc)?)
            } else {
                (0, 0)
            };
            if m > 59 || sec > 59 {
                return Err("time field out of range");
            }
            let t = i128::from(n) * i128::from(USECS_PER_HOUR)
                + i128::from(m) * i128::from(USECS_PER_MINUTE)
                + i128::from(sec) * i128::from(USECS_PER_SEC)
                + i128::from(frac);
            micros = micros.checked_add(if neg { -t } else { t }).ok_or(OOR)?;
        } else {
            let frac = fraction(&mut sc)?;
            if !sc.eat(b' ') {
                return Err("expected a unit after the number");
            }
            skip_spaces(&mut sc);
            let start = sc.pos();
            while sc.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                sc.bump();
            }
            let unit = sc.since(start);
            enum Field {
                Months,
                Days,
                Micros,
            }
            let (field, scale) = match unit {
                b"year" | b"years" | b"yr" | b"yrs" => (Field::Months, 12),
                b"mon" | b"mons" | b"month" | b"months" => (Field::Months, 1),
                b"week" | b"weeks" => (Field::Days, 7),
                b"day" | b"days" => (Field::Days, 1),
                b"hour" | b"hours" | b"hr" | b"hrs" => (Field::Micros, USECS_PER_HOUR),
                b"min" | b"mins" | b"minute" | b"minutes" => (Field::Micros, USECS_PER_MINUTE),
                b"sec" | b"secs" | b"second" | b"seconds" => (Field::Micros, USECS_PER_SEC),
                _ => return Err("unknown interval unit"),
            };
            if frac != 0 && scale != USECS_PER_SEC {
                return Err("fractions are only supported on seconds");
            }
            let sign = if neg { -1 } else { 1 };
            match field {
                Field::Months | Field::Days => {
                    let v = n.checked_mul(scale * sign).ok_or(OOR)?;
                    let target = if matches!(field, Field::Months) {
                        &mut months
                    } else {
                        &mut days
                    };
                    *target = target.checked_add(v).ok_or(OOR)?;
                }
                Field::Micros => {
                    let v = i128::from(n) * i128::from(scale) + i128::from(frac);
                    micros = micros.checked_add(v * i128::from(sign)).ok_or(OOR)?;
                }
            }
        }
        any = true;
        if !sc.done() && !sc.eat(b' ') {
            return Err("expected ' ' between interval fields");
        }
        skip_spaces(&mut sc);
    }
    if !any {
        return Err("empty interval");
    }
    if ago {
        months = months.checked_neg().ok_or(OOR)?;
        days = days.checked_neg().ok_or(OOR)?;
        micros = micros.checked_neg().ok_or(OOR)?;
    }
    let iv = Interval {
        months: i32::try_from(months).map_err(|_| OOR)?,
        days: i32::try_from(days).map_err(|_| OOR)?,
        micros: i64::try_from(micros).map_err(|_| OOR)?,
    };
    if iv == Interval::INFINITY || iv == Interval::NEG_INFINITY {
        return Err(OOR);
    }
    Ok(iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse_timestamp(s.as_bytes(), false).unwrap()
    }

    fn tstz(s: &str) -> Timestamp {
        parse_timestamp(s.as_bytes(), true).unwrap()
    }

    #[test]
    fn calendar_round_trips() {
        for z in (-2_500_000i64..2_500_000).step_by(997).chain([
            0,
            -1,
            59,
            60,
            -730_485,
            i64::from(i32::MAX) - 1,
            i64::from(i32::MIN) + 1,
        ]) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "{z}");
        }
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 1), -10_957);
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(civil_from_days(59), (2000, 2, 29));
    }

    #[test]
    fn dates() {
        for s in [
            "2024-02-29",
            "0001-01-01 BC",
            "4713-01-01 BC",
            "10000-01-01",
            "5874897-12-31",
            "infinity",
            "-infinity",
            "2000-01-01",
            "1999-12-31",
        ] {
            let d = parse_date(s.as_bytes()).unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(parse_date(b"2000-01-01"), Ok(Date(0)));
        assert_eq!(
            parse_date(b"0001-01-01 BC").unwrap().to_ymd(),
            Some((0, 1, 1))
        );
        assert_eq!(Date::from_ymd(2024, 2, 29), parse_date(b"2024-02-29").ok());
        assert_eq!(Date::from_ymd(2023, 2, 29), None);
        for bad in [
            "2023-02-29",
            "0000-01-01",
            "2024-13-01",
            "2024-1-01",
            "2024-01-01 AD",
            "2024-01-01 ",
            "",
            "99999999999-01-01",
            "Infinity",
        ] {
            assert!(parse_date(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        for s in [
            "23:59:59.999999",
            "00:00:00",
            "24:00:00",
            "12:30:00.5",
            "01:02:03.000004",
        ] {
            assert_eq!(parse_time(s.as_bytes()).unwrap().to_string(), s);
        }
        assert_eq!(parse_time(b"24:00:00"), Ok(Time(USECS_PER_DAY)));
        assert_eq!(parse_time(b"00:00:01.5"), Ok(Time(1_500_000)));
        for bad in [
            "24:00:01",
            "25:00:00",
            "12:60:00",
            "12:00:60",
            "12:00",
            "12:00:00.",
            "12:00:00.1234567",
            "12:00:00+02",
        ] {
            assert!(parse_time(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn timetzs() {
        for (s, us, off) in [
            ("12:00:00+02", 12 * USECS_PER_HOUR, 7200),
            ("00:00:00-00:30", 0, -1800),
            ("24:00:00+15:59", USECS_PER_DAY, 15 * 3600 + 59 * 60),
            ("12:00:00.123-03:30", 12 * USECS_PER_HOUR + 123_000, -12600),
            ("12:00:00+00:19:32", 12 * USECS_PER_HOUR, 1172),
            ("12:00:00+00", 12 * USECS_PER_HOUR, 0),
        ] {
            let t = parse_timetz(s.as_bytes()).unwrap();
            assert_eq!(
                t,
                TimeTz {
                    micros: us,
                    offset_seconds: off
                }
            );
            assert_eq!(t.to_string(), s);
        }
        for bad in ["12:00:00", "12:00:00+16", "12:00:00+02:60", "12:00:00 +02"] {
            assert!(parse_timetz(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        for s in [
            "2024-02-29 13:45:01.123456",
            "2024-01-01 00:00:00.000001",
            "0044-03-15 12:00:00 BC",
            "294276-12-31 23:59:59.999999",
            "2000-01-01 00:00:00",
            "1970-01-01 00:00:00",
            "4714-11-24 00:00:00 BC",
            "infinity",
            "-infinity",
        ] {
            assert_eq!(ts(s).to_string(), s);
        }
        assert_eq!(ts("2000-01-01 00:00:00"), Timestamp(0));
        assert_eq!(ts("1970-01-01 00:00:00").to_unix_micros(), Some(0));
        assert_eq!(
            ts("1970-01-01 00:00:01").to_unix_nanos(),
            Some(1_000_000_000)
        );
        assert_eq!(Timestamp::INFINITY.to_unix_nanos(), None);
        assert_eq!(ts("0044-03-15 12:00:00 BC").to_unix_nanos(), None);
        assert!(ts("0044-03-15 12:00:00 BC").to_unix_micros().is_some());
        assert_eq!(ts("2024-01-01 24:00:00"), ts("2024-01-02 00:00:00"));
        assert!(parse_timestamp(b"294277-01-01 00:00:00", false).is_ok());
        assert!(parse_timestamp(b"300000-01-01 00:00:00", false).is_err());
        assert!(parse_timestamp(b"2024-01-01T00:00:00", false).is_err());
        assert!(parse_timestamp(b"2024-01-01 00:00:00+00", false).is_err());
    }

    #[test]
    fn timestamptzs() {
        for s in [
            "2024-02-29 08:15:01.5+00",
            "0001-01-01 00:00:00+00 BC",
            "infinity",
            "-infinity",
        ] {
            assert_eq!(tstz(s).to_string_utc(), s);
        }
        assert_eq!(
            tstz("2024-02-29 13:45:01+05:30"),
            tstz("2024-02-29 08:15:01+00")
        );
        assert_eq!(
            tstz("1850-01-01 12:19:32+00:19:32"),
            tstz("1850-01-01 12:00:00+00")
        );
        assert_eq!(
            tstz("2024-01-01 00:00:00-08"),
            tstz("2024-01-01 08:00:00+00")
        );
        assert!(parse_timestamp(b"2024-01-01 00:00:00", true).is_err());
        assert!(parse_timestamp(b"2024-01-01 00:00:00+00 BC x", true).is_err());
    }

    fn iv(months: i32, days: i32, micros: i64) -> Interval {
        Interval {
            months,
            days,
            micros,
        }
    }

    #[test]
    fn intervals() {
        for (s, v) in [
            (
                "1 year 2 mons 3 days 04:05:06.789",
                iv(14, 3, 4 * USECS_PER_HOUR + 5 * USECS_PER_MINUTE + 6_789_000),
            ),
            ("-1 days -00:00:01", iv(0, -1, -USECS_PER_SEC)),
            ("-1 mons +1 day -00:00:01.5", iv(-1, 1, -1_500_000)),
            ("1 year 6 mons", iv(18, 0, 0)),
            ("00:00:00", iv(0, 0, 0)),
            ("-178000000 years", iv(-2_136_000_000, 0, 0)),
            ("1 mon", iv(1, 0, 0)),
            ("1 day", iv(0, 1, 0)),
            ("2 days 100:00:00", iv(0, 2, 100 * USECS_PER_HOUR)),
            ("-2562047788:00:54.775808", iv(0, 0, i64::MIN)),
            ("2562047788:00:54.775807", iv(0, 0, i64::MAX)),
            ("-1 years -2 mons", iv(-14, 0, 0)),
            ("infinity", Interval::INFINITY),
            ("-infinity", Interval::NEG_INFINITY),
        ] {
            assert_eq!(parse_interval(s.as_bytes()), Ok(v), "{s}");
            assert_eq!(v.to_string(), s, "{s}");
        }
        assert_eq!(parse_interval(b"1 year -1 mons"), Ok(iv(11, 0, 0)));
        assert_eq!(
            parse_interval(b"@ 1 day 2 hours 3 mins 4.5 secs ago"),
            Ok(iv(
                0,
                -1,
                -(2 * USECS_PER_HOUR + 3 * USECS_PER_MINUTE + 4_500_000)
            ))
        );
        assert_eq!(parse_interval(b"3 weeks"), Ok(iv(0, 21, 0)));
        for bad in [
            "",
            "1",
            "1 fortnight",
            "1.5 days",
            "99999999999 years",
            "ago",
            "1 day ago 2 days",
            "1 day,",
            "00:60:00",
        ] {
            assert!(parse_interval(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn fast_paths_examples() {
        for (s, tz) in [
            ("2024-02-29 08:15:01.5+00", true),
            ("2024-02-29 08:15:01+05:30", true),
            ("2024-02-29 08:15:01-09:30", true),
            ("0001-01-01 00:00:00+00", true),
            ("9999-12-31 23:59:59.999999-15:59", true),
            ("2024-03-01 08:00:37", false),
            ("2024-03-01 08:00:37.000001", false),
            ("1900-02-28 12:00:00.1", false),
        ] {
            let fast = parse_timestamp_fast(s.as_bytes(), tz, &mut DateMemo::default());
            assert!(fast.is_some(), "{s}");
            assert_eq!(
                fast.map(Ok),
                Some(parse_timestamp_general(s.as_bytes(), tz)),
                "{s}"
            );
        }
        for (s, tz) in [
            ("2024-02-30 08:15:01+00", true),
            ("1900-02-29 08:15:01+00", true),
            ("0000-01-01 00:00:00+00", true),
            ("2024-02-29 24:00:00+00", true),
            ("2024-02-29 08:15:01.1234567+00", true),
            ("2024-02-29 08:15:01.+00", true),
            ("2024-02-29 08:15:01+16", true),
            ("2024-02-29 08:15:01+01:60", true),
            ("2024-02-29 08:15:01+01:02:03", true),
            ("2024-02-29 08:15:01+00 BC", true),
            ("2024-02-29 08:15:01", true),
            ("2024-02-29 08:15:01+00", false),
            ("12024-02-29 08:15:01", false),
            ("2024-02-29 8:15:01", false),
        ] {
            assert_eq!(
                parse_timestamp_fast(s.as_bytes(), tz, &mut DateMemo::default()),
                None,
                "{s}"
            );
        }
        assert_eq!(
            parse_date_fast(b"2024-02-29", &mut DateMemo::default()),
            Some(Date(8825))
        );
        assert_eq!(
            parse_date_fast(b"2023-02-29", &mut DateMemo::default()),
            None
        );
        assert_eq!(
            parse_date_fast(b"0001-01-01", &mut DateMemo::default()),
            parse_date_general(b"0001-01-01").ok()
        );
    }

    mod fast_props {
        use super::*;
        use proptest::prelude::*;

        /// Timestamps in PostgreSQL's ISO shape with fields slightly out of range, sometimes
        /// with one byte replaced.
        fn timestampish() -> impl Strategy<Value = Vec<u8>> {
            (
                0u32..10001,
                0u32..14,
                0u32..33,
                0u32..26,
                0u32..61,
                0u32..61,
                prop::option::of(0u32..10_000_000),
                prop::option::of((any::<bool>(), 0u32..17, prop::option::of(0u32..61))),
                any::<bool>(),
                prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
            )
                .prop_map(|(y, mo, d, h, mi, s, frac, off, bc, edit)| {
                    let mut t = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                    if let Some(f) = frac {
                        t.push_str(&format!(".{f}"));
                    }
                    if let Some((neg, oh, om)) = off {
                        t.push_str(&format!("{}{oh:02}", if neg { '-' } else { '+' }));
                        if let Some(om) = om {
                            t.push_str(&format!(":{om:02}"));
                        }
                    }
                    if bc {
                        t.push_str(" BC");
                    }
                    let mut b = t.into_bytes();
                    if let Some((i, x)) = edit {
                        let i = i.index(b.len());
                        b[i] = x;
                    }
                    b
                })
        }

        proptest! {
            /// Whenever the fast timestamp parser accepts text, the general one gives the
            /// same instant; the public parser always agrees with the general one.
            #[test]
            fn fast_timestamp_is_general(s in timestampish(), tz in any::<bool>()) {
                let general = parse_timestamp_general(&s, tz);
                if let Some(fast) = parse_timestamp_fast(&s, tz, &mut DateMemo::default()) {
                    prop_assert_eq!(Ok(fast), general);
                }
                prop_assert_eq!(parse_timestamp(&s, tz), general);
            }

            /// A memo primed by any earlier timestamps changes no result.
            #[test]
            fn memo_changes_nothing(
                seq in prop::collection::vec((timestampish(), any::<bool>()), 1..8),
            ) {
                let mut memo = DateMemo::default();
                for (s, tz) in &seq {
                    prop_assert_eq!(
                        parse_timestamp_memo(s, *tz, &mut memo),
                        parse_timestamp_general(s, *tz)
                    );
                    let date = s.get(..10).unwrap_or(s);
                    prop_assert_eq!(parse_date_memo(date, &mut memo), parse_date_general(date));
                }
            }

            #[test]
            fn fast_timestamp_random_bytes(s in prop::collection::vec(any::<u8>(), 0..32), tz in any::<bool>()) {
                prop_assert_eq!(parse_timestamp(&s, tz), parse_timestamp_general(&s, tz));
            }

            /// The fast `date` parser agrees with the general one.
            #[test]
            fn fast_date_is_general(
                y in 0u32..10001, m in 0u32..14, d in 0u32..33,
                edit in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
            ) {
                let mut b = format!("{y:04}-{m:02}-{d:02}").into_bytes();
                if let Some((i, x)) = edit {
                    let i = i.index(b.len());
                    b[i] = x;
                }
                let general = parse_date_general(&b);
                if let Some(fast) = parse_date_fast(&b, &mut DateMemo::default()) {
                    prop_assert_eq!(Ok(fast), general);
                }
                prop_assert_eq!(parse_date(&b), general);
            }
        }
    }
}
