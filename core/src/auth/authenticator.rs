//! The authentication sub-machine driven by the startup state machine.

use bytes::BytesMut;

use super::channel_binding::tls_server_end_point;
use super::error::AuthError;
use super::require::{AuthMethod, RequireAuth};
use super::scram::{SCRAM_NONCE_LEN, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramBinding, ScramClient};
use crate::config::{ChannelBinding, Password};
use crate::wire::Authentication;
use crate::wire::frontend;

/// What the connection's transport offers for channel binding.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsInfo {
    /// The connection is not encrypted.
    Plaintext,
    /// The connection is TLS.
    Tls {
        /// The `tls-server-end-point` hash of the server certificate, or `None` when it cannot
        /// be computed (for example an Ed25519 certificate).
        server_end_point: Option<Vec<u8>>,
    },
}

impl TlsInfo {
    /// TLS with the end-point hash computed from the server's DER leaf certificate; a
    /// certificate that gives no hash yields `server_end_point: None`.
    pub fn from_server_certificate(cert_der: &[u8]) -> Self {
        TlsInfo::Tls {
            server_end_point: tls_server_end_point(cert_der).ok(),
        }
    }

    fn end_point(&self) -> Option<&[u8]> {
        match self {
            TlsInfo::Tls {
                server_end_point: Some(hash),
            } => Some(hash),
            TlsInfo::Tls {
                server_end_point: None,
            }
            | TlsInfo::Plaintext => None,
        }
    }
}

/// The outcome of [`Authenticator::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthStatus {
    /// More Authentication messages are expected; send whatever was appended to `out`.
    InProgress,
    /// AuthenticationOk arrived and every check passed.
    Done,
}

#[derive(Debug)]
enum State {
    /// Nothing received yet.
    Start,
    /// The cleartext password was sent.
    CleartextSent,
    /// A SCRAM exchange is under way (or verified, waiting for AuthenticationOk).
    Scram(Box<ScramClient>),
    /// AuthenticationOk was accepted.
    Done,
    /// An error was returned.
    Failed,
}

/// The authentication exchange, as a sans-IO sub-machine of startup.
///
/// Feed it every Authentication (`R`) message with [`handle`](Self::handle) and send whatever
/// it appends to the output buffer. It speaks cleartext and SCRAM-SHA-256(-PLUS), refuses MD5
/// and the other methods, enforces `channel_binding` and `require_auth`
/// ([`require_auth`](Self::require_auth)), refuses to send a cleartext password over a
/// connection that is not TLS unless `require_auth` allows it, and never reports success
/// before the server has proved it knows the password (when SCRAM is used).
///
/// ```
/// use bytes::BytesMut;
/// use pgcdc_core::auth::{AuthStatus, Authenticator, TlsInfo};
/// use pgcdc_core::wire::Authentication;
/// use pgcdc_core::{ChannelBinding, Password};
///
/// let nonce = [0u8; 18]; // the driver supplies random bytes
/// let mut auth = Authenticator::new(
///     Some(Password::from("secret")),
///     ChannelBinding::Prefer,
///     TlsInfo::Plaintext,
///     nonce,
/// );
/// let mut out = BytesMut::new();
/// let offer = Authentication::Sasl { mechanisms: vec!["SCRAM-SHA-256".into()] };
/// assert_eq!(auth.handle(&offer, &mut out).unwrap(), AuthStatus::InProgress);
/// assert_eq!(out.first(), Some(&b'p')); // SASLInitialResponse, ready to send
/// // ... then SASLContinue, SASLFinal and AuthenticationOk, each through `handle`.
/// ```
#[derive(Debug)]
pub struct Authenticator {
    password: Option<Password>,
    channel_binding: ChannelBinding,
    tls: TlsInfo,
    nonce: [u8; SCRAM_NONCE_LEN],
    require_auth: RequireAuth,
    state: State,
    used_channel_binding: bool,
}

impl Authenticator {
    /// Creates the sub-machine.
    ///
    /// `nonce` is 18 random bytes from the driver; it becomes the SCRAM client nonce.
    pub fn new(
        password: Option<Password>,
        channel_binding: ChannelBinding,
        tls: TlsInfo,
        nonce: [u8; SCRAM_NONCE_LEN],
    ) -> Self {
        Authenticator {
            password,
            channel_binding,
            tls,
            nonce,
            require_auth: RequireAuth::unset(),
            state: State::Start,
            used_channel_binding: false,
        }
    }

