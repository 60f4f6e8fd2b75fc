//! Arbitrary connection URLs through `PostgresSourceConfig::from_url` / `apply_url`, and
//! arbitrary libpq variables through `apply_env`: never a panic; a failed apply changes
//! nothing; an applied URL applies again to the same configuration; and no error, nor the
//! configuration's `Debug`, shows the password.
//!
//! The password is looked for only when it is at least 6 bytes long, holds a character no
//! fixed message text holds (non-ASCII, `~`, `^` or a backquote), no quote or backslash (which
//! `Debug` adds), and appears nowhere else in
//! the input, raw, percent-decoded or as `Debug` escapes it.
//!
//! Input: one configuration byte, then parts separated by 0xFF: the password, the rest of
//! the URL after `postgres://user:PASSWORD@` (host, port, path, query), then values for the
//! `PG*` variables. Bit 0 of the configuration byte uses the second part as a whole URL
//! instead; bit 1 passes the password as a `password=` query parameter instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::PostgresSourceConfig;
use pgcdc_core::source_config::{ConfigError, ENV_VARS};

/// libpq's percent-decoding, leniently (an invalid escape kept as is).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|&d| (d as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The forms of the password an error must not show: each long enough to be recognised and
/// not found elsewhere in the input.
fn secrets(secret: &str, elsewhere: &[&str]) -> Vec<Vec<u8>> {
    let mut out = vec![secret.as_bytes().to_vec(), percent_decode(secret)];
    out.dedup();
    out.retain(|s| {
        s.len() >= 6
            && distinctive(s)
            && !elsewhere.iter().any(|e| {
                // The rest of the URL is decoded too: the password's text may come from there.
                // And as `Debug` shows it: an escape such as `\0` adds text of its own.
                let decoded = percent_decode(e);
                let lossy = String::from_utf8_lossy(&decoded).into_owned();
                [
                    e.as_bytes().to_vec(),
                    e.escape_debug().to_string().into_bytes(),
                    lossy.escape_debug().to_string().into_bytes(),
                    decoded,
                ]
                .iter()
                .any(|e| e.windows(s.len()).any(|w| w == &s[..]))
            })
    });
    out
}

/// Whether `s` holds a byte no fixed text of the configuration code (hints, defaults,
/// parameter names) holds, so finding it in a message means it came from the input.
fn distinctive(s: &[u8]) -> bool {
    // Without quotes and backslashes: Debug adds them around and inside quoted values.
    s.iter()
        .any(|&b| b >= 0x80 || matches!(b, b'~' | b'^' | b'`'))
        && !s.iter().any(|&b| matches!(b, b'"' | b'\\'))
}

fn contains(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w == needle)
}

fn check_error(e: &ConfigError, secrets: &[Vec<u8>], input: &str) {
    let shown = format!("{e} {e:?}");
    for s in secrets {
        assert!(
            !contains(&shown, s),
            "the error {shown:?} for {input:?} shows the password {:?}",
            String::from_utf8_lossy(s)
        );
    }
}

fn check_config(c: &PostgresSourceConfig, secrets: &[Vec<u8>], input: &str) {
    let shown = format!("{c:?}");
    for s in secrets {
        // The URL may have put the text somewhere else than the password.
        if c.password.expose() == &s[..] {
            assert!(
                !contains(&shown, s),
                "Debug of {input:?} shows the password"
            );
        }
    }
    if let Err(e) = c.validate() {
        check_error(&e, secrets, input);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let parts: Vec<String> = rest
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let secret = parts.first().map(String::as_str).unwrap_or_default();
    let tail = parts.get(1).map(String::as_str).unwrap_or_default();
    let env: Vec<&str> = parts.iter().skip(2).map(String::as_str).collect();

    let url = if cfg & 1 != 0 {
        tail.to_owned()
    } else if cfg & 2 != 0 {
        let sep = if tail.contains('?') { '&' } else { '?' };
        format!("postgres://user@{tail}{sep}password={secret}")
    } else {
        format!("postgres://user:{secret}@{tail}")
    };
    let hidden = if cfg & 1 != 0 {
        Vec::new()
    } else {
        let mut others: Vec<&str> = vec![tail, "postgres://user", "password"];
        others.extend(&env);
        secrets(secret, &others)
    };

    let from_url = PostgresSourceConfig::from_url(&url);
    match &from_url {
        Ok(c) => {
            check_config(c, &hidden, &url);
            // Applying the same URL again changes nothing.
            let mut again = c.clone();
            again.apply_url(&url).expect("an applied URL applies again");
            assert_eq!(&again, c);
        }
        Err(e) => check_error(e, &hidden, &url),
    }

    // On top of a configured source: a failure leaves it as it was.
    let mut base = PostgresSourceConfig::new("db", "someone");
    base.slot_name = "s".to_owned();
    let before = base.clone();
    match base.apply_url(&url) {
        Ok(()) => check_config(&base, &hidden, &url),
        Err(e) => {
            check_error(&e, &hidden, &url);
            assert_eq!(base, before, "a failed apply_url changed the configuration");
            assert!(
                from_url.is_err(),
                "from_url accepted what apply_url refused"
            );
        }
    }

    // The PG* variables, the password in PGPASSWORD.
    let lookup = |name: &str| -> Option<String> {
        if name == "PGPASSWORD" {
            return Some(secret.to_owned());
        }
        let i = ENV_VARS.iter().position(|(v, _)| *v == name)?;
        let pick = (usize::from(cfg >> 2) + i) % (ENV_VARS.len() + 1);
        env.get(pick).map(|s| (*s).to_owned())
    };
    let env_hidden = {
        let mut others: Vec<&str> = env.clone();
        others.push(tail);
        let mut s = vec![secret.as_bytes().to_vec()];
        s.retain(|s| {
            s.len() >= 6
                && distinctive(s)
                && !others
                    .iter()
                    .any(|o| contains(o, s) || contains(&o.escape_debug().to_string(), s))
        });
        s
    };
    let mut c = PostgresSourceConfig::new("db", "someone");
    let before = c.clone();
    match c.apply_env(lookup) {
        Ok(()) => {
            if !secret.is_empty() {
                assert_eq!(c.password.expose(), secret.as_bytes());
            }
            check_config(&c, &env_hidden, "the environment");
        }
        Err(e) => {
            check_error(&e, &env_hidden, "the environment");
            assert_eq!(c, before);
        }
    }
});
