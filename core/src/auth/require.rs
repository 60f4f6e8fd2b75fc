//! `require_auth`: which authentication methods the client accepts from the server (libpq's
//! parameter of the same name).

use std::fmt;
use std::str::FromStr;

/// An authentication method the server can ask for, as `require_auth` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// The password in cleartext (`AuthenticationCleartextPassword`; pg_hba.conf `password`).
    Password,
    /// MD5 (pgcdc refuses it in any case).
    Md5,
    /// SCRAM-SHA-256, with or without channel binding.
    ScramSha256,
    /// No authentication at all: the server sent AuthenticationOk straight away (pg_hba.conf
    /// `trust`, `peer` and the like).
    None,
}

impl AuthMethod {
    const ALL: [AuthMethod; 4] = [
        AuthMethod::Password,
        AuthMethod::Md5,
        AuthMethod::ScramSha256,
        AuthMethod::None,
    ];

    /// The `require_auth` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::None => "none",
        }
    }

    fn bit(self) -> u8 {
        match self {
            AuthMethod::Password => 1,
            AuthMethod::Md5 => 2,
            AuthMethod::ScramSha256 => 4,
            AuthMethod::None => 8,
        }
    }
}

/// Which authentication methods the client accepts, libpq's `require_auth`.
///
/// Written as a comma-separated list of `password`, `md5`, `scram-sha-256` and `none`: only
/// the listed methods are accepted. Every entry may instead be negated with `!` (`!password`,
/// `!password,!md5`): every method but those is accepted. The two forms cannot be mixed, and
/// the empty string means "not set".
///
/// Not set (the default), every method pgcdc speaks is accepted except one: a cleartext
/// password over a connection that is not TLS. With the default `sslmode=prefer` a man in the
/// middle can answer the TLS request with `N` and then ask for the password in cleartext, so
/// pgcdc refuses unless `require_auth` is set and allows `password` (for example
/// `require_auth=password`). Once set, `require_auth` alone decides.
///
/// ```
/// use pgcdc_core::auth::{AuthMethod, RequireAuth};
///
/// let only_scram: RequireAuth = "scram-sha-256".parse().unwrap();
/// assert!(only_scram.allows(AuthMethod::ScramSha256));
/// assert!(!only_scram.allows(AuthMethod::None));
/// let not_password: RequireAuth = "!password".parse().unwrap();
/// assert!(not_password.allows(AuthMethod::None));
/// assert!(!not_password.allows(AuthMethod::Password));
/// assert!("password,!md5".parse::<RequireAuth>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequireAuth {
    /// `None` when not set; otherwise the accepted methods as bits, and the text as given.
    set: Option<(u8, String)>,
}

impl RequireAuth {
    /// Not set: the default policy described on the type.
    pub fn unset() -> Self {
        RequireAuth::default()
    }

    /// Whether a value was given.
    pub fn is_set(&self) -> bool {
        self.set.is_some()
    }

    /// Whether no value was given (for `skip_serializing_if`).
    pub fn is_unset(&self) -> bool {
        self.set.is_none()
    }

    /// Whether `method` is accepted. When not set, every method is (the default's refusal of
    /// a cleartext password without TLS is checked by the caller, which knows the transport;
    /// see [`allows_cleartext_without_tls`](Self::allows_cleartext_without_tls)).
    pub fn allows(&self, method: AuthMethod) -> bool {
        match &self.set {
            None => true,
            Some((mask, _)) => mask & method.bit() != 0,
        }
    }

    /// Whether a cleartext password may be sent over a connection that is not TLS: only when
    /// `require_auth` is set and allows `password`.
    pub fn allows_cleartext_without_tls(&self) -> bool {
        self.is_set() && self.allows(AuthMethod::Password)
    }

    /// The value as given (empty when not set).
    pub fn as_str(&self) -> &str {
        self.set.as_ref().map_or("", |(_, text)| text.as_str())
    }
}

impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `require_auth` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseRequireAuthError {
    /// An entry is not a method name.
    #[error(
        "invalid require_auth method {0:?}: expected password, md5, scram-sha-256 or none, \
         each optionally negated with !"
    )]
    UnknownMethod(String),
    /// Negated and plain entries are mixed.
    #[error(
        "require_auth mixes negated (!method) and plain methods; use either a list of the \
         methods to accept or a list of !methods to refuse"
    )]
    Mixed,
    /// An entry appears twice.
    #[error("require_auth lists {0:?} more than once")]
    Duplicate(String),
    /// Every method is negated, so nothing would be accepted.
    #[error("require_auth refuses every method; remove some of the !entries")]
    NothingAllowed,
}

impl FromStr for RequireAuth {
    type Err = ParseRequireAuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Ok(RequireAuth::unset());
        }
        let mut negated: Option<bool> = None;
        let mut listed = 0u8;
        for entry in text.split(',') {
            let entry = entry.trim();
            let (neg, name) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let method = AuthMethod::ALL
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(name))
                .ok_or_else(|| ParseRequireAuthError::UnknownMethod(entry.to_owned()))?;
            match negated {
                Some(n) if n != neg => return Err(ParseRequireAuthError::Mixed),
                _ => negated = Some(neg),
            }
            if listed & method.bit() != 0 {
                return Err(ParseRequireAuthError::Duplicate(entry.to_owned()));
            }
            listed |= method.bit();
        }
        let all = AuthMethod::ALL.into_iter().fold(0, |m, a| m | a.bit());
        let mask = if negated == Some(true) {
            all & !listed
        } else {
            listed
        };
        if mask == 0 {
            return Err(ParseRequireAuthError::NothingAllowed);
        }
        Ok(RequireAuth {
            set: Some((mask, text.to_owned())),
        })
    }
}

impl serde::Serialize for RequireAuth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RequireAuth {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_negations() {
        let r: RequireAuth = "password, scram-sha-256".parse().unwrap();
        assert!(r.allows(AuthMethod::Password) && r.allows(AuthMethod::ScramSha256));
        assert!(!r.allows(AuthMethod::Md5) && !r.allows(AuthMethod::None));
        assert!(r.allows_cleartext_without_tls());
        let r: RequireAuth = "!password,!none".parse().unwrap();
        assert!(r.allows(AuthMethod::ScramSha256) && r.allows(AuthMethod::Md5));
        assert!(!r.allows(AuthMethod::Password) && !r.allows(AuthMethod::None));
        assert!(!r.allows_cleartext_without_tls());
        let r: RequireAuth = "".parse().unwrap();
        assert!(!r.is_set() && r.allows(AuthMethod::Password));
        assert!(!r.allows_cleartext_without_tls());
        assert_eq!("none".parse::<RequireAuth>().unwrap().to_string(), "none");
    }

    #[test]
    fn refuses_bad_values() {
        for (bad, want) in [
            (
                "scram",
                ParseRequireAuthError::UnknownMethod("scram".into()),
            ),
            ("password,!md5", ParseRequireAuthError::Mixed),
            ("md5,md5", ParseRequireAuthError::Duplicate("md5".into())),
            (
                "!password,!md5,!scram-sha-256,!none",
                ParseRequireAuthError::NothingAllowed,
            ),
            (
                "password,",
                ParseRequireAuthError::UnknownMethod(String::new()),
            ),
        ] {
            assert_eq!(bad.parse::<RequireAuth>(), Err(want), "{bad}");
        }
    }
}
