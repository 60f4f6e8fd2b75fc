//! The connection state machine fed arbitrary server bytes in arbitrary chunks after the
//! startup packet: never a panic, whatever the server says.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgcdc_core::SslMode;
use pgcdc_core::connection::{Connection, ConnectionEvent};
use pgcdc_core::startup::ConnectParams;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mode = if sel & 1 == 0 {
        SslMode::Disable
    } else {
        SslMode::Prefer
    };
    let params = ConnectParams::new("u")
        .database("d")
        .password("pw")
        .ssl_mode(mode);
    let now = Instant::now();
    let Ok(mut conn) = Connection::new(params, [sel; 18], now) else {
        return;
    };
    let mut out = BytesMut::new();
    let mut buf = BytesMut::new();
    let step = usize::from(sel >> 1) % 17 + 1;
    for chunk in rest.chunks(step) {
        while conn.poll_transmit(&mut out) {}
        buf.extend_from_slice(chunk);
        if conn.handle_input(&mut buf, now).is_err() {
            return;
        }
        while let Some(ev) = conn.poll_event() {
            if matches!(ev, ConnectionEvent::StartTls) && conn.handle_tls_established(None).is_err()
            {
                return;
            }
        }
        if conn.is_ready() {
            let _ = conn.send_query("SELECT 1");
        }
    }
});
