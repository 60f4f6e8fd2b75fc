//! The connection state machine driven by a scripted server, with virtual time.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use pgcdc_core::connection::{Connection, ConnectionError, ConnectionEvent, State};
use pgcdc_core::startup::ConnectParams;
use pgcdc_core::testing::backend::{
    auth_ok, backend_key, complete, data_row, msg, param, ready, row_description,
};
use pgcdc_core::{ProtocolError, SslMode};

fn error(sev: &str, code: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in [
        (b'S', sev),
        (b'V', sev),
        (b'C', code),
        (b'M', text),
        (b'H', "a hint"),
    ] {
        b.push(k);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b.push(0);
    msg(b'E', &b)
}

fn notice(text: &str) -> Vec<u8> {
    let mut e = error("NOTICE", "00000", text);
    e[0] = b'N';
    e
}

fn feed(conn: &mut Connection, bytes: &[u8], now: Instant) -> Result<(), ConnectionError> {
    // Feed one byte at a time: the machine must be fully incremental.
    let mut buf = BytesMut::new();
    for b in bytes {
        buf.put_u8(*b);
        conn.handle_input(&mut buf, now)?;
    }
    assert!(buf.is_empty(), "unconsumed bytes: {buf:?}");
    Ok(())
}

fn events(conn: &mut Connection) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

fn transmit(conn: &mut Connection) -> BytesMut {
    let mut out = BytesMut::new();
    while conn.poll_transmit(&mut out) {}
    out
}

fn ready_connection(now: Instant) -> Connection {
    let p = ConnectParams::new("u")
        .database("d")
        .ssl_mode(SslMode::Disable);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let first = transmit(&mut c);
    assert_eq!(
        &first[4..8],
        &196_608i32.to_be_bytes(),
        "startup packet first"
    );
    let mut script = auth_ok();
    script.extend(param("server_version", "15.18 (Debian)"));
    script.extend(notice("hello"));
    script.extend(backend_key(4242));
    script.extend(ready());
    feed(&mut c, &script, now).unwrap();
    c
}

#[test]
fn trust_startup_reaches_ready_with_params_and_key() {
    let now = Instant::now();
    let mut c = ready_connection(now);
    let ev = events(&mut c);
    assert!(matches!(ev[0], ConnectionEvent::Notice(ref n) if n.message == "hello"));
    assert!(matches!(ev[1], ConnectionEvent::Ready));
    assert_eq!(c.state(), State::Ready);
    assert_eq!(c.backend_pid(), Some(4242));
    assert_eq!(c.server_params().server_version_num(), Some(150018));
    assert_eq!(c.poll_timeout(), None, "no deadline once ready");
}

#[test]
fn ssl_request_then_tls_then_startup() {
    let now = Instant::now();
    let p = ConnectParams::new("u").ssl_mode(SslMode::Require);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    assert_eq!(&transmit(&mut c)[..], &[0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]);
    feed(&mut c, b"S", now).unwrap();
    assert!(matches!(events(&mut c)[..], [ConnectionEvent::StartTls]));
    assert!(
        transmit(&mut c).is_empty(),
        "nothing is sent before the handshake"
    );
    c.handle_tls_established(Some(vec![0; 32])).unwrap();
    assert!(c.is_tls());
    let startup = transmit(&mut c);
    assert_eq!(&startup[4..8], &196_608i32.to_be_bytes());
}

#[test]
fn data_after_ssl_accept_is_refused() {
    let now = Instant::now();
    let p = ConnectParams::new("u").ssl_mode(SslMode::Prefer);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let mut buf = BytesMut::from(&b"SZ"[..]);
    let e = c.handle_input(&mut buf, now).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::Protocol(ProtocolError::DataAfterSslResponse)
        ),
        "{e}"
    );
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn refused_tls_depends_on_mode() {
    let now = Instant::now();
    let p = ConnectParams::new("u").ssl_mode(SslMode::Require);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let e = feed(&mut c, b"N", now).unwrap_err();
    assert!(e.to_string().contains("does not accept TLS"), "{e}");

    let p = ConnectParams::new("u").ssl_mode(SslMode::Prefer);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let _ = transmit(&mut c);
    feed(&mut c, b"N", now).unwrap();
    let startup = transmit(&mut c);
    assert_eq!(
        &startup[4..8],
        &196_608i32.to_be_bytes(),
        "plaintext startup follows"
    );
    assert!(!c.is_tls());

    let p = ConnectParams::new("u").ssl_mode(SslMode::Prefer);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let e = feed(&mut c, b"E", now).unwrap_err();
    assert!(matches!(e, ConnectionError::TlsRequestRejected));
}

#[test]
fn fatal_startup_error_keeps_sqlstate_and_hint() {
    let now = Instant::now();
    let p = ConnectParams::new("u").ssl_mode(SslMode::Disable);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let e = feed(
        &mut c,
        &error("FATAL", "28P01", "password authentication failed"),
        now,
    )
    .unwrap_err();
    let se = e.server_error().unwrap();
    assert_eq!(se.code_str(), "28P01");
    assert_eq!(se.hint.as_deref(), Some("a hint"));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn startup_deadline_with_virtual_time() {
    let now = Instant::now();
    let p = ConnectParams::new("u")
        .ssl_mode(SslMode::Disable)
        .startup_timeout(Some(Duration::from_secs(5)));
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(5)));
    c.handle_timeout(now + Duration::from_secs(4)).unwrap();
    let e = c.handle_timeout(now + Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::Timeout {
                during: "authenticating"
            }
        ),
        "{e}"
    );
}

