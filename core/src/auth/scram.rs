//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802/7677) as PostgreSQL implements them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

use super::error::AuthError;
use super::saslprep::saslprep;

/// The SASL mechanism name without channel binding.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// The SASL mechanism name with channel binding (tls-server-end-point).
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The largest iteration count accepted from a server.
///
/// The count comes from the server before it has proved anything, and the key derivation
/// (PBKDF2) runs on the caller's thread, which in the driver is an executor thread. PostgreSQL's
/// default is 4096 and operators who raise `scram_iterations` rarely go past a few hundred
/// thousand; one million takes about a second on a modern core, while ten million (the limit
/// this replaced) let a hostile server or a man in the middle stall the executor for ten
/// seconds or more per connection attempt. Above this the exchange fails with
/// [`AuthError::TooManyIterations`], naming the server's count.
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;
/// How many random bytes the client nonce is made of (as libpq: 24 base64 characters).
pub const SCRAM_NONCE_LEN: usize = 18;

/// Longest server `e=` text kept in an error.
const MAX_ERROR_TEXT: usize = 256;

/// The channel-binding choice, which decides the GS2 header and the mechanism.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramBinding {
    /// `n,,`: the client does not use channel binding (plaintext, or binding disabled).
    None,
    /// `y,,`: the client supports channel binding but the server did not offer
    /// SCRAM-SHA-256-PLUS. PostgreSQL rejects this over TLS, so only use it when the server
    /// really did not offer PLUS.
    ClientSupported,
    /// `p=tls-server-end-point,,` with the certificate hash (see
    /// [`tls_server_end_point`](super::tls_server_end_point)); selects SCRAM-SHA-256-PLUS.
    TlsServerEndPoint(Vec<u8>),
}

impl ScramBinding {
    fn gs2_header(&self) -> &'static str {
        match self {
            ScramBinding::None => "n,,",
            ScramBinding::ClientSupported => "y,,",
            ScramBinding::TlsServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    fn cbind_data(&self) -> &[u8] {
        match self {
            ScramBinding::TlsServerEndPoint(hash) => hash,
            ScramBinding::None | ScramBinding::ClientSupported => &[],
        }
    }
}

impl fmt::Debug for ScramBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramBinding::None => f.write_str("None"),
            ScramBinding::ClientSupported => f.write_str("ClientSupported"),
            ScramBinding::TlsServerEndPoint(hash) => {
                write!(f, "TlsServerEndPoint({} bytes)", hash.len())
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    /// client-first-message not yet answered by the server.
    AwaitingServerFirst,
    /// client-final-message produced; the server signature is expected.
    AwaitingServerFinal { server_signature: [u8; 32] },
    /// The server signature verified.
    Verified,
    /// An error happened; nothing more is accepted.
    Failed,
}

/// A SCRAM-SHA-256(-PLUS) client exchange: a small sans-IO state machine.
///
/// Randomness is injected: the caller supplies the nonce. The run loop is:
///
/// 1. send [`client_first_message`](Self::client_first_message) with the
///    [`mechanism`](Self::mechanism) in SASLInitialResponse;
/// 2. pass the server-first-message (SASLContinue) to
///    [`handle_server_first`](Self::handle_server_first) and send the client-final-message it
///    returns in SASLResponse;
/// 3. pass the server-final-message (SASLFinal) to
///    [`handle_server_final`](Self::handle_server_final); only after it returns `Ok` is the
///    server authenticated ([`is_verified`](Self::is_verified)).
///
/// ```
/// use pgcdc_core::auth::{ScramBinding, ScramClient};
///
/// let mut scram = ScramClient::new(b"pencil", ScramBinding::None, &[7; 18]);
/// assert_eq!(scram.mechanism(), "SCRAM-SHA-256");
/// let first = scram.client_first_message();
/// assert!(first.starts_with(b"n,,n=,r="));
/// // A server-first-message that does not extend our nonce is refused.
/// assert!(scram.handle_server_first(b"r=other,s=AAAA,i=4096").is_err());
/// ```
pub struct ScramClient {
    /// The SASLprep'ed password (or the raw bytes, PostgreSQL's fallback).
    password: Vec<u8>,
    binding: ScramBinding,
    nonce: String,
    /// `n=<user>,r=<nonce>`.
    client_first_bare: String,
    step: Step,
}

impl ScramClient {
    /// Starts an exchange with a nonce made of `nonce_random` (18 random bytes, base64-encoded
    /// to 24 characters as libpq does).
    pub fn new(
        password: &[u8],
        binding: ScramBinding,
        nonce_random: &[u8; SCRAM_NONCE_LEN],
    ) -> Self {
        Self::build(password, binding, BASE64.encode(nonce_random))
    }

