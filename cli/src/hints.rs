//! The library's error messages name its settings (`create_slot`, `ssl_root_cert`, …); on
//! the command line the same advice names the flag or the URL parameter instead.

/// Library phrases and what the CLI says instead, applied in order.
const PHRASES: [(&str, &str); 14] = [
    ("enable create_slot", "pass --create-slot"),
    ("and slot_in_use = fail", "and --slot-in-use fail"),
    ("set slot_in_use = wait", "pass --slot-in-use wait"),
    ("enable create_publication", "pass --create-publication"),
    (
        "set create_slot to true, or temporary_slot to false",
        "pass --create-slot",
    ),
    (
        "check the `database` setting or create it",
        "check the database name in the --url (postgres://HOST/DATABASE) or create it",
    ),
    (
        "(the `password` setting, the URL or PGPASSWORD)",
        "(the password in the --url, or PGPASSWORD)",
    ),
    (
        "give this source its own slot_name",
        "give this stream its own --slot",
    ),
    ("configure another slot name", "pass another --slot"),
    ("configure a different slot name", "pass another --slot"),
    (
        "fix the configured table names",
        "fix the names given to --tables",
    ),
    (
        "set ssl_mode to require (or verify-full), or channel_binding to prefer",
        "add sslmode=require (or verify-full) to the --url, or channel_binding=prefer",
    ),
    (
        "; if this is legitimate, raise max_frame_len in the source configuration \
         (PostgresSourceConfig::max_frame_len, or the builder's with_max_frame_len; at most 1 GiB)",
        "; pgcdc accepts the largest message PostgreSQL sends (1 GiB), so check that the --url \
         leads to a PostgreSQL server",
    ),
    (
        "set ssl_root_cert to the CA file",
        "add sslrootcert=FILE to the --url, FILE being the CA file",
    ),
];

/// What to add when the server's certificate chain ends at an unknown issuer.
const UNKNOWN_ISSUER: &str = "the server certificate is signed by a CA that is not trusted: add \
     sslrootcert=/path/to/ca.pem (the CA that signed it) to the --url, or set PGSSLROOTCERT";

/// `message` with the library's advice rewritten for the command line.
pub fn for_cli(message: &str) -> String {
    let mut out = message.to_owned();
    for (library, cli) in PHRASES {
        if out.contains(library) {
            out = out.replace(library, cli);
        }
    }
    out = out.replace("ssl_root_cert ", "sslrootcert ");
    out = out
        .replace("spill_threshold_bytes", "--spill-threshold")
        .replace("spill_dir", "--spill-dir")
        .replace("raise the spill threshold", "raise --spill-threshold")
        .replace("in the spill directory", "in the --spill-dir directory");
    out = start_timeout(&out);
    if out.contains("UnknownIssuer") || out.contains("unknown issuer") {
        out.push_str("; ");
        out.push_str(UNKNOWN_ISSUER);
    }
    out
}

/// `start_timeout_ms = N` as the flag, in seconds: `--start-timeout S`.
fn start_timeout(message: &str) -> String {
    const KEY: &str = "start_timeout_ms = ";
    let Some(at) = message.find(KEY) else {
        return message.to_owned();
    };
    let (head, rest) = message.split_at(at);
    let rest = rest.get(KEY.len()..).unwrap_or_default();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, tail) = rest.split_at(digits);
    match number.parse::<u64>() {
        Ok(ms) => {
            let secs = ms as f64 / 1000.0;
            format!("{head}--start-timeout {secs}{tail}")
        }
        Err(_) => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_settings_become_flags() {
        let f = for_cli(
            &pgcdc_core::ProtocolError::FrameTooLarge {
                kind: 'd',
                len: 2 << 30,
                max: 1 << 30,
                before_authentication: false,
            }
            .to_string(),
        );
        assert!(!f.contains("with_max_frame_len"), "{f}");
        let s = for_cli("spill_dir: /x cannot be used; give an existing directory");
        assert!(s.starts_with("--spill-dir: /x"), "{s}");
        let m = for_cli("replication slot \"s\" does not exist: enable create_slot, or create it");
        assert_eq!(
            m,
            "replication slot \"s\" does not exist: pass --create-slot, or create it"
        );
        let m =
            for_cli("hint: the database does not exist: check the `database` setting or create it");
        assert!(m.contains("database name in the --url"), "{m}");
        let m = for_cli("could not connect (start timeout, start_timeout_ms = 2500; 3 attempt(s))");
        assert!(m.contains("--start-timeout 2.5;"), "{m}");
        let m = for_cli("TLS handshake with h failed: invalid peer certificate: UnknownIssuer");
        assert!(m.contains("sslrootcert=/path/to/ca.pem"), "{m}");
        assert_eq!(for_cli("nothing to change"), "nothing to change");
    }
}