    /// Sets which methods the server may ask for (libpq's `require_auth`; see
    /// [`RequireAuth`] for the default, which refuses a cleartext password without TLS).
    pub fn require_auth(mut self, require_auth: RequireAuth) -> Self {
        self.require_auth = require_auth;
        self
    }

    /// Whether AuthenticationOk has been accepted.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether SCRAM-SHA-256-PLUS (channel binding) was chosen.
    pub fn used_channel_binding(&self) -> bool {
        self.used_channel_binding
    }

    /// Handles one Authentication message, appending any reply to `out`.
    ///
    /// After an error the exchange is over: later calls return [`AuthError::Failed`].
    pub fn handle(
        &mut self,
        message: &Authentication,
        out: &mut BytesMut,
    ) -> Result<AuthStatus, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, status) = self.step(state, message, out)?;
        self.state = next;
        Ok(status)
    }

    fn step(
        &mut self,
        state: State,
        message: &Authentication,
        out: &mut BytesMut,
    ) -> Result<(State, AuthStatus), AuthError> {
        use AuthStatus::{Done, InProgress};
        if matches!(state, State::Failed) {
            return Err(AuthError::Failed);
        }
        if let Some(method) = requested_method(message, &state) {
            if !self.require_auth.allows(method) {
                return Err(AuthError::MethodNotAllowed {
                    method: method.as_str(),
                    require_auth: self.require_auth.to_string(),
                });
            }
        }
        match message {
            Authentication::Md5Password { .. } => Err(AuthError::Md5Refused),
            Authentication::Other(code) => Err(AuthError::UnsupportedMethod {
                code: *code,
                name: method_name(*code),
            }),
            Authentication::Ok => match state {
                State::Start if self.channel_binding == ChannelBinding::Require => {
                    Err(AuthError::ChannelBindingRequired {
                        reason: "the server authenticated without SASL (pg_hba.conf method \
                                 trust, peer or similar), so no channel binding took place; \
                                 change the method to scram-sha-256, or set \
                                 channel_binding=prefer",
                    })
                }
                State::Start | State::CleartextSent => Ok((State::Done, Done)),
                State::Scram(client) if client.is_verified() => Ok((State::Done, Done)),
                State::Scram(_) => Err(AuthError::SaslIncomplete),
                other => Err(unexpected("AuthenticationOk", &other)),
            },
            Authentication::CleartextPassword => {
                if !matches!(state, State::Start) {
                    return Err(unexpected("AuthenticationCleartextPassword", &state));
                }
                if self.channel_binding == ChannelBinding::Require {
                    return Err(AuthError::ChannelBindingRequired {
                        reason: "the server asked for a cleartext password (pg_hba.conf method \
                                 password), which has no channel binding; change the method to \
                                 scram-sha-256, or set channel_binding=prefer",
                    });
                }
                if matches!(self.tls, TlsInfo::Plaintext)
                    && !self.require_auth.allows_cleartext_without_tls()
                {
                    return Err(AuthError::CleartextWithoutTls);
                }
                let password = self.password.as_ref().ok_or(AuthError::NoPassword {
                    method: "cleartext password",
                })?;
                frontend::password(password.expose(), out)?;
                Ok((State::CleartextSent, InProgress))
            }
            Authentication::Sasl { mechanisms } => {
                if !matches!(state, State::Start) {
                    return Err(unexpected("AuthenticationSASL", &state));
                }
                let binding = self.choose_binding(mechanisms)?;
                let password = self.password.as_ref().ok_or(AuthError::NoPassword {
                    method: match binding {
                        ScramBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
                        _ => SCRAM_SHA_256,
                    },
                })?;
                let client = ScramClient::new(password.expose(), binding, &self.nonce);
                frontend::sasl_initial_response(
                    client.mechanism(),
                    &client.client_first_message(),
                    out,
                )?;
                self.used_channel_binding = client.mechanism() == SCRAM_SHA_256_PLUS;
                Ok((State::Scram(Box::new(client)), InProgress))
            }
            Authentication::SaslContinue(data) => match state {
                State::Scram(mut client) => {
                    let client_final = client.handle_server_first(data)?;
                    frontend::sasl_response(&client_final, out);
                    Ok((State::Scram(client), InProgress))
                }
                other => Err(unexpected("AuthenticationSASLContinue", &other)),
            },
            Authentication::SaslFinal(data) => match state {
                State::Scram(mut client) => {
                    client.handle_server_final(data)?;
                    Ok((State::Scram(client), InProgress))
                }
                other => Err(unexpected("AuthenticationSASLFinal", &other)),
            },
        }
    }

    /// Picks the SCRAM variant from the server's offer and the channel-binding setting.
    fn choose_binding(&self, mechanisms: &[String]) -> Result<ScramBinding, AuthError> {
        let offers_plus = mechanisms.iter().any(|m| m == SCRAM_SHA_256_PLUS);
        let offers_plain = mechanisms.iter().any(|m| m == SCRAM_SHA_256);
        if !offers_plus && !offers_plain {
            return Err(AuthError::NoSupportedMechanism {
                offered: mechanisms.to_vec(),
            });
        }
        let end_point = self.tls.end_point();
        if let (true, Some(hash), false) = (
            offers_plus,
            end_point,
            self.channel_binding == ChannelBinding::Disable,
        ) {
            return Ok(ScramBinding::TlsServerEndPoint(hash.to_vec()));
        }
        if self.channel_binding == ChannelBinding::Require {
            return Err(AuthError::ChannelBindingRequired {
                reason: match (&self.tls, offers_plus) {
                    (TlsInfo::Plaintext, _) => {
                        "the connection is not TLS; channel binding needs TLS and a server \
                         offering SCRAM-SHA-256-PLUS — set sslmode=require or verify-full"
                    }
                    (TlsInfo::Tls { .. }, true) => {
                        "no tls-server-end-point hash could be computed from the server \
                         certificate (its signature algorithm, e.g. Ed25519, has no digest); \
                         use an RSA or ECDSA server certificate, or set channel_binding=prefer"
                    }
                    (TlsInfo::Tls { .. }, false) => {
                        "the server did not offer SCRAM-SHA-256-PLUS; channel binding needs \
                         TLS and a server offering SCRAM-SHA-256-PLUS (PostgreSQL 11+ built \
                         with OpenSSL, pg_hba.conf method scram-sha-256 and a SCRAM password)"
                    }
                },
            });
        }
        if offers_plain {
            // As libpq: `y,,` ("I support channel binding but you did not offer it") only
            // when we could have bound (TLS with an end-point hash, binding not disabled) and
            // PLUS was not offered. PostgreSQL offers PLUS on every TLS connection and rejects
            // `y` there, so this only fails if someone stripped PLUS from the offer. In every
            // other case (plaintext, binding disabled, no usable hash) send `n,,`.
            let could_bind = end_point.is_some() && self.channel_binding != ChannelBinding::Disable;
            return Ok(if could_bind && !offers_plus {
                ScramBinding::ClientSupported
            } else {
                ScramBinding::None
            });
        }
        Err(AuthError::NoSupportedMechanism {
            offered: mechanisms.to_vec(),
        })
    }
}

/// The `require_auth` method a message asks for: `none` for AuthenticationOk before any request.
fn requested_method(message: &Authentication, state: &State) -> Option<AuthMethod> {
    match message {
        Authentication::CleartextPassword => Some(AuthMethod::Password),
        Authentication::Md5Password { .. } => Some(AuthMethod::Md5),
        Authentication::Sasl { .. } => Some(AuthMethod::ScramSha256),
        Authentication::Ok if matches!(state, State::Start) => Some(AuthMethod::None),
        _ => None,
    }
}

fn unexpected(got: &'static str, state: &State) -> AuthError {
    AuthError::UnexpectedMessage {
        got,
        state: match state {
            State::Start => "waiting for the first authentication request",
            State::CleartextSent => "waiting for the result of the cleartext password",
            State::Scram(_) => "in a SCRAM exchange",
            State::Done => "authentication was already complete",
            State::Failed => "authentication had already failed",
        },
    }
}

/// The name of an authentication request code pgcdc does not implement.
fn method_name(code: i32) -> &'static str {
    match code {
        2 => "Kerberos V5",
        6 => "SCM credential",
        7 => "GSSAPI",
        8 => "GSSAPI (continue)",
        9 => "SSPI",
        _ => "an unknown",
    }
}