    /// Starts an exchange with an already printable nonce (for recorded test vectors).
    ///
    /// The nonce must be non-empty printable ASCII (0x21–0x7E) without `,`.
    pub fn with_printable_nonce(
        password: &[u8],
        binding: ScramBinding,
        nonce: &str,
    ) -> Result<Self, AuthError> {
        if !valid_nonce(nonce.as_bytes()) {
            return Err(AuthError::InvalidNonce);
        }
        Ok(Self::build(password, binding, nonce.to_owned()))
    }

    fn build(password: &[u8], binding: ScramBinding, nonce: String) -> Self {
        let client_first_bare = format!("n=,r={nonce}");
        ScramClient {
            password: saslprep(password).into_owned(),
            binding,
            nonce,
            client_first_bare,
            step: Step::AwaitingServerFirst,
        }
    }

    /// Puts `username` in the client-first-message (`n=<username>`) instead of the empty name
    /// libpq sends. PostgreSQL ignores it (the startup `user` counts); this exists for test
    /// vectors such as RFC 7677's and for non-PostgreSQL servers. `=` and `,` are escaped as
    /// RFC 5802 requires. It has no effect once the server-first-message has been handled.
    pub fn with_username(mut self, username: &str) -> Self {
        if self.step == Step::AwaitingServerFirst {
            let escaped = username.replace('=', "=3D").replace(',', "=2C");
            self.client_first_bare = format!("n={escaped},r={}", self.nonce);
        }
        self
    }

    /// The SASL mechanism this exchange uses: `SCRAM-SHA-256-PLUS` with channel binding,
    /// `SCRAM-SHA-256` otherwise.
    pub fn mechanism(&self) -> &'static str {
        match self.binding {
            ScramBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            ScramBinding::None | ScramBinding::ClientSupported => SCRAM_SHA_256,
        }
    }

    /// The client nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The client-first-message: GS2 header followed by `n=,r=<nonce>`.
    pub fn client_first_message(&self) -> Vec<u8> {
        let mut msg = String::with_capacity(32 + self.client_first_bare.len());
        msg.push_str(self.binding.gs2_header());
        msg.push_str(&self.client_first_bare);
        msg.into_bytes()
    }

    /// Whether the server's signature has been verified.
    pub fn is_verified(&self) -> bool {
        self.step == Step::Verified
    }

