//! `postgres://` URLs and libpq's `PG*` environment variables.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{ConfigError, PostgresSourceConfig};
use crate::auth::RequireAuth;
use crate::config::{ChannelBinding, Password, SslMode};

/// The query parameters [`PostgresSourceConfig::apply_url`] accepts.
pub const URL_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "channel_binding",
    "require_auth",
    "application_name",
    "connect_timeout",
    "slot",
    "slot_name",
    "publication",
    "publication_name",
    "tables",
];

/// The environment variables [`PostgresSourceConfig::apply_env`] reads, with the libpq
/// parameter each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGAPPNAME", "application_name"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGREQUIREAUTH", "require_auth"),
];

impl PostgresSourceConfig {
    /// The defaults overridden by a `postgres://` or `postgresql://` URL; see
    /// [`apply_url`](Self::apply_url).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let mut config = PostgresSourceConfig::default();
        config.apply_url(url)?;
        Ok(config)
    }

    /// Overrides the settings a libpq-style URL carries:
    /// `postgres[ql]://[user[:password]@][host][:port][/database][?param=value&…]`.
    ///
    /// The user, password, host, database and every parameter are percent-decoded; an IPv6
    /// host goes in brackets (`[::1]:5433`). Parameters: libpq's `host`, `hostaddr`, `port`,
    /// `dbname`, `user`, `password`, `sslmode`, `sslrootcert`, `channel_binding`, `require_auth`,
    /// `application_name` and `connect_timeout` (seconds, as in libpq: `0` or negative means no
    /// limit, `1` means 2 s), and ours: `slot` (or `slot_name`), `publication` (or
    /// `publication_name`), `tables` (comma-separated; empty means all tables of the
    /// publication). Empty values leave a setting unchanged (except `tables`). Only one host is
    /// supported.
    ///
    /// The password may contain raw `/`, `?`, `:` and `@` (the user part ends at the last `@`
    /// before the host); a raw `@` in the database name must then be encoded (`%40`), and `&` in
    /// a `password=` parameter must be (`%26`).
    ///
    /// On error nothing is changed. Errors name the parameter at fault and never contain the
    /// password, or any part of it.
    pub fn apply_url(&mut self, url: &str) -> Result<(), ConfigError> {
        let mut c = self.clone();
        let rest = strip_scheme(url).ok_or_else(|| {
            ConfigError::new(
                "url",
                "a connection URL must start with postgres:// or postgresql://",
                "write it as postgres://user:password@host:port/database?sslmode=require",
            )
        })?;
        // The user part first: everything before the last `@` that precedes the query. The
        // password may hold a raw `/`, `?`, `:` or `@`, so splitting at those first would cut
        // it and show its pieces as a host, port, database or parameter in an error.
        let (userinfo, after_userinfo) = split_userinfo(rest);
        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            let user = withhold_password_param(userinfo, decode_str(user, "user"))?;
            if !user.is_empty() {
                c.user = user;
            }
            if let Some(p) = password {
                let p = decode_secret(p)?;
                if !p.is_empty() {
                    c.password = Password::new(p);
                }
            }
        }
        let (before_query, query) = match after_userinfo.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (after_userinfo, None),
        };
        let (hostport, path) = match before_query.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (before_query, None),
        };
        let location = (|| {
            let (host, port) = split_host_port(hostport)?;
            if !host.is_empty() {
                c.host = host;
            }
            if let Some(port) = port {
                c.set_libpq("port", &port, "URL port")?;
            }
            if let Some(path) = path {
                let db = decode_str(path, "database")?;
                if !db.is_empty() {
                    c.database = db;
                }
            }
            Ok(())
        })();
        withhold_password_param(before_query, location)?;
        let mut after_password = false;
        for pair in query.unwrap_or_default().split('&') {
            if pair.is_empty() {
                continue;
            }
            match c.apply_url_param(pair) {
                Ok(is_password) => after_password |= is_password,
                // An unencoded `&` in a `password=` value makes its tail look like more
                // parameters: never show them.
                Err(e) if after_password => {
                    return Err(ConfigError::new(
                        e.field,
                        "a URL query parameter after password= is invalid (it is not shown, \
                         as it may be part of the password)",
                        "encode special characters of the password as %XX (e.g. %26 for &)",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        *self = c;
        Ok(())
    }

    /// Overrides the settings libpq's environment variables carry: `PGHOST`, `PGHOSTADDR`,
    /// `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT` (seconds, as in libpq), `PGCHANNELBINDING` and
    /// `PGREQUIREAUTH`.
    ///
    /// `lookup` returns a variable's value (pass `|k| std::env::var(k).ok()` in a program, a map
    /// in tests). Unset and empty variables leave a setting unchanged. On error nothing is
    /// changed; errors name the variable and never contain the password.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let mut c = self.clone();
        for (var, param) in ENV_VARS {
            if let Some(value) = lookup(var).filter(|v| !v.is_empty()) {
                c.set_libpq(param, &value, var)?;
            }
        }
        if let Some(pw) = lookup("PGPASSWORD").filter(|v| !v.is_empty()) {
            c.password = Password::from(pw);
        }
        *self = c;
        Ok(())
    }

    /// Applies one `name=value` pair of a URL's query; `Ok(true)` when it set the password.
    fn apply_url_param(&mut self, pair: &str) -> Result<bool, ConfigError> {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            ConfigError::new(
                "url",
                format!("URL query parameter {pair:?} has no value"),
                "write parameters as name=value",
            )
        })?;
        let key = decode_str(key, "url")?;
        if key == "password" {
            let p = decode_secret(value)?;
            if !p.is_empty() {
                self.password = Password::new(p);
            }
            return Ok(true);
        }
        let value = decode_str(value, "url")?;
        let origin = format!("URL parameter {key}");
        match key.as_str() {
            "slot" | "slot_name" => set_nonempty(&mut self.slot_name, value),
            "publication" | "publication_name" => set_nonempty(&mut self.publication_name, value),
            "tables" => {
                self.tables = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            _ => {
                if !self.set_libpq(&key, &value, &origin)? {
                    return Err(ConfigError::new(
                        "url",
                        format!("unknown URL query parameter {key:?}"),
                        format!("accepted parameters: {}", URL_PARAMS.join(", ")),
                    ));
                }
            }
        }
        Ok(false)
    }

    /// Sets one libpq parameter from text; `Ok(false)` for a parameter it does not know.
    fn set_libpq(&mut self, param: &str, value: &str, origin: &str) -> Result<bool, ConfigError> {
        match param {
            "host" => set_nonempty(&mut self.host, value.to_owned()),
            "hostaddr" => {
                if !value.is_empty() {
                    let ip: IpAddr = value.parse().map_err(|_| {
                        ConfigError::new(
                            "hostaddr",
                            format!("{origin} {value:?} is not a numeric IP address"),
                            "give an IPv4 or IPv6 address such as 10.0.0.5, or set host instead",
                        )
                    })?;
                    self.hostaddr = Some(ip);
                }
            }
            "port" => {
                if !value.is_empty() {
                    self.port = parse_port(value, origin)?;
                }
            }
            "dbname" => set_nonempty(&mut self.database, value.to_owned()),
            "user" => set_nonempty(&mut self.user, value.to_owned()),
            "sslmode" => {
                if !value.is_empty() {
                    self.ssl_mode = value.parse::<SslMode>().map_err(|_| {
                        ConfigError::new(
                            "ssl_mode",
                            format!("{origin} {value:?} is not an SSL mode"),
                            "use disable, prefer, require, verify-ca or verify-full",
                        )
                    })?;
                }
            }
            "sslrootcert" => {
                if !value.is_empty() {
                    self.ssl_root_cert = Some(PathBuf::from(value));
                }
            }
            "channel_binding" => {
                if !value.is_empty() {
                    self.channel_binding = value.parse::<ChannelBinding>().map_err(|_| {
                        ConfigError::new(
                            "channel_binding",
                            format!("{origin} {value:?} is not a channel-binding mode"),
                            "use disable, prefer or require",
                        )
                    })?;
                }
            }
            "require_auth" => {
                if !value.is_empty() {
                    self.require_auth = value.parse::<RequireAuth>().map_err(|e| {
                        ConfigError::new(
                            "require_auth",
                            format!("{origin} {value:?} is not valid: {e}"),
                            "use a comma list of password, md5, scram-sha-256, none, or of \
                             !negated ones (e.g. scram-sha-256, or !password)",
                        )
                    })?;
                }
            }
            "application_name" => set_nonempty(&mut self.application_name, value.to_owned()),
            "connect_timeout" => {
                if !value.is_empty() {
                    self.connect_timeout_ms = parse_connect_timeout(value, origin)?;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits the text after the scheme into the user part (`user[:password]`, if any) and the
/// rest (`host[:port][/database][?query]`).
///
/// The user part ends at the last `@` before the query. The query starts at the first `?`
/// followed by a parameter pgcdc knows and `=` (so a `?` inside the password is not taken for
/// it), and an `@` inside a query value is not taken for the end of the user part. A raw `@`
/// in the database name must then be written `%40`.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let query_start = rest
        .match_indices('?')
        .map(|(i, _)| i)
        .find(|&i| {
            let after = rest.get(i + 1..).unwrap_or_default();
            URL_PARAMS.iter().any(|name| {
                after
                    .strip_prefix(name)
                    .is_some_and(|tail| tail.starts_with('='))
            })
        })
        .unwrap_or(rest.len());
    let head = rest.get(..query_start).unwrap_or(rest);
    match head.rfind('@') {
        Some(at) => (rest.get(..at), rest.get(at + 1..).unwrap_or_default()),
        None => (None, rest),
    }
}

/// An error about the user, host, port or database part of a URL, unless that part holds
/// `password=`: then the query was not found where the user wrote it (a `?` followed by a
/// parameter pgcdc does not know comes before it, and an `@` after it was taken for the end
/// of the user part), the part runs on into the password, and the error says so without
/// showing it.
fn withhold_password_param<T>(part: &str, r: Result<T, ConfigError>) -> Result<T, ConfigError> {
    match r {
        Err(e) if part.to_ascii_lowercase().contains("password=") => Err(ConfigError::new(
            e.field,
            "a part of the URL before its query holds password= and is invalid (it is not \
             shown, as it may hold the password)",
            "start the query with ? and a known parameter, and encode special characters as \
             %XX (e.g. %40 for @, %26 for &)",
        )),
        r => r,
    }
}

fn set_nonempty(slot: &mut String, value: String) {
    if !value.is_empty() {
        *slot = value;
    }
}

fn strip_scheme(url: &str) -> Option<&str> {
    ["postgresql://", "postgres://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|p| p.eq_ignore_ascii_case(scheme))
            .and_then(|_| url.get(scheme.len()..))
    })
}

fn parse_port(value: &str, origin: &str) -> Result<u16, ConfigError> {
    match value.trim().parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConfigError::new(
            "port",
            format!("{origin} {value:?} is not a valid port number"),
            "use a number from 1 to 65535",
        )),
    }
}

/// libpq's `connect_timeout`: whole seconds; zero or negative means no limit, and 1 counts as
/// 2 (libpq's minimum).
fn parse_connect_timeout(value: &str, origin: &str) -> Result<u64, ConfigError> {
    let secs: i64 = value.trim().parse().map_err(|_| {
        ConfigError::new(
            "connect_timeout_ms",
            format!("{origin} {value:?} is not a whole number of seconds"),
            "give the timeout in seconds, such as 10 (0 means no limit)",
        )
    })?;
    Ok(match secs {
        i64::MIN..=0 => 0,
        1 => 2000,
        n => n.unsigned_abs().saturating_mul(1000),
    })
}

/// Splits `host[:port]` or `[ipv6][:port]`; the host is percent-decoded.
fn split_host_port(hostport: &str) -> Result<(String, Option<String>), ConfigError> {
    if hostport.contains(',') {
        return Err(ConfigError::new(
            "host",
            "the URL names several hosts",
            "give a single host; multi-host URLs are not supported",
        ));
    }
    if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or_else(|| {
            ConfigError::new(
                "host",
                format!("the URL host {hostport:?} has no closing ']'"),
                "write IPv6 addresses in brackets, such as [::1]:5432",
            )
        })?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| {
                        ConfigError::new(
                            "host",
                            format!("unexpected {after:?} after the bracketed host {host:?}"),
                            "write IPv6 addresses in brackets, such as [::1]:5432",
                        )
                    })?
                    .to_owned(),
            ),
        };
        if host.is_empty() {
            return Err(ConfigError::new(
                "host",
                "the URL has an empty bracketed host",
                "write IPv6 addresses in brackets, such as [::1]:5432",
            ));
        }
        return Ok((host.to_owned(), port.filter(|p| !p.is_empty())));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, Some(p.to_owned()).filter(|p| !p.is_empty())),
        None => (hostport, None),
    };
    Ok((decode_str(host, "host")?, port))
}

/// Percent-decodes `s` into bytes (`%00` is refused, as libpq does).
fn decode_bytes(s: &str) -> Result<Vec<u8>, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) if hi != 0 || lo != 0 => {
                    out.push(u8::try_from(hi * 16 + lo).map_err(|_| ())?);
                    i += 3;
                }
                _ => return Err(()),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_str(s: &str, field: &'static str) -> Result<String, ConfigError> {
    decode_bytes(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ConfigError::new(
                field,
                format!("{s:?} in the URL is not valid percent-encoded UTF-8"),
                "encode special characters as %XX (e.g. %40 for @); %00 is not allowed",
            )
        })
}

/// Decodes the password without ever showing it.
fn decode_secret(s: &str) -> Result<Vec<u8>, ConfigError> {
    decode_bytes(s).map_err(|_| {
        ConfigError::new(
            "password",
            "the password in the URL is not valid percent-encoding",
            "encode special characters as %XX (e.g. %40 for @, %3A for :); %00 is not allowed",
        )
    })
}
