//! Incremental, zero-copy parsing of backend (server → client) messages.
//!
//! [`Framer::parse`] takes bytes accumulated from the socket and returns one message at a time,
//! or `None` until a whole frame has arrived. Payloads are `Bytes` slices of the input buffer
//! (`split_to(..).freeze()`), never copies.

use bytes::{Bytes, BytesMut};

use crate::error::{ProtocolError, ServerError};

/// Default maximum frame size: 1 GiB, PostgreSQL's own allocation limit for one message.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 30;

/// An Authentication (`R`) request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// Code 0: authentication succeeded.
    Ok,
    /// Code 3: send the password in cleartext.
    CleartextPassword,
    /// Code 5: send an MD5 hash with this salt (pgcdc refuses it).
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// Code 10: SASL, with the mechanisms offered in the server's preference order.
    Sasl {
        /// Mechanism names, such as `SCRAM-SHA-256-PLUS` and `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// Code 11: SASL continue (the server-first-message for SCRAM).
    SaslContinue(Bytes),
    /// Code 12: SASL final (the server-final-message for SCRAM).
    SaslFinal(Bytes),
    /// Any other code (Kerberos 2, SCM 6, GSS 7, GSSContinue 8, SSPI 9, …).
    Other(i32),
}

/// The transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionStatus {
    /// `I`: idle, not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block.
    Failed,
}

/// One field of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the source table, or 0.
    pub table_oid: u32,
    /// Attribute number in the source table, or 0.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// Data type size (negative for variable width).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary.
    pub format: i16,
}

/// A RowDescription (`T`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowDescription {
    /// The fields, in column order.
    pub fields: Vec<FieldDescription>,
}

/// A DataRow (`D`): column values as slices of the frame (`None` is SQL NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataRow {
    /// The values, in column order.
    pub values: Vec<Option<Bytes>>,
}

/// The body of CopyBothResponse / CopyOutResponse / CopyInResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResponse {
    /// Overall format: 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

/// A message from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `R`
    Authentication(Authentication),
    /// `S`
    ParameterStatus {
        /// Parameter name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `K`: process id and cancel key (4 bytes under 3.0, up to 256 under 3.2).
    BackendKeyData {
        /// Backend process id.
        process_id: i32,
        /// Secret key bytes.
        secret_key: Bytes,
    },
    /// `Z`
    ReadyForQuery(TransactionStatus),
    /// `T`
    RowDescription(RowDescription),
    /// `D`
    DataRow(DataRow),
    /// `C`: the command tag, such as `SELECT 1` or `IDENTIFY_SYSTEM`.
    CommandComplete {
        /// The tag.
        tag: String,
    },
    /// `I`
    EmptyQueryResponse,
    /// `E`
    ErrorResponse(ServerError),
    /// `N`
    NoticeResponse(ServerError),
    /// `W`
    CopyBothResponse(CopyResponse),
    /// `H`
    CopyOutResponse(CopyResponse),
    /// `G`
    CopyInResponse(CopyResponse),
    /// `d`: the payload, as a slice of the frame.
    CopyData(Bytes),
    /// `c`
    CopyDone,
    /// `v`: the newest protocol version the server supports (full code, e.g. 196608) and the
    /// protocol options it did not recognise.
    NegotiateProtocolVersion {
        /// Full version code.
        newest_version: i32,
        /// Unrecognised `_pq_.` options.
        unrecognized: Vec<String>,
    },
    /// `A`
    NotificationResponse {
        /// Notifying backend's process id.
        process_id: i32,
        /// Channel name.
        channel: String,
        /// Payload.
        payload: String,
    },
}

/// Splits a byte stream into backend messages, enforcing a maximum frame size.
#[derive(Clone, Debug)]
pub struct Framer {
    max_frame_len: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Framer {
    /// A framer refusing frames whose announced length exceeds `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Framer { max_frame_len }
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Parses the next complete message from the front of `buf`, removing its bytes.
    ///
    /// Returns `Ok(None)` (leaving `buf` untouched) while the frame is incomplete; when the
    /// header is known it reserves room for the rest of the frame (bounded by the maximum).
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<BackendMessage>, ProtocolError> {
        let _ = buf;
        Err(ProtocolError::Malformed { message: "any", reason: "parser not written yet" })
    }
}