    /// Handles the server-first-message and returns the client-final-message to send.
    pub fn handle_server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        if self.step != Step::AwaitingServerFirst {
            let state = self.state_name();
            self.step = Step::Failed;
            return Err(AuthError::UnexpectedMessage {
                got: "a SCRAM server-first-message",
                state,
            });
        }
        match self.server_first(message) {
            Ok((client_final, server_signature)) => {
                self.step = Step::AwaitingServerFinal { server_signature };
                Ok(client_final)
            }
            Err(e) => {
                self.step = Step::Failed;
                Err(e)
            }
        }
    }

    /// Handles the server-final-message: checks the server signature in constant time, or
    /// reports the server's `e=` error.
    pub fn handle_server_final(&mut self, message: &[u8]) -> Result<(), AuthError> {
        let Step::AwaitingServerFinal { server_signature } = self.step else {
            let state = self.state_name();
            self.step = Step::Failed;
            return Err(AuthError::UnexpectedMessage {
                got: "a SCRAM server-final-message",
                state,
            });
        };
        self.step = Step::Failed;
        let verifier = parse_server_final(message)?;
        if constant_time_eq(&verifier, &server_signature) {
            self.step = Step::Verified;
            Ok(())
        } else {
            Err(AuthError::ServerSignatureMismatch)
        }
    }

    fn state_name(&self) -> &'static str {
        match self.step {
            Step::AwaitingServerFirst => "waiting for the SCRAM server-first-message",
            Step::AwaitingServerFinal { .. } => "waiting for the SCRAM server-final-message",
            Step::Verified => "the SCRAM exchange was already complete",
            Step::Failed => "the SCRAM exchange had already failed",
        }
    }

    /// Parses the server-first-message, returns the client-final-message and the expected
    /// server signature.
    fn server_first(&self, message: &[u8]) -> Result<(Vec<u8>, [u8; 32]), AuthError> {
        let first = parse_server_first(message)?;
        let nonce_ok = first
            .nonce
            .strip_prefix(self.nonce.as_bytes())
            .is_some_and(|server_part| !server_part.is_empty());
        if !nonce_ok {
            return Err(AuthError::NonceMismatch);
        }

        let mut salted_password = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            &self.password,
            &first.salt,
            first.iterations,
            &mut salted_password,
        );
        let client_key = hmac_sha256(&salted_password, &[b"Client Key"]);
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac_sha256(&salted_password, &[b"Server Key"]);

        let mut channel_binding = self.binding.gs2_header().as_bytes().to_vec();
        channel_binding.extend_from_slice(self.binding.cbind_data());
        let mut without_proof = Vec::with_capacity(message.len() + 64);
        without_proof.extend_from_slice(b"c=");
        without_proof.extend_from_slice(BASE64.encode(&channel_binding).as_bytes());
        without_proof.extend_from_slice(b",r=");
        without_proof.extend_from_slice(first.nonce);

        let auth_message: [&[u8]; 5] = [
            self.client_first_bare.as_bytes(),
            b",",
            message,
            b",",
            &without_proof,
        ];
        let client_signature = hmac_sha256(&stored_key, &auth_message);
        let server_signature = hmac_sha256(&server_key, &auth_message);

        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature.iter()) {
            *p ^= s;
        }
        let mut client_final = without_proof;
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(BASE64.encode(proof).as_bytes());
        Ok((client_final, server_signature))
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism())
            .field("binding", &self.binding)
            .field("nonce", &self.nonce)
            .field("step", &self.state_name())
            .finish_non_exhaustive()
    }
}

impl Drop for ScramClient {
    fn drop(&mut self) {
        // Best effort: do not leave the password lying around in freed memory.
        self.password.iter_mut().for_each(|b| *b = 0);
    }
}

/// The parts of a server-first-message.
struct ServerFirst<'a> {
    nonce: &'a [u8],
    salt: Vec<u8>,
    iterations: u32,
}

const FIRST: &str = "server-first-message";
const FINAL: &str = "server-final-message";

fn malformed(message: &'static str, detail: &'static str) -> AuthError {
    AuthError::MalformedScram { message, detail }
}

/// Splits `attr=value` off the front of `rest` if `attr` matches, returning the value and what
/// follows the next comma (`None` at the end of input).
fn attribute<'a>(
    rest: &'a [u8],
    attr: u8,
    message: &'static str,
    missing: &'static str,
) -> Result<(&'a [u8], Option<&'a [u8]>), AuthError> {
    let value = match rest {
        [a, b'=', value @ ..] if *a == attr => value,
        _ => return Err(malformed(message, missing)),
    };
    Ok(match value.iter().position(|&c| c == b',') {
        Some(comma) => {
            let (value, tail) = value.split_at(comma);
            (value, tail.get(1..))
        }
        None => (value, None),
    })
}

