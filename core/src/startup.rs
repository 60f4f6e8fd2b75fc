//! Connection parameters, the startup packet and server parameters.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::auth::RequireAuth;
use crate::config::{ChannelBinding, Password, SslMode};
use crate::wire::DEFAULT_MAX_FRAME_LEN;

/// Output settings pinned in every startup packet so that text values never depend on the
/// server's configuration (PROTOCOL.md §1.2, §6).
pub const PINNED_SETTINGS: [(&str, &str); 6] = [
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
];

/// Everything needed to open one connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectParams {
    /// Role name.
    pub user: String,
    /// Database name; PostgreSQL defaults it to the user name.
    pub database: Option<String>,
    /// Password, if the server may ask for one.
    pub password: Option<Password>,
    /// `application_name` reported in `pg_stat_activity` / `pg_stat_replication`.
    pub application_name: String,
    /// Open a logical replication connection (`replication=database`).
    pub replication: bool,
    /// TLS policy.
    pub ssl_mode: SslMode,
    /// SCRAM channel-binding policy.
    pub channel_binding: ChannelBinding,
    /// The authentication methods the server may ask for (libpq's `require_auth`).
    pub require_auth: RequireAuth,
    /// Deadline for everything from the first byte to ReadyForQuery (TLS and authentication).
    pub startup_timeout: Option<Duration>,
    /// Largest server message accepted once authenticated (before that,
    /// [`MAX_STARTUP_FRAME_LEN`](crate::wire::MAX_STARTUP_FRAME_LEN) at most).
    pub max_frame_len: usize,
    /// Extra startup parameters (GUCs) sent after the pinned output settings.
    pub extra_params: Vec<(String, String)>,
}

impl ConnectParams {
    /// Parameters for `user` with defaults: no password, `application_name` `pgcdc`, not a
    /// replication connection, `SslMode::Prefer`, channel binding `Prefer`, `require_auth`
    /// not set (a cleartext password is sent only over TLS), 30 s startup
    /// deadline, 1 GiB frames.
    pub fn new(user: impl Into<String>) -> Self {
        ConnectParams {
            user: user.into(),
            database: None,
            password: None,
            application_name: "pgcdc".to_owned(),
            replication: false,
            ssl_mode: SslMode::Prefer,
            channel_binding: ChannelBinding::Prefer,
            require_auth: RequireAuth::unset(),
            startup_timeout: Some(Duration::from_secs(30)),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            extra_params: Vec::new(),
        }
    }

    /// Sets the database.
    pub fn database(mut self, db: impl Into<String>) -> Self {
        self.database = Some(db.into());
        self
    }

    /// Sets the password.
    pub fn password(mut self, pw: impl Into<Password>) -> Self {
        self.password = Some(pw.into());
        self
    }

    /// Makes this a logical replication connection (`replication=database`).
    pub fn replication(mut self, on: bool) -> Self {
        self.replication = on;
        self
    }

    /// Sets the TLS policy.
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = mode;
        self
    }

    /// Sets the channel-binding policy.
    pub fn channel_binding(mut self, cb: ChannelBinding) -> Self {
        self.channel_binding = cb;
        self
    }

    /// Sets the largest server message accepted once authenticated.
    pub fn max_frame_len(mut self, len: usize) -> Self {
        self.max_frame_len = len;
        self
    }

    /// Sets the accepted authentication methods (libpq's `require_auth`).
    pub fn require_auth(mut self, require_auth: RequireAuth) -> Self {
        self.require_auth = require_auth;
        self
    }

    /// Sets `application_name`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Sets the startup deadline (`None`: wait forever).
    pub fn startup_timeout(mut self, t: Option<Duration>) -> Self {
        self.startup_timeout = t;
        self
    }

    /// The startup packet's parameters, in the order they are sent.
    pub fn startup_params(&self) -> Vec<(&str, &str)> {
        let mut p: Vec<(&str, &str)> = vec![("user", self.user.as_str())];
        if let Some(db) = &self.database {
            p.push(("database", db));
        }
        if self.replication {
            p.push(("replication", "database"));
        }
        p.push(("application_name", &self.application_name));
        p.extend(PINNED_SETTINGS);
        p.extend(
            self.extra_params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        p
    }
}

