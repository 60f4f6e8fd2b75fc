//! SASLprep (RFC 4013) exactly as PostgreSQL applies it to SCRAM passwords (`saslprep.c`).

use std::borrow::Cow;

use stringprep::tables;
use unicode_normalization::UnicodeNormalization;

/// Prepares a password for SCRAM the way PostgreSQL (server and libpq) does.
///
/// * Pure ASCII input is returned unchanged, control characters included.
/// * Input that is not valid UTF-8 is returned unchanged (PostgreSQL then hashes the raw bytes).
/// * Otherwise non-ASCII spaces are mapped to U+0020 and "commonly mapped to nothing"
///   characters are deleted. An empty result, a prohibited character (RFC 3454 C.1.2, C.2.1,
///   C.2.2, C.3–C.9, unassigned A.1) or a bidi violation makes the function return the raw
///   input unchanged. As in PostgreSQL, those checks run on the mapped, not yet normalized
///   characters.
/// * Otherwise the NFKC normalization of the mapped characters is returned.
///
/// This never fails: PostgreSQL's fallback for a password SASLprep rejects is the raw bytes.
pub fn saslprep(password: &[u8]) -> Cow<'_, [u8]> {
    if password.is_ascii() {
        return Cow::Borrowed(password);
    }
    let Ok(text) = std::str::from_utf8(password) else {
        return Cow::Borrowed(password);
    };
    match prepare(text) {
        Some(prepared) => Cow::Owned(prepared.into_bytes()),
        None => Cow::Borrowed(password),
    }
}

/// The SASLprep steps on valid UTF-8; `None` means "prohibited, use the raw bytes".
fn prepare(text: &str) -> Option<String> {
    // 1. Map. The space check comes first, as in saslprep.c: U+200B is in both tables and
    //    becomes a space.
    let mapped: Vec<char> = text
        .chars()
        .filter_map(|c| {
            if tables::non_ascii_space_character(c) {
                Some(' ')
            } else if tables::commonly_mapped_to_nothing(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect();

    // 2. Empty after mapping: prohibited.
    if mapped.is_empty() {
        return None;
    }

    // 3./4. Prohibited output, checked on the mapped (not normalized) characters.
    if mapped.iter().any(|&c| prohibited(c)) {
        return None;
    }

    // 5. Bidi, also on the mapped characters.
    if mapped.iter().any(|&c| tables::bidi_r_or_al(c)) {
        if mapped.iter().any(|&c| tables::bidi_l(c)) {
            return None;
        }
        let first_ok = mapped.first().is_some_and(|&c| tables::bidi_r_or_al(c));
        let last_ok = mapped.last().is_some_and(|&c| tables::bidi_r_or_al(c));
        if !first_ok || !last_ok {
            return None;
        }
    }

    Some(mapped.into_iter().nfkc().collect())
}

/// RFC 4013 §2.3 prohibited output plus §2.5 unassigned code points.
fn prohibited(c: char) -> bool {
    tables::non_ascii_space_character(c) // C.1.2
        || tables::ascii_control_character(c) // C.2.1
        || tables::non_ascii_control_character(c) // C.2.2
        || tables::private_use(c) // C.3
        || tables::non_character_code_point(c) // C.4
        || tables::surrogate_code(c) // C.5
        || tables::inappropriate_for_plain_text(c) // C.6
        || tables::inappropriate_for_canonical_representation(c) // C.7
        || tables::change_display_properties_or_deprecated(c) // C.8
        || tables::tagging_character(c) // C.9
        || tables::unassigned_code_point(c) // A.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prep(s: &str) -> Vec<u8> {
        saslprep(s.as_bytes()).into_owned()
    }

    #[test]
    fn soft_hyphen_is_mapped_to_nothing() {
        assert_eq!(prep("I\u{AD}X"), b"IX");
    }

    #[test]
    fn ligature_and_nbsp_are_normalized() {
        assert_eq!(prep("\u{FB01}x\u{A0}y"), b"fix y");
    }

    #[test]
    fn zero_width_space_becomes_space() {
        // U+200B is in C.1.2 and B.1; saslprep.c checks the space table first.
        assert_eq!(prep("a\u{200B}b\u{E9}"), "a b\u{E9}".as_bytes());
    }

    #[test]
    fn private_use_falls_back_to_raw() {
        let raw = "pa\u{E000}ss";
        assert!(matches!(saslprep(raw.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(prep(raw), raw.as_bytes());
    }

    #[test]
    fn ascii_is_unchanged_even_with_controls() {
        let raw = b"ab\x01\x7f c\t";
        assert!(matches!(saslprep(raw), Cow::Borrowed(_)));
        assert_eq!(&*saslprep(raw), raw);
        assert_eq!(&*saslprep(b""), b"");
    }

    #[test]
    fn invalid_utf8_is_raw() {
        let raw = b"ab\xff\xfecd";
        assert_eq!(&*saslprep(raw), raw);
    }

    #[test]
    fn only_mapped_to_nothing_is_raw() {
        let raw = "\u{AD}\u{200C}";
        assert_eq!(prep(raw), raw.as_bytes());
    }

    #[test]
    fn non_ascii_with_ascii_control_is_raw() {
        let raw = "\u{E9}\u{1}";
        assert_eq!(prep(raw), raw.as_bytes());
    }

    #[test]
    fn bidi_rules() {
        // All RandALCat: accepted.
        assert_eq!(prep("\u{5D0}\u{5D1}"), "\u{5D0}\u{5D1}".as_bytes());
        // RandALCat mixed with LCat: raw.
        let mixed = "\u{5D0}a\u{5D1}";
        assert_eq!(prep(mixed), mixed.as_bytes());
        // RandALCat not at the end: raw (digits are neither R nor L).
        let trailing = "\u{5D0}1";
        assert_eq!(prep(trailing), trailing.as_bytes());
    }

    #[test]
    fn checks_run_before_normalization() {
        // U+2474 PARENTHESIZED DIGIT ONE is allowed and NFKC-normalizes to "(1)".
        assert_eq!(prep("\u{2474}"), b"(1)");
        // U+FFFD is prohibited (C.6) even though it is assigned.
        let raw = "x\u{FFFD}";
        assert_eq!(prep(raw), raw.as_bytes());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let out = saslprep(&bytes);
            if bytes.is_ascii() {
                prop_assert_eq!(&*out, &bytes[..]);
            }
        }

        #[test]
        fn strings_never_panic(s in "\\PC{0,16}") {
            let _ = saslprep(s.as_bytes());
        }
    }
}