fn parse_server_first(message: &[u8]) -> Result<ServerFirst<'_>, AuthError> {
    if message.starts_with(b"m=") {
        return Err(malformed(
            FIRST,
            "it requires a mandatory extension (m=) pgcdc does not support",
        ));
    }
    let (nonce, rest) = attribute(message, b'r', FIRST, "missing nonce (r=)")?;
    if !valid_nonce(nonce) {
        return Err(malformed(
            FIRST,
            "the nonce is empty or not printable ASCII",
        ));
    }
    let rest = rest.ok_or_else(|| malformed(FIRST, "missing salt (s=)"))?;
    let (salt_b64, rest) = attribute(rest, b's', FIRST, "missing salt (s=)")?;
    let salt = BASE64
        .decode(salt_b64)
        .map_err(|_| malformed(FIRST, "the salt is not valid base64"))?;
    if salt.is_empty() {
        return Err(malformed(FIRST, "the salt is empty"));
    }
    let rest = rest.ok_or_else(|| malformed(FIRST, "missing iteration count (i=)"))?;
    let (iterations, rest) = attribute(rest, b'i', FIRST, "missing iteration count (i=)")?;
    if rest.is_some() {
        return Err(malformed(
            FIRST,
            "unexpected data after the iteration count",
        ));
    }
    Ok(ServerFirst {
        nonce,
        salt,
        iterations: parse_iterations(iterations)?,
    })
}

/// The error for a count above [`MAX_SCRAM_ITERATIONS`]; `digits` are ASCII digits.
fn too_many(digits: &[u8]) -> AuthError {
    const SHOWN: usize = 24;
    let significant = digits
        .iter()
        .position(|&d| d != b'0')
        .and_then(|start| digits.get(start..))
        .unwrap_or(digits);
    let mut count: String = significant
        .iter()
        .take(SHOWN)
        .map(|&d| char::from(d))
        .collect();
    if significant.len() > SHOWN {
        count.push_str("...");
    }
    AuthError::TooManyIterations {
        count,
        max: MAX_SCRAM_ITERATIONS,
    }
}

fn parse_iterations(digits: &[u8]) -> Result<u32, AuthError> {
    let invalid = |detail| AuthError::InvalidIterationCount {
        detail,
        max: MAX_SCRAM_ITERATIONS,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid("not a decimal number"));
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value * 10 + u64::from(d - b'0');
        if value > u64::from(MAX_SCRAM_ITERATIONS) {
            return Err(too_many(digits));
        }
    }
    match u32::try_from(value) {
        Ok(0) => Err(invalid("zero")),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid("too large")),
    }
}

fn parse_server_final(message: &[u8]) -> Result<Vec<u8>, AuthError> {
    if let Some(text) = message.strip_prefix(b"e=") {
        return Err(AuthError::ServerRejected {
            message: sanitize(text),
        });
    }
    let (verifier, rest) = attribute(message, b'v', FINAL, "missing verifier (v=)")?;
    if rest.is_some() {
        return Err(malformed(FINAL, "unexpected data after the verifier"));
    }
    let verifier = BASE64
        .decode(verifier)
        .map_err(|_| malformed(FINAL, "the verifier is not valid base64"))?;
    if verifier.len() != 32 {
        return Err(malformed(FINAL, "the verifier is not 32 bytes long"));
    }
    Ok(verifier)
}

/// Server text made safe to print: lossy UTF-8, control characters escaped, bounded length.
fn sanitize(text: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(text);
    let mut out = String::new();
    for c in lossy.chars().take(MAX_ERROR_TEXT) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if lossy.chars().nth(MAX_ERROR_TEXT).is_some() {
        out.push('…');
    }
    out
}

/// RFC 5802 `printable`: 0x21–0x7E except `,`.
fn valid_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&c| (0x21..=0x7e).contains(&c) && c != b',')
}

