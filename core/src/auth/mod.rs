//! Authentication: SCRAM-SHA-256(-PLUS), SASLprep, channel binding and cleartext.
//!
//! * [`Authenticator`] is the sub-machine the startup state machine drives: it takes each
//!   Authentication (`R`) message and appends the reply to a caller-owned buffer.
//! * [`ScramClient`] is the SCRAM-SHA-256 / SCRAM-SHA-256-PLUS exchange on its own, with an
//!   injected nonce.
//! * [`saslprep`] is PostgreSQL's SASLprep with its raw-bytes fallback.
//! * [`tls_server_end_point`] computes channel-binding data from the server certificate.
//!
//! * [`RequireAuth`] is libpq's `require_auth`: which methods the server may ask for.
//!
//! MD5 is refused, as are Kerberos, GSSAPI, SSPI and SCM; every [`AuthError`] says what to
//! change. Nothing here does I/O or draws random numbers.

mod authenticator;
mod channel_binding;
mod error;
mod require;
mod saslprep;
mod scram;

pub use authenticator::{AuthStatus, Authenticator, TlsInfo};
pub use channel_binding::tls_server_end_point;
pub use error::AuthError;
pub use require::{AuthMethod, ParseRequireAuthError, RequireAuth};
pub use saslprep::saslprep;
pub use scram::{
    MAX_SCRAM_ITERATIONS, SCRAM_NONCE_LEN, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramBinding,
    ScramClient,
};
