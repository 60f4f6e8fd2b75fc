//! Why a value could not be decoded: [`ValueError`].

use super::MAX_NESTING;
use super::json::JsonError;
use super::oid::Oid;

/// Why a value could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The text is not valid for the type. The caller may keep it as text
    /// ([`decode_text_lossless`](super::decode_text_lossless)).
    #[error("invalid text for type {}: {reason}", type_oid.describe_type())]
    InvalidText {
        /// The type being decoded (for a nested value, the innermost type that failed).
        type_oid: Oid,
        /// What is wrong.
        reason: &'static str,
    },
    /// The bytes are not valid for the type's binary format.
    #[error("invalid binary value for type {}: {reason}", type_oid.describe_type())]
    InvalidBinary {
        /// The type being decoded.
        type_oid: Oid,
        /// What is wrong.
        reason: &'static str,
    },
    /// The value nests deeper than [`MAX_NESTING`] levels.
    #[error("value of type {} nests deeper than {MAX_NESTING} levels", type_oid.describe_type())]
    TooDeep {
        /// The type being decoded.
        type_oid: Oid,
    },
    /// There is no binary decoder for this type and its bytes are not text; subscribe
    /// without `binary 'true'` to receive it as text.
    #[error(
        "no binary decoder for type {}; use text format (binary 'false') for this column",
        type_oid.describe_type()
    )]
    NoBinaryDecoder {
        /// The type.
        type_oid: Oid,
    },
}

/// A JSON parse error as the [`ValueError`] of a value of type `oid`.
pub(crate) fn json_error(oid: Oid, e: JsonError, binary: bool) -> ValueError {
    match e {
        JsonError::TooDeep => ValueError::TooDeep { type_oid: oid },
        JsonError::Syntax { reason, .. } if binary => ValueError::InvalidBinary {
            type_oid: oid,
            reason,
        },
        JsonError::Syntax { reason, .. } => ValueError::InvalidText {
            type_oid: oid,
            reason,
        },
    }
}
