//! [`PgText`]: an immutable string that keeps short values inline.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest string (in bytes) kept inline, without a heap allocation.
const INLINE_CAP: usize = 30;

/// An immutable UTF-8 string that stores values of up to 30 bytes inline and longer ones on
/// the heap.
///
/// Column values are mostly short (status codes, names, amounts), and a replication stream
/// decodes millions of them: keeping them inline saves an allocation and a free per value.
/// `PgText` is 32 bytes, the same size as a `String` plus its enum tag would take in a
/// [`Value`](super::Value).
///
/// It dereferences to [`str`], and compares, orders and hashes exactly as the `str` it holds
/// (so it can be looked up by `&str` in a map keyed by `PgText`). `Debug` and `Display` print
/// it as the `str` would.
///
/// ```
/// use pgcdc_core::value::PgText;
///
/// let t = PgText::from("shipped");
/// assert_eq!(t, "shipped");
/// assert_eq!(t.len(), 7);
/// assert_eq!(format!("{t:?}"), "\"shipped\"");
/// let long = PgText::from("order 12345 for customer 42 - gift wrap".to_owned());
/// assert_eq!(long.into_string(), "order 12345 for customer 42 - gift wrap");
/// ```
#[derive(Clone)]
pub struct PgText(Repr);

#[derive(Clone)]
enum Repr {
    /// `buf[..len]` is valid UTF-8 and `len <= INLINE_CAP`.
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    /// Longer than `INLINE_CAP` bytes.
    Heap(Box<str>),
}

impl PgText {
    /// The empty string.
    pub const fn new() -> PgText {
        PgText(Repr::Inline {
            len: 0,
            buf: [0; INLINE_CAP],
        })
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes are valid UTF-8 (checked when stored), so this never falls back; the
            // check of at most 30 bytes is the price of `#![forbid(unsafe_code)]`.
            Repr::Inline { len, buf } => buf
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Repr::Heap(s) => s,
        }
    }

    /// The string as a `String` (without copying when it is on the heap).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Inline { .. } => self.as_str().to_owned(),
            Repr::Heap(s) => s.into_string(),
        }
    }

    /// Whether the string is stored inline (it is when it has at most 30 bytes).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }

    /// The string of `bytes`, or `None` when they are not UTF-8 (see
    /// [`set_utf8`](Self::set_utf8)).
    #[inline]
    pub(crate) fn from_utf8(bytes: &[u8]) -> Option<PgText> {
        let mut t = PgText::new();
        t.set_utf8(bytes).then_some(t)
    }

    /// Sets the string to `bytes` and returns `true` when they are UTF-8; `false` (and the
    /// string unchanged) otherwise.
    ///
    /// Short ASCII (most column values) is checked a word at a time and copied straight into
    /// the inline buffer where the string already lies, so a value being pushed into a list is
    /// not built on the stack and copied (a copy that stalls on store forwarding).
    #[inline]
    pub(crate) fn set_utf8(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() <= INLINE_CAP
            && bytes.is_ascii()
            && let (Repr::Inline { len, buf }, Ok(n)) = (&mut self.0, u8::try_from(bytes.len()))
            && let Some(dst) = buf.get_mut(..bytes.len())
        {
            dst.copy_from_slice(bytes);
            *len = n;
            return true;
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                *self = PgText::from(s);
                true
            }
            Err(_) => false,
        }
    }

    /// Stores `s` inline when it fits.
    #[inline]
    fn inline(s: &str) -> Option<PgText> {
        let len = u8::try_from(s.len())
            .ok()
            .filter(|&l| usize::from(l) <= INLINE_CAP)?;
        let mut buf = [0; INLINE_CAP];
        buf.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(PgText(Repr::Inline { len, buf }))
    }
}

/// Builds a [`PgText`] of ASCII bytes one at a time (numeric digits), inline when the final
/// length is known to fit.
pub(crate) enum AsciiBuilder {
    /// `buf[..len]` is ASCII.
    Inline {
        len: usize,
        buf: [u8; INLINE_CAP],
    },
    Heap(String),
}

impl AsciiBuilder {
    /// A builder for at most `capacity` bytes (more may be pushed, at the cost of a heap
    /// string).
    #[inline]
    pub(crate) fn with_capacity(capacity: usize) -> AsciiBuilder {
        if capacity <= INLINE_CAP {
            AsciiBuilder::Inline {
                len: 0,
                buf: [0; INLINE_CAP],
            }
        } else {
            AsciiBuilder::Heap(String::with_capacity(capacity))
        }
    }

    /// Appends `b`, which must be ASCII (anything else is ignored).
    #[inline]
    pub(crate) fn push(&mut self, b: u8) {
        if !b.is_ascii() {
            return;
        }
        match self {
            AsciiBuilder::Inline { len, buf } => {
                if let Some(slot) = buf.get_mut(*len) {
                    *slot = b;
                    *len += 1;
                } else {
                    let mut s = String::with_capacity(INLINE_CAP * 2);
                    s.extend(buf.iter().map(|&c| char::from(c)));
                    s.push(char::from(b));
                    *self = AsciiBuilder::Heap(s);
                }
            }
            AsciiBuilder::Heap(s) => s.push(char::from(b)),
        }
    }