/// How many distinct parameters [`ServerParams`] keeps. PostgreSQL reports about fifteen (plus
/// any `GUC_REPORT` setting an extension adds); the bound stops a hostile server from growing
/// the map without end with ParameterStatus messages of made-up names.
pub const MAX_SERVER_PARAMS: usize = 256;

/// The ParameterStatus values the server reported, kept up to date.
///
/// At most [`MAX_SERVER_PARAMS`] names are kept: once it is full, a parameter it already holds
/// is still updated, and a new name is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerParams {
    values: BTreeMap<String, String>,
}

impl ServerParams {
    /// Records a ParameterStatus; returns `false` when the map is full and `name` is new (the
    /// value is then not kept).
    pub fn set(&mut self, name: String, value: String) -> bool {
        if let Some(slot) = self.values.get_mut(&name) {
            *slot = value;
            return true;
        }
        if self.values.len() >= MAX_SERVER_PARAMS {
            return false;
        }
        self.values.insert(name, value);
        true
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every parameter, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `server_version` as a number in `server_version_num` form (15.18 → 150018,
    /// 9.6.24 → 90624, 17beta1 → 170000), if it parses.
    pub fn server_version_num(&self) -> Option<u32> {
        parse_server_version(self.get("server_version")?)
    }
}

/// Parses a `server_version` string into `server_version_num` form.
pub fn parse_server_version(s: &str) -> Option<u32> {
    let head: &str = s.split_whitespace().next()?;
    let mut nums = head
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok());
    let major = nums.next()??;
    let minor_part = head.get(major.to_string().len()..).unwrap_or("");
    let second = if minor_part.starts_with('.') {
        nums.next().flatten().unwrap_or(0)
    } else {
        0
    };
    if major >= 10 {
        Some(major.checked_mul(10_000)?.checked_add(second)?)
    } else {
        let third = if minor_part.starts_with('.') {
            nums.next().flatten().unwrap_or(0)
        } else {
            0
        };
        Some(major * 10_000 + second * 100 + third)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_server_version("15.18 (Debian 15.18-0+deb12u1)"),
            Some(150018)
        );
        assert_eq!(parse_server_version("9.6.24"), Some(90624));
        assert_eq!(parse_server_version("17beta1"), Some(170000));
        assert_eq!(parse_server_version("16.0"), Some(160000));
        assert_eq!(parse_server_version("19devel"), Some(190000));
        assert_eq!(parse_server_version("banana"), None);
    }

    #[test]
    fn startup_params_pin_output() {
        let p = ConnectParams::new("u").database("d").replication(true);
        let sp = p.startup_params();
        assert_eq!(sp[0], ("user", "u"));
        assert!(sp.contains(&("replication", "database")));
        assert!(sp.contains(&("DateStyle", "ISO")));
        assert!(sp.contains(&("TimeZone", "UTC")));
        assert!(sp.contains(&("extra_float_digits", "3")));
        assert!(sp.contains(&("bytea_output", "hex")));
        assert!(sp.contains(&("IntervalStyle", "postgres")));
        assert!(sp.contains(&("client_encoding", "UTF8")));
    }

    #[test]
    fn server_params_are_bounded() {
        let mut sp = ServerParams::default();
        for i in 0..10_000 {
            sp.set(format!("p{i}"), "v".to_owned());
        }
        sp.set("server_version".to_owned(), "15.4".to_owned());
        assert!(
            sp.iter().count() <= MAX_SERVER_PARAMS,
            "{}",
            sp.iter().count()
        );
        // Parameters already known keep being updated.
        sp.set("p0".to_owned(), "w".to_owned());
        assert_eq!(sp.get("p0"), Some("w"));
    }
}
