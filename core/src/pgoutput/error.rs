//! Errors of pgoutput decoding and encoding.

use super::Xid;

/// Why a CopyData or pgoutput payload could not be decoded.
///
/// `message` names the message being decoded (`"Relation"`, `"XLogData"`, …) and `offset` is a
/// byte offset into that payload, counting its type byte as offset 0.
///
/// Every variant means the bytes do not match what this decoder understands, so the session
/// cannot continue safely: stop streaming, keep the last acknowledged LSN, and report the error.
/// A malformed message points at a server (or proxy) bug or a decoder bug; an unknown message
/// type or unknown flags point at a server speaking a newer protocol than pgcdc was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload was empty: not even a type byte.
    #[error("empty {layer} payload: no message type byte")]
    Empty {
        /// `"pgoutput"` or `"CopyData"`.
        layer: &'static str,
    },
    /// The type byte names no message this decoder knows.
    #[error(
        "unknown {layer} message type {byte:#04x} ({}); the server sent a message of a newer protocol version than pgcdc understands: request a lower proto_version or upgrade pgcdc",
        char::from(*byte).escape_default()
    )]
    UnknownMessageType {
        /// `"pgoutput"` or `"CopyData"`.
        layer: &'static str,
        /// The type byte.
        byte: u8,
    },
    /// The message ended before a field was complete.
    #[error(
        "malformed {message} message: truncated at offset {offset}, needed {needed} more bytes but only {available} remain"
    )]
    Truncated {
        /// The message being decoded.
        message: &'static str,
        /// Where the incomplete field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// Bytes were left over after the last field of the message.
    #[error("malformed {message} message: {trailing} unexpected trailing bytes at offset {offset}")]
    TrailingBytes {
        /// The message being decoded.
        message: &'static str,
        /// Where the extra bytes start.
        offset: usize,
        /// How many extra bytes there are.
        trailing: usize,
    },
    /// A flags or options field has bits this decoder does not know.
    #[error(
        "{message} message has unknown flags {flags:#04x} at offset {offset}: newer protocol? Request a lower proto_version or upgrade pgcdc"
    )]
    UnknownFlags {
        /// The message being decoded.
        message: &'static str,
        /// The flags byte as received.
        flags: u8,
        /// Where the flags byte is.
        offset: usize,
    },
    /// A NUL-terminated string had no NUL before the end of the message.
    #[error("malformed {message} message: string at offset {offset} has no NUL terminator")]
    UnterminatedString {
        /// The message being decoded.
        message: &'static str,
        /// Where the string starts.
        offset: usize,
    },
    /// A string was not UTF-8 (pgcdc pins `client_encoding=UTF8`, so this is corruption).
    #[error("malformed {message} message: {field} at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// The message being decoded.
        message: &'static str,
        /// Which field.
        field: &'static str,
        /// Where the string starts.
        offset: usize,
    },
    /// A count field was negative.
    #[error("malformed {message} message: negative {field} {value} at offset {offset}")]
    NegativeCount {
        /// The message being decoded.
        message: &'static str,
        /// Which count.
        field: &'static str,
        /// The value received.
        value: i64,
        /// Where the count is.
        offset: usize,
    },
    /// A one-byte code field held a value outside its defined set.
    #[error(
        "malformed {message} message: invalid {field} {} ({byte:#04x}) at offset {offset}",
        char::from(*byte).escape_default()
    )]
    InvalidByte {
        /// The message being decoded.
        message: &'static str,
        /// Which field (replica identity, tuple marker, column kind, …).
        field: &'static str,
        /// The byte received.
        byte: u8,
        /// Where the byte is.
        offset: usize,
    },
    /// The payload is too large to describe with 32-bit offsets (over 4 GiB; PostgreSQL's own
    /// limit is 1 GiB).
    #[error("{message} message of {len} bytes is larger than 4 GiB")]
    TooLarge {
        /// The message being decoded.
        message: &'static str,
        /// The payload length.
        len: usize,
    },
    /// Stream Start arrived while a stream block was already open.
    #[error(
        "Stream Start for xid {xid} while the stream block of xid {open} is still open: the decoder lost track of stream blocks; reconnect to resynchronise"
    )]
    StreamAlreadyOpen {
        /// The xid of the new Stream Start.
        xid: Xid,
        /// The xid of the block that is open.
        open: Xid,
    },
    /// Stream Stop arrived with no stream block open.
    #[error(
        "Stream Stop without an open stream block: the decoder lost track of stream blocks; reconnect to resynchronise"
    )]
    StreamNotOpen,
    /// A transaction-control message arrived inside a stream block, where PostgreSQL never
    /// sends one.
    #[error(
        "{message} message inside the stream block of xid {open}: the decoder lost track of stream blocks; reconnect to resynchronise"
    )]
    UnexpectedInStream {
        /// The message that arrived.
        message: &'static str,
        /// The xid of the open block.
        open: Xid,
    },
}

/// Why a message could not be encoded (the test and tooling encoders in
/// [`encode`](super::encode), and [`TupleData::from_values`](super::TupleData::from_values)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A string sent NUL-terminated contains a NUL byte.
    #[error("{field} contains a NUL byte, which pgoutput cannot carry")]
    NulInString {
        /// Which field.
        field: &'static str,
    },
    /// More items than the count field can hold (`i16` columns, `u32` relations).
    #[error("{count} {field} do not fit the protocol's count field")]
    TooMany {
        /// What was counted.
        field: &'static str,
        /// How many there were.
        count: usize,
    },
    /// A value or tuple longer than 4 GiB.
    #[error("{field} of {len} bytes is longer than the protocol's 4 GiB limit")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}
