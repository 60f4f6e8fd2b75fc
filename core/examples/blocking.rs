//! The whole sans-IO stack on a blocking `std::net` socket, handshake included: a
//! [`Connection`] run to `Ready`, then a [`ReplicationSession`] streaming a publication's
//! changes, printed one per line, each transaction acknowledged once printed.
//!
//! ```sh
//! cargo run -p pgcdc-core --example blocking -- \
//!     'postgres://cdc:secret@localhost:5432/app?sslmode=disable&slot=app_slot&publication=app_pub' 3
//! ```
//!
//! The second argument (default 10) is how many transactions to print before stopping
//! cleanly. The core has no TLS: this example connects with `sslmode=disable` (the drivers
//! add rustls). One attempt only; a driver would ask a `Reconnector` and attach again.

use std::error::Error;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use pgcdc_core::SslMode;
use pgcdc_core::connection::{Connection, ConnectionEvent};
use pgcdc_core::replication::{ReplicationSession, SessionEvent};
use pgcdc_core::source_config::PostgresSourceConfig;

/// A blocking socket with a read buffer.
struct Socket {
    tcp: TcpStream,
    input: BytesMut,
    chunk: Vec<u8>,
}

/// What a read brought.
enum ReadOutcome {
    Data,
    Eof,
    TimedOut,
}

impl Socket {
    fn write(&mut self, out: &mut BytesMut) -> std::io::Result<()> {
        if !out.is_empty() {
            self.tcp.write_all(out)?;
            out.clear();
        }
        Ok(())
    }

    /// Reads once, waiting at most until `deadline`.
    fn read(&mut self, deadline: Option<Instant>) -> std::io::Result<ReadOutcome> {
        let wait = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        self.tcp.set_read_timeout(wait)?;
        match self.tcp.read(&mut self.chunk) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => {
                self.input.extend_from_slice(&self.chunk[..n]);
                Ok(ReadOutcome::Data)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(ReadOutcome::TimedOut)
            }
            Err(e) => Err(e),
        }
    }
}

/// 18 random bytes for the SCRAM nonce, from the operating system.
fn nonce() -> std::io::Result<[u8; 18]> {
    let mut n = [0u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

/// The connection state machine, run to `Ready`: startup, authentication, parameters.
fn handshake(sock: &mut Socket, conn: &mut Connection) -> Result<(), Box<dyn Error>> {
    let mut out = BytesMut::new();
    loop {
        while conn.poll_transmit(&mut out) {}
        sock.write(&mut out)?;
        while let Some(event) = conn.poll_event() {
            match event {
                ConnectionEvent::Ready => return Ok(()),
                ConnectionEvent::StartTls => {
                    return Err(
                        "the server wants TLS: this example has none (sslmode=disable)".into(),
                    );
                }
                other => eprintln!("connection: {other:?}"),
            }
        }
        match sock.read(conn.poll_timeout())? {
            ReadOutcome::Data => conn.handle_input(&mut sock.input, Instant::now())?,
            ReadOutcome::Eof => return Err(conn.handle_eof().into()),
            ReadOutcome::TimedOut => conn.handle_timeout(Instant::now())?,
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: blocking URL [TRANSACTIONS]; the URL names the slot and publication")?;
    let wanted: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let mut cfg = PostgresSourceConfig::from_url(&url)?;
    cfg.ssl_mode = SslMode::Disable;
    cfg.validate()?;

    let mut sock = Socket {
        tcp: TcpStream::connect((cfg.host.as_str(), cfg.port))?,
        input: BytesMut::new(),
        chunk: vec![0; 64 * 1024],
    };
    let mut conn = Connection::new(cfg.connect_params(true), nonce()?, Instant::now())?;
    handshake(&mut sock, &mut conn)?;

    let pipeline = pgcdc_core::assemble::Pipeline::new("blocking", cfg.pipeline_config());
    let mut session = ReplicationSession::new(
        cfg.replication_options(),
        pipeline,
        Box::new(SystemTime::now),
    );
    session.attach(conn, Instant::now())?;
    // Whatever the handshake read past Ready belongs to the session.
    if !sock.input.is_empty() {
        session.handle_input(&mut sock.input, Instant::now())?;
    }
    let mut out = BytesMut::new();
    let mut printed = 0;
    loop {
        while session.poll_transmit(&mut out) {}
        sock.write(&mut out)?;
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Transaction(batch) => {
                    // Printed: handed over to the "application" …
                    for change in &batch.changes {
                        println!(
                            "{} {:?} xid {}",
                            change.kind(),
                            change.element_id(),
                            batch.xid
                        );
                    }
                    session.handed()?;
                    // … and processed: the server may free its WAL.
                    if let Some(lsn) = batch.ack_lsn() {
                        session.ack(lsn);
                        printed += 1;
                        if printed == wanted {
                            session.stop(Instant::now());
                        }
                    }
                }
                SessionEvent::Message(m) => {
                    println!("message {} ({} bytes)", m.prefix, m.content.len());
                    session.handed()?;
                }
                SessionEvent::Stopped => return Ok(()),
                other => eprintln!("session: {other:?}"),
            }
        }
        if let Some(e) = session.take_error() {
            return Err(e.into());
        }
        match sock.read(session.poll_timeout())? {
            ReadOutcome::Data => session.handle_input(&mut sock.input, Instant::now())?,
            ReadOutcome::Eof => return Err(session.handle_eof().into()),
            ReadOutcome::TimedOut => session.handle_timeout(Instant::now())?,
        }
    }
}