/// HMAC-SHA-256 with a 32-byte key over the concatenation of `parts`.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the 64-byte block, so padding here gives the same MAC
    // and lets us use the infallible fixed-size constructor.
    let mut block = [0u8; 64];
    for (b, k) in block.iter_mut().zip(key.iter()) {
        *b = *k;
    }
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> ScramClient {
        ScramClient::with_printable_nonce(b"pencil", ScramBinding::None, RFC_CLIENT_NONCE)
            .unwrap()
            .with_username("user")
    }

    #[test]
    fn rfc7677_vector() {
        let mut c = rfc_client();
        assert_eq!(c.mechanism(), SCRAM_SHA_256);
        assert_eq!(
            c.client_first_message(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let client_final = c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
        assert!(!c.is_verified());
        c.handle_server_final(RFC_SERVER_FINAL.as_bytes()).unwrap();
        assert!(c.is_verified());
    }

    #[test]
    fn rfc7677_intermediate_keys() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"pencil", &salt, 4096, &mut salted);
        assert_eq!(
            hex(&salted),
            "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"
        );
        let client_key = hmac_sha256(&salted, &[b"Client Key"]);
        assert_eq!(
            hex(&client_key),
            "a60fc923d67e8644a92d16b96eda5ef4656b0c725c484374be25535576996e8b"
        );
        assert_eq!(
            hex(&Sha256::digest(client_key)),
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert_eq!(
            hex(&hmac_sha256(&salted, &[b"Server Key"])),
            "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5"
        );
    }

    #[test]
    fn hmac_matches_reference_for_32_byte_keys() {
        let key = [0x0bu8; 32];
        let mut reference = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        reference.update(b"Hi There");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"Hi ", b"There"]), expected);
    }

    #[test]
    fn default_nonce_is_24_base64_chars_and_empty_user() {
        let c = ScramClient::new(b"pw", ScramBinding::None, &[0xAB; 18]);
        assert_eq!(c.nonce().len(), 24);
        let first = String::from_utf8(c.client_first_message()).unwrap();
        assert_eq!(first, format!("n,,n=,r={}", c.nonce()));
    }

    #[test]
    fn gs2_headers_and_mechanisms() {
        let y = ScramClient::new(b"pw", ScramBinding::ClientSupported, &[1; 18]);
        assert!(y.client_first_message().starts_with(b"y,,n=,r="));
        assert_eq!(y.mechanism(), SCRAM_SHA_256);
        let p = ScramClient::new(
            b"pw",
            ScramBinding::TlsServerEndPoint(vec![1, 2, 3]),
            &[1; 18],
        );
        assert!(
            p.client_first_message()
                .starts_with(b"p=tls-server-end-point,,n=,r=")
        );
        assert_eq!(p.mechanism(), SCRAM_SHA_256_PLUS);
    }

    #[test]
    fn username_is_escaped() {
        let c = ScramClient::with_printable_nonce(b"pw", ScramBinding::None, "abc")
            .unwrap()
            .with_username("a=b,c");
        assert_eq!(c.client_first_message(), b"n,,n=a=3Db=2Cc,r=abc");
    }

    #[test]
    fn invalid_printable_nonce() {
        for bad in ["", "a,b", "a b", "é"] {
            assert_eq!(
                ScramClient::with_printable_nonce(b"pw", ScramBinding::None, bad).unwrap_err(),
                AuthError::InvalidNonce
            );
        }
    }

    #[test]
    fn wrong_server_signature() {
        let mut c = rfc_client();
        c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c
            .handle_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .unwrap_err();
        assert_eq!(err, AuthError::ServerSignatureMismatch);
        assert!(!c.is_verified());
        // No retry after a failure.
        assert!(matches!(
            c.handle_server_final(RFC_SERVER_FINAL.as_bytes()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
    }

    #[test]
    fn wrong_password_gives_different_proof_and_signature() {
        let mut c =
            ScramClient::with_printable_nonce(b"pencil2", ScramBinding::None, RFC_CLIENT_NONCE)
                .unwrap()
                .with_username("user");
        let client_final = c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_ne!(client_final, RFC_CLIENT_FINAL.as_bytes());
        assert_eq!(
            c.handle_server_final(RFC_SERVER_FINAL.as_bytes()),
            Err(AuthError::ServerSignatureMismatch)
        );
    }

    #[test]
    fn nonce_mismatch() {
        for server_first in [
            "r=XOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // Not longer than the client nonce.
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // A prefix of the client nonce.
            "r=rOprNG,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            let mut c = rfc_client();
            assert_eq!(
                c.handle_server_first(server_first.as_bytes()),
                Err(AuthError::NonceMismatch),
                "{server_first}"
            );
        }
    }

    #[test]
    fn malformed_server_first() {
        let cases: &[&str] = &[
            "",
            "r=rOprNGfwEbeRWgbNEkqOxyz",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=not base64!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1",
            "r=rOprNGfwEbeRWgbNEkqO\u{1}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ];
        for case in cases {
            let mut c = rfc_client();
            assert!(
                matches!(
                    c.handle_server_first(case.as_bytes()),
                    Err(AuthError::MalformedScram { .. })
                ),
                "{case:?}"
            );
        }
    }

    #[test]
    fn iteration_counts() {
        let base = "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=";
        for bad in ["0", "", "-1", "+5", "4096 ", "0x10", "1000001", "10000000"] {
            let mut c = rfc_client();
            assert!(
                matches!(
                    c.handle_server_first(format!("{base}{bad}").as_bytes()),
                    Err(AuthError::InvalidIterationCount { .. }
                        | AuthError::TooManyIterations { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(parse_iterations(b"1"), Ok(1));
        assert_eq!(parse_iterations(b"0004096"), Ok(4096));
        assert_eq!(parse_iterations(b"1000000"), Ok(MAX_SCRAM_ITERATIONS));
        for big in ["1000001", "00099999999999999999999999999"] {
            assert!(
                matches!(
                    parse_iterations(big.as_bytes()),
                    Err(AuthError::TooManyIterations { .. })
                ),
                "{big}"
            );
        }
    }

    #[test]
    fn iteration_count_above_the_cap_is_refused_naming_the_count() {
        let mut c = rfc_client();
        let err = c
            .handle_server_first(b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000000")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("10000000"), "{text}");
        assert!(text.contains("1000000 "), "{text}");
        let mut c = rfc_client();
        assert!(
            c.handle_server_first(
                b"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000000"
            )
            .is_ok()
        );
    }

    #[test]
    fn server_final_errors() {
        let mut c = rfc_client();
        c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.handle_server_final(b"e=invalid-proof\n").unwrap_err();
        assert_eq!(
            err,
            AuthError::ServerRejected {
                message: "invalid-proof\\n".into()
            }
        );
        assert!(err.to_string().contains("invalid-proof"));

        for bad in [
            &b""[..],
            b"x=1",
            b"v=",
            b"v=!!!",
            b"v=AAAA",
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=1",
        ] {
            let mut c = rfc_client();
            c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
            assert!(
                matches!(
                    c.handle_server_final(bad),
                    Err(AuthError::MalformedScram { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn out_of_order() {
        let mut c = rfc_client();
        assert!(matches!(
            c.handle_server_final(RFC_SERVER_FINAL.as_bytes()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
        let mut c = rfc_client();
        c.handle_server_first(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert!(matches!(
            c.handle_server_first(RFC_SERVER_FIRST.as_bytes()),
            Err(AuthError::UnexpectedMessage { .. })
        ));
    }

    #[test]
    fn long_error_text_is_truncated() {
        let text = "x".repeat(10_000);
        let s = sanitize(text.as_bytes());
        assert!(s.chars().count() <= MAX_ERROR_TEXT + 1);
    }

    #[test]
    fn debug_hides_password() {
        let c = ScramClient::new(
            b"hunter2",
            ScramBinding::TlsServerEndPoint(vec![9; 32]),
            &[0; 18],
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("32 bytes"), "{dbg}");
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn garbage_server_first_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut c = rfc_client();
            let _ = c.handle_server_first(&bytes);
        }

        #[test]
        fn structured_garbage_never_panics(
            nonce in "[ -~]{0,40}",
            salt in "[A-Za-z0-9+/=,]{0,30}",
            // Small valid counts, junk, or counts far over the limit (never a slow valid one).
            iters in "(|0|[1-9][0-9]{0,2}|[a-z+-]{1,4}|[1-9][0-9]{8,14})",
        ) {
            let mut c = rfc_client();
            let msg = format!("r={RFC_CLIENT_NONCE}{nonce},s={salt},i={iters}");
            let _ = c.handle_server_first(msg.as_bytes());
        }

        #[test]
        fn garbage_server_final_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let mut c = rfc_client();
            let first = format!("r={RFC_CLIENT_NONCE}xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1");
            c.handle_server_first(first.as_bytes()).unwrap();
            prop_assert!(c.handle_server_final(&bytes).is_err());
        }
    }
}
