//! Connection settings shared by every state machine.

use std::fmt;
use std::str::FromStr;

/// Whether and how TLS is used, with libpq's meanings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, plaintext otherwise (the certificate is checked only
    /// when a root-certificate file is given, as in libpq).
    #[default]
    Prefer,
    /// Always use TLS; fail when the server does not offer it. The certificate is not checked,
    /// unless a root-certificate file is given: then its chain is, as with `VerifyCa` (libpq).
    Require,
    /// Always use TLS and check that the certificate chains to a root of the configured root
    /// file (needed: there is no default set of roots, as in libpq).
    VerifyCa,
    /// Always use TLS, check the chain and that the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Whether an SSLRequest is sent at all.
    pub fn attempts_tls(self) -> bool {
        self != SslMode::Disable
    }

    /// Whether a server that refuses TLS must be refused in turn.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    /// The libpq spelling (`disable`, `prefer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown `sslmode` or `channel_binding` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: expected one of {expected}")]
pub struct ParseModeError {
    field: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for SslMode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" | "verifyca" => SslMode::VerifyCa,
            "verify-full" | "verifyfull" => SslMode::VerifyFull,
            _ => {
                return Err(ParseModeError {
                    field: "sslmode",
                    value: s.to_owned(),
                    expected: "disable, prefer, require, verify-ca, verify-full",
                });
            }
        })
    }
}

/// Whether SCRAM channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelBinding {
    /// Never use channel binding.
    Disable,
    /// Use it when the connection is TLS and the server offers SCRAM-SHA-256-PLUS.
    #[default]
    Prefer,
    /// Insist on it: refuse plaintext connections, servers that do not offer
    /// SCRAM-SHA-256-PLUS, and servers that authenticate without SASL.
    Require,
}

impl ChannelBinding {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

impl fmt::Display for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelBinding {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            _ => {
                return Err(ParseModeError {
                    field: "channel_binding",
                    value: s.to_owned(),
                    expected: "disable, prefer, require",
                });
            }
        })
    }
}

/// A password. Its `Debug` and `Display` never show the secret.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps raw password bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Password(bytes.into())
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.as_bytes().to_vec())
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s.into_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// Serde: modes as their libpq spellings (`"prefer"`, `"verify-full"`, …; parsing accepts what
// `FromStr` accepts, so drasi-source-postgres's lower-case `disable`/`prefer`/`require` read unchanged), the
// password as a plain string (configuration files carry it; `Debug`/`Display` still redact it).

impl serde::Serialize for SslMode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SslMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ChannelBinding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ChannelBinding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serialized as a plain string, so a configuration round-trips; a password that is not valid
/// UTF-8 cannot be serialized (the error does not show it).
impl serde::Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(s) => serializer.serialize_str(s),
            Err(_) => Err(serde::ser::Error::custom(
                "the password is not valid UTF-8 and cannot be serialized as a string",
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        let p = Password::from("hunter2");
        assert!(!format!("{p:?} {p}").contains("hunter2"));
    }

    #[test]
    fn modes_parse() {
        assert_eq!(
            "verify-full".parse::<SslMode>().unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!("Require".parse::<SslMode>().unwrap(), SslMode::Require);
        let e = "bogus".parse::<SslMode>().unwrap_err().to_string();
        assert!(e.contains("sslmode") && e.contains("verify-full"), "{e}");
        assert_eq!(
            "require".parse::<ChannelBinding>().unwrap(),
            ChannelBinding::Require
        );
    }
}
