//! The SCRAM client fed arbitrary server-first and server-final messages: errors, never
//! panics, and never accepts a server-final (none made without the password can verify).
//!
//! Half of the inputs are used raw; the other half are shaped into a well-formed
//! server-first-message around the client's real nonce, so the fuzzer also reaches the
//! proof computation and the server-final checks.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use pgcdc_core::auth::{ScramBinding, ScramClient};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.split(|&b| b == 0xFF);
    let p0 = parts.next().unwrap_or_default();
    let p1 = parts.next().unwrap_or_default();
    let p2 = parts.next().unwrap_or_default();
    let binding = match sel % 3 {
        0 => ScramBinding::None,
        1 => ScramBinding::ClientSupported,
        _ => ScramBinding::TlsServerEndPoint(vec![sel; 32]),
    };
    let mut client = ScramClient::new(b"pencil", binding, &[sel; 18]);
    let _ = client.client_first_message();
    let (server_first, server_final) = if sel & 0x80 == 0 {
        // Raw, with any iteration count clamped so PBKDF2 stays cheap.
        let mut first = p0.to_vec();
        if let Some(pos) = first.windows(2).position(|w| w == b"i=") {
            first.truncate(pos + 2);
            first.extend_from_slice(b"1");
        }
        (first, p1.to_vec())
    } else {
        let salt = if sel & 0x40 == 0 {
            STANDARD.encode(p1)
        } else {
            String::from_utf8_lossy(p1).into_owned()
        };
        let first = format!(
            "r={}{},s={},i={}",
            client.nonce(),
            String::from_utf8_lossy(p0),
            salt,
            1 + u32::from(sel % 4)
        );
        let last = if sel & 0x20 == 0 {
            format!("v={}", STANDARD.encode(p2))
        } else {
            String::from_utf8_lossy(p2).into_owned()
        };
        (first.into_bytes(), last.into_bytes())
    };
    if client.handle_server_first(&server_first).is_ok() {
        // Nobody but a holder of the password can produce the server signature, so a
        // fuzzer-made server-final must never verify.
        let verified = client.handle_server_final(&server_final).is_ok();
        assert!(!verified && !client.is_verified());
    }
});