#[test]
fn simple_query_results_and_errors() {
    let now = Instant::now();
    let mut c = ready_connection(now);
    let _ = events(&mut c);
    c.send_query("SELECT a, b FROM t; SET x = 1").unwrap();
    assert!(c.send_query("again").is_err(), "one query at a time");
    assert_eq!(&transmit(&mut c)[..1], b"Q");
    let mut script = row_description(&["a", "b"]);
    script.extend(data_row(&[Some("1"), None]));
    script.extend(data_row(&[Some("2"), Some("x")]));
    script.extend(complete("SELECT 2"));
    script.extend(notice("mid-query"));
    script.extend(complete("SET"));
    script.extend(ready());
    feed(&mut c, &script, now).unwrap();
    let ev = events(&mut c);
    let ConnectionEvent::QueryComplete(results) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].tag, "SELECT 2");
    assert_eq!(results[0].text(0, "a").unwrap(), Some("1"));
    assert_eq!(results[0].text(0, "b").unwrap(), None);
    assert_eq!(results[0].text(1, "b").unwrap(), Some("x"));
    assert_eq!(results[1].tag, "SET");

    c.send_query("SELECT nope").unwrap();
    let mut script = error("ERROR", "42703", "column \"nope\" does not exist");
    script.extend(ready());
    feed(&mut c, &script, now).unwrap();
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [ConnectionEvent::QueryFailed(e)] if e.code_str() == "42703"));
    assert!(c.is_ready(), "a query error leaves the connection usable");
}

#[test]
fn copy_both_stream_and_clean_end() {
    let now = Instant::now();
    let mut c = ready_connection(now);
    let _ = events(&mut c);
    c.send_query("START_REPLICATION SLOT s LOGICAL 0/0")
        .unwrap();
    let _ = transmit(&mut c);
    let mut script = msg(b'W', &[0, 0, 0]);
    script.extend(msg(b'd', b"kpayload"));
    feed(&mut c, &script, now).unwrap();
    let ev = events(&mut c);
    assert!(matches!(ev[0], ConnectionEvent::CopyStarted(_)));
    assert!(matches!(&ev[1], ConnectionEvent::CopyData(d) if &d[..] == b"kpayload"));
    c.send_copy_data(b"r-status").unwrap();
    c.send_copy_done().unwrap();
    let out = transmit(&mut c);
    assert_eq!(out[0], b'd');
    assert_eq!(out[out.len() - 5], b'c');
    // The server answers CopyDone, may still send data, then completes.
    let mut script = msg(b'c', b"");
    script.extend(msg(b'd', b"late"));
    script.extend(complete("COPY 0"));
    script.extend(complete("START_REPLICATION"));
    script.extend(ready());
    feed(&mut c, &script, now).unwrap();
    let ev = events(&mut c);
    assert!(matches!(ev[0], ConnectionEvent::CopyDone));
    assert!(matches!(&ev[1], ConnectionEvent::CopyData(d) if &d[..] == b"late"));
    assert!(matches!(&ev[2], ConnectionEvent::QueryComplete(r) if r.len() == 2));
    assert!(c.is_ready());
}

#[test]
fn unexpected_message_is_a_protocol_error() {
    let now = Instant::now();
    let mut c = ready_connection(now);
    let e = feed(&mut c, &data_row(&[Some("1")]), now).unwrap_err();
    assert!(matches!(e, ConnectionError::Protocol(_)), "{e}");
}

#[test]
fn eof_reports_the_phase() {
    let now = Instant::now();
    let p = ConnectParams::new("u").ssl_mode(SslMode::Disable);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let e = c.handle_eof();
    assert!(e.to_string().contains("authenticating"), "{e}");
}

#[test]
fn nul_in_parameters_is_refused_up_front() {
    let p = ConnectParams::new("u\0x").ssl_mode(SslMode::Prefer);
    assert!(Connection::new(p, [1; 18], Instant::now()).is_err());
}

#[test]
fn a_large_frame_before_authentication_is_refused_without_reserving() {
    let now = Instant::now();
    let p = ConnectParams::new("u")
        .database("d")
        .ssl_mode(SslMode::Disable);
    let mut c = Connection::new(p, [1; 18], now).unwrap();
    let _ = transmit(&mut c);
    // An ErrorResponse announcing 100 MiB while authenticating.
    let mut buf = BytesMut::from(&b"E\x06\x40\x00\x04"[..]);
    buf.put_slice(b"SFATAL\0");
    let err = c.handle_input(&mut buf, now).unwrap_err();
    assert!(
        matches!(
            err,
            ConnectionError::Protocol(ProtocolError::FrameTooLarge { kind: 'E', .. })
        ),
        "{err}"
    );
    assert!(
        buf.capacity() < 1 << 20,
        "{} bytes reserved",
        buf.capacity()
    );
}

#[test]
fn the_frame_limit_is_raised_once_authenticated() {
    let now = Instant::now();
    let mut c = ready_connection(now);
    c.send_query("SELECT 1").unwrap();
    let _ = transmit(&mut c);
    // A 1 MiB DataRow-sized frame is fine after authentication (the default limit is 1 GiB).
    let mut big = row_description(&["v"]);
    big.extend(data_row(&[Some(&"x".repeat(1 << 20))]));
    big.extend(complete("SELECT 1"));
    big.extend(ready());
    let mut buf = BytesMut::from(&big[..]);
    c.handle_input(&mut buf, now).unwrap();
    assert!(buf.is_empty());
}