    /// The bytes so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            AsciiBuilder::Inline { len, buf } => buf.get(..*len).unwrap_or_default(),
            AsciiBuilder::Heap(s) => s.as_bytes(),
        }
    }

    /// Removes the first byte, if any.
    pub(crate) fn remove_first(&mut self) {
        match self {
            AsciiBuilder::Inline { len, buf } => {
                if *len > 0 {
                    buf.copy_within(1..*len, 0);
                    *len -= 1;
                }
            }
            AsciiBuilder::Heap(s) => {
                if !s.is_empty() {
                    s.remove(0);
                }
            }
        }
    }

    /// The text.
    pub(crate) fn finish(self) -> PgText {
        match self {
            AsciiBuilder::Inline { len, buf } => PgText(Repr::Inline {
                // `len <= INLINE_CAP` (pushes past it switch to the heap).
                len: u8::try_from(len).unwrap_or(0),
                buf,
            }),
            AsciiBuilder::Heap(s) => PgText::from(s),
        }
    }
}

impl Default for PgText {
    fn default() -> PgText {
        PgText::new()
    }
}

impl Deref for PgText {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for PgText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for PgText {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Borrow<str> for PgText {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for PgText {
    #[inline]
    fn from(s: &str) -> PgText {
        PgText::inline(s).unwrap_or_else(|| PgText(Repr::Heap(Box::from(s))))
    }
}

impl From<&String> for PgText {
    fn from(s: &String) -> PgText {
        PgText::from(s.as_str())
    }
}

impl From<String> for PgText {
    fn from(s: String) -> PgText {
        PgText::inline(&s).unwrap_or_else(|| PgText(Repr::Heap(s.into_boxed_str())))
    }
}

impl From<Box<str>> for PgText {
    fn from(s: Box<str>) -> PgText {
        PgText::inline(&s).unwrap_or(PgText(Repr::Heap(s)))
    }
}

impl From<PgText> for String {
    fn from(t: PgText) -> String {
        t.into_string()
    }
}

impl std::str::FromStr for PgText {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<PgText, Self::Err> {
        Ok(PgText::from(s))
    }
}

impl fmt::Display for PgText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for PgText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for PgText {
    fn eq(&self, other: &PgText) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PgText {}

impl PartialOrd for PgText {
    fn partial_cmp(&self, other: &PgText) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PgText {
    fn cmp(&self, other: &PgText) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for PgText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for PgText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PgText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for PgText {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<PgText> for str {
    fn eq(&self, other: &PgText) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<PgText> for &str {
    fn eq(&self, other: &PgText) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<PgText> for String {
    fn eq(&self, other: &PgText) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn size() {
        assert_eq!(size_of::<PgText>(), 32);
        assert_eq!(size_of::<Option<PgText>>(), 32);
    }

    #[test]
    fn inline_and_heap() {
        for len in 0..=70 {
            let s: String = "aé😀b".chars().cycle().take(len).collect();
            for t in [
                PgText::from(s.as_str()),
                PgText::from(s.clone()),
                PgText::from(s.clone().into_boxed_str()),
                s.parse().unwrap(),
            ] {
                assert_eq!(t.as_str(), s);
                assert_eq!(t.is_inline(), s.len() <= INLINE_CAP, "{s:?}");
                assert_eq!(t, s.as_str());
                assert_eq!(t, *s.as_str());
                assert_eq!(s, t);
                assert_eq!(t.to_string(), s);
                assert_eq!(format!("{t:?}"), format!("{s:?}"));
                assert_eq!(format!("{t:>80}"), format!("{s:>80}"));
                let h = std::collections::hash_map::RandomState::new();
                assert_eq!(h.hash_one(&t), h.hash_one(s.as_str()));
                assert_eq!(t.clone().into_string(), s);
                assert_eq!(String::from(t), s);
            }
        }
        assert_eq!(PgText::default(), "");
        assert_eq!(PgText::from_utf8(b"\xff"), None);
        assert_eq!(PgText::from_utf8(b"ok"), Some(PgText::from("ok")));
    }

    #[test]
    fn set_utf8_in_place() {
        let long = "x".repeat(31);
        let cases: [(&[u8], Option<&str>, bool); 7] = [
            (b"", Some(""), true),
            (b"shipped", Some("shipped"), true),
            (&[b'x'; 30], Some(&long[..30]), true),
            (long.as_bytes(), Some(&long), false),
            ("äöü".as_bytes(), Some("äöü"), true),
            (b"\xff", None, true),
            (b"ok\x80", None, true),
        ];
        for (bytes, want, inline) in cases {
            for start in [
                PgText::new(),
                PgText::from("previous"),
                PgText::from(long.clone()),
            ] {
                let mut t = start.clone();
                let ok = t.set_utf8(bytes);
                match want {
                    Some(w) => {
                        assert!(ok, "{bytes:?}");
                        assert_eq!(t, w);
                        assert_eq!(t.is_inline(), inline, "{bytes:?}");
                        assert_eq!(Some(t), PgText::from_utf8(bytes));
                    }
                    None => {
                        assert!(!ok, "{bytes:?}");
                        assert_eq!(t, start, "unchanged after invalid UTF-8");
                    }
                }
            }
        }
    }

    #[test]
    fn order_and_lookup() {
        let mut v: Vec<PgText> = ["b", "a", "ab", "", "ä"].map(PgText::from).to_vec();
        v.sort();
        assert_eq!(v, ["", "a", "ab", "b", "ä"]);
        let m: HashMap<PgText, u32> = HashMap::from([(PgText::from("k"), 1)]);
        assert_eq!(m.get("k"), Some(&1));
    }

    #[test]
    fn builder() {
        for n in [0usize, 1, 29, 30, 31, 64] {
            for cap in [0, n, 100] {
                let mut b = AsciiBuilder::with_capacity(cap);
                for i in 0..n {
                    b.push(b'0' + (i % 10) as u8);
                }
                b.push(0xe9);
                let want: String = (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
                assert_eq!(b.as_bytes(), want.as_bytes());
                b.remove_first();
                let t = b.finish();
                assert_eq!(t, want.get(1..).unwrap_or(""));
            }
        }
    }
}
