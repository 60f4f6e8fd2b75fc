//! The error type for authentication.

use crate::wire::EncodeError;

/// Why authentication failed on the client side.
///
/// Every message says what went wrong and what the operator can change. No variant ever
/// carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The server asked for a password, but none is configured.
    #[error(
        "the server requires {method} authentication but no password is configured; \
         set a password in the connection settings (or a .pgpass entry), or change the \
         pg_hba.conf method for this user"
    )]
    NoPassword {
        /// The method the server asked for, such as `SCRAM-SHA-256`.
        method: &'static str,
    },

    /// The server demanded MD5 password authentication, which pgcdc refuses.
    #[error(
        "the server demanded MD5 password authentication, which pgcdc refuses because MD5 is \
         weak and deprecated; change this user's pg_hba.conf method to scram-sha-256, then \
         re-set the password with password_encryption = 'scram-sha-256' (e.g. SET \
         password_encryption = 'scram-sha-256'; \\password <user>) and reload the server"
    )]
    Md5Refused,

    /// The server asked for an authentication method pgcdc does not implement.
    #[error(
        "the server requested {name} authentication (code {code}), which pgcdc does not \
         support; change this user's pg_hba.conf method to scram-sha-256 (recommended, with a \
         SCRAM password) and reload the server"
    )]
    UnsupportedMethod {
        /// The Authentication request code.
        code: i32,
        /// A human-readable name for the method.
        name: &'static str,
    },

    /// The server asked for a method `require_auth` does not allow.
    #[error(
        "the server asked for {method} authentication, which require_auth={require_auth:?} \
         does not allow; if this is the intended server, add {method} to require_auth (or \
         change this user's pg_hba.conf method), otherwise check the host and TLS settings"
    )]
    MethodNotAllowed {
        /// The method, as `require_auth` names it (`password`, `md5`, `scram-sha-256`,
        /// `none`).
        method: &'static str,
        /// The `require_auth` value in force.
        require_auth: String,
    },

    /// The server asked for a cleartext password over a connection that is not TLS, and
    /// `require_auth` does not allow it.
    #[error(
        "the server asked for the password in cleartext over a connection that is not TLS; \
         pgcdc refuses by default, since anyone on the path (or a man in the middle that \
         declined the TLS request) would read it — use ssl_mode=require or verify-full, \
         change this user's pg_hba.conf method to scram-sha-256, or set require_auth=password \
         to send it anyway"
    )]
    CleartextWithoutTls,

    /// The server offered SASL but no mechanism pgcdc implements.
    #[error(
        "the server offered SASL mechanisms {offered:?}, none of which pgcdc can use on this \
         connection (it supports SCRAM-SHA-256, and SCRAM-SHA-256-PLUS over TLS unless \
         channel_binding=disable); change this user's pg_hba.conf method to scram-sha-256"
    )]
    NoSupportedMechanism {
        /// The mechanism names the server offered.
        offered: Vec<String>,
    },

    /// `channel_binding=require` is set but channel binding cannot or did not happen.
    #[error("channel_binding=require cannot be satisfied: {reason}")]
    ChannelBindingRequired {
        /// Why, and what to change.
        reason: &'static str,
    },

    /// A tls-server-end-point hash cannot be computed for the server's certificate.
    #[error(
        "channel binding is impossible with this server certificate: {reason}; use an RSA or \
         ECDSA certificate signed with SHA-256/384/512, or set channel_binding=disable"
    )]
    ChannelBindingImpossible {
        /// What about the certificate prevents it.
        reason: String,
    },

    /// The server certificate is not a well-formed DER X.509 certificate.
    #[error(
        "the server certificate could not be parsed as DER X.509 ({reason}); check the \
         server's ssl_cert_file, or set channel_binding=disable"
    )]
    MalformedCertificate {
        /// What was wrong.
        reason: &'static str,
    },

    /// An authentication message arrived when it was not expected.
    #[error(
        "unexpected authentication message from the server: got {got} while {state}; the \
         server is misbehaving or is not PostgreSQL — check the host and port"
    )]
    UnexpectedMessage {
        /// The message received.
        got: &'static str,
        /// What the client was doing.
        state: &'static str,
    },

    /// The server reported success without completing the SASL exchange.
    #[error(
        "the server reported authentication success before sending a verifiable SCRAM \
         server-final-message; refusing, because the server never proved it knows the \
         password — check that you are connecting to the intended server"
    )]
    SaslIncomplete,

    /// A SCRAM message from the server was malformed.
    #[error(
        "malformed SCRAM {message} from the server: {detail}; the server is misbehaving — \
         check the host and port"
    )]
    MalformedScram {
        /// Which message (`server-first-message` or `server-final-message`).
        message: &'static str,
        /// What was wrong.
        detail: &'static str,
    },

    /// The server's nonce does not extend the client's.
    #[error(
        "the SCRAM nonce from the server does not start with the client's nonce or adds \
         nothing to it; possible man-in-the-middle — check the host and TLS settings"
    )]
    NonceMismatch,

    /// The iteration count is missing, zero or not a number.
    #[error(
        "the SCRAM iteration count from the server is invalid ({detail}); pgcdc accepts \
         1..={max}; the server is misbehaving — check the host and port"
    )]
    InvalidIterationCount {
        /// What was wrong.
        detail: &'static str,
        /// The largest accepted count.
        max: u32,
    },

    /// The server asked for more PBKDF2 iterations than pgcdc runs
    /// ([`MAX_SCRAM_ITERATIONS`](crate::auth::MAX_SCRAM_ITERATIONS)).
    #[error(
        "the server asked for {count} SCRAM iterations, above pgcdc's limit of {max} (the key \
         derivation would stall the client); if scram_iterations is really set that high on \
         the server, lower it and re-set the password, otherwise check the host and TLS settings"
    )]
    TooManyIterations {
        /// The server's count, as it sent it (leading zeros removed, long counts shortened).
        count: String,
        /// The largest accepted count.
        max: u32,
    },

    /// The server's signature does not verify.
    #[error(
        "the SCRAM server signature does not verify: the server does not know this user's \
         password, or the connection is being intercepted — check the host and TLS settings"
    )]
    ServerSignatureMismatch,

    /// The server ended the SCRAM exchange with an `e=` error.
    #[error(
        "the server rejected SCRAM authentication: {message}; check the user name and password"
    )]
    ServerRejected {
        /// The server's error text (sanitized and truncated).
        message: String,
    },

    /// The injected client nonce is not usable.
    #[error(
        "invalid SCRAM client nonce: it must be non-empty printable ASCII (0x21-0x7E) \
         without ','"
    )]
    InvalidNonce,

    /// A message could not be encoded (e.g. the password contains a NUL byte).
    #[error(transparent)]
    Encode(#[from] EncodeError),

    /// A previous call already failed; the exchange cannot continue.
    #[error("authentication already failed; open a new connection")]
    Failed,
}
