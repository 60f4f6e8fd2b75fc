//! The SCRAM client fed arbitrary server-first and server-final messages: errors, never
//! panics, and never accepts a server-final it could not verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgcdc_core::auth::{ScramBinding, ScramClient};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|&b| b == 0xFF).unwrap_or(rest.len());
    let (first, last) = rest.split_at(split);
    let last = last.get(1..).unwrap_or_default();
    let binding = match sel % 3 {
        0 => ScramBinding::None,
        1 => ScramBinding::ClientSupported,
        _ => ScramBinding::TlsServerEndPoint(vec![sel; 32]),
    };
    let mut client = ScramClient::new(b"pencil", binding, &[sel; 18]);
    let _ = client.client_first_message();
    // Keep the iteration count small so the fuzzer explores parsing rather than PBKDF2.
    let mut server_first = first.to_vec();
    if let Some(pos) = server_first.windows(2).position(|w| w == b"i=") {
        server_first.truncate(pos + 2);
        server_first.extend_from_slice(b"1");
    }
    if client.handle_server_first(&server_first).is_ok() {
        let verified = client.handle_server_final(last).is_ok();
        assert_eq!(verified, client.is_verified());
    }
});
