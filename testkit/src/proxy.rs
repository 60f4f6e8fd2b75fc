//! A TCP proxy that can cut, stall, delay and refuse connections.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long to wait for the target when forwarding a new connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often stalled or delayed forwarders check whether they should go on.
const POLL: Duration = Duration::from_millis(5);

/// A fault-injecting TCP proxy on `127.0.0.1`, forwarding every accepted connection to a target
/// (typically [`Cluster::addr`](crate::Cluster::addr)).
///
/// Each connection is forwarded by two threads, one per direction. Faults apply to every
/// connection, current and future:
///
/// - [`cut_all`](FaultProxy::cut_all) shuts down every current connection, both sides;
/// - [`set_stalled`](FaultProxy::set_stalled) stops forwarding bytes without closing anything;
/// - [`set_delay`](FaultProxy::set_delay) delays each forwarded chunk;
/// - [`set_refuse`](FaultProxy::set_refuse) closes new connections right after accepting them.
///
/// Dropping the proxy stops listening and cuts every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    stalled: AtomicBool,
    refuse: AtomicBool,
    delay_nanos: AtomicU64,
    accepted: AtomicU64,
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Connection>>,
}

#[derive(Debug)]
struct Connection {
    client: TcpStream,
    server: TcpStream,
    cut: Arc<AtomicBool>,
}

impl Connection {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::SeqCst))
    }
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1:<free port>` that forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fault-proxy-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, target, shared))?
        };
        Ok(FaultProxy {
            addr,
            target,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the proxy listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Shuts down every current connection, both directions, on both sides (the client sees
    /// end-of-file or a reset). New connections are still accepted.
    pub fn cut_all(&self) {
        let connections: Vec<Connection> =
            self.shared.connections().drain().map(|(_, c)| c).collect();
        for connection in &connections {
            connection.cut();
        }
    }

    /// While `true`, no bytes are forwarded in either direction; connections stay open.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While `true`, new connections are accepted and immediately closed.
    pub fn set_refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// Delays every forwarded chunk of bytes by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos.store(nanos, Ordering::SeqCst);
    }

    /// How many connections the proxy has accepted, including refused ones.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are currently being forwarded.
    pub fn active_connections(&self) -> usize {
        self.shared.connections().len()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock `accept`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.cut_all();
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let client = match incoming {
            Ok(client) => client,
            Err(_) => {
                // E.g. EMFILE or ECONNABORTED: back off briefly and go on.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.refuse.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        // On error (could not clone the sockets or spawn threads) the connection is closed.
        let _ = forward(client, server, &shared);
    }
}

/// Registers a connection and starts its two forwarding threads.
fn forward(client: TcpStream, server: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let cut = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));
    let connection = Connection {
        client: client.try_clone()?,
        server: server.try_clone()?,
        cut: Arc::clone(&cut),
    };
    let upstream = Pump {
        from: client.try_clone()?,
        to: server.try_clone()?,
        id,
        cut: Arc::clone(&cut),
        finished: Arc::clone(&finished),
        shared: Arc::clone(shared),
    };
    let downstream = Pump {
        from: server,
        to: client,
        id,
        cut,
        finished,
        shared: Arc::clone(shared),
    };
    shared.connections().insert(id, connection);
    let spawned = thread::Builder::new()
        .name(format!("fault-proxy-{id}-up"))
        .spawn(move || upstream.run());
    if let Err(err) = spawned {
        if let Some(connection) = shared.connections().remove(&id) {
            connection.cut();
        }
        return Err(err);
    }
    thread::Builder::new()
        .name(format!("fault-proxy-{id}-down"))
        .spawn(move || downstream.run())
        .map(drop)
        .inspect_err(|_| {
            if let Some(connection) = shared.connections().remove(&id) {
                connection.cut();
            }
        })
}

/// Forwards one direction of one connection.
struct Pump {
    from: TcpStream,
    to: TcpStream,
    id: u64,
    cut: Arc<AtomicBool>,
    finished: Arc<AtomicU64>,
    shared: Arc<Shared>,
}

impl Pump {
    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst) || self.shared.stop.load(Ordering::SeqCst)
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match self.from.read(&mut buf) {
                Ok(0) => {
                    // Half-close: pass the end-of-file on.
                    let _ = self.to.shutdown(Shutdown::Write);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.abort();
                    break;
                }
            };
            while self.shared.stalled.load(Ordering::SeqCst) && !self.is_cut() {
                thread::sleep(POLL);
            }
            let delay = self.shared.delay();
            if !delay.is_zero() {
                let mut left = delay;
                while !left.is_zero() && !self.is_cut() {
                    let step = left.min(POLL);
                    thread::sleep(step);
                    left -= step;
                }
            }
            if self.is_cut() {
                break;
            }
            if self.to.write_all(&buf[..n]).is_err() {
                self.abort();
                break;
            }
        }
        // The second direction to finish unregisters the connection.
        if self.finished.fetch_add(1, Ordering::SeqCst) == 1 {
            self.shared.connections().remove(&self.id);
        }
    }

    /// An error on one side: close both sides.
    fn abort(&self) {
        let _ = self.from.shutdown(Shutdown::Both);
        let _ = self.to.shutdown(Shutdown::Both);
    }
}
