//! The in-memory network: per connection, two bounded byte pipes. Writes are cut at seeded
//! random byte boundaries and reads return one piece or several, so every frame boundary a
//! reader can meet is met.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use pgcdc_core::testing::FakeWalsender;

use super::{SimRuntime, World, XorShift, server};

/// Bytes a pipe holds before its writer waits (a socket's buffers).
pub const PIPE_CAPACITY: usize = 8 * 1024;

/// One direction of a connection.
#[derive(Debug, Default)]
pub struct Pipe {
    pieces: VecDeque<Vec<u8>>,
    len: usize,
    /// The writer closed its side: after the bytes, end of stream.
    pub fin: bool,
}

impl Pipe {
    /// Bytes in flight.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pieces in flight.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Room before the writer has to wait.
    pub fn room(&self) -> usize {
        PIPE_CAPACITY.saturating_sub(self.len)
    }

    /// Queues `data` cut into random pieces.
    pub fn push(&mut self, mut data: &[u8], rng: &mut XorShift) {
        while !data.is_empty() {
            let n = split(data.len(), rng);
            let (piece, rest) = data.split_at(n);
            self.pieces.push_back(piece.to_vec());
            self.len += n;
            data = rest;
        }
    }

    /// Queues `data` as one piece (a write already cut to size).
    pub fn push_piece(&mut self, data: &[u8]) {
        self.pieces.push_back(data.to_vec());
        self.len += data.len();
    }

    /// Reads into `buf`: the first piece (or what fits), and with probability 1/2 each the
    /// following ones.
    pub fn read(&mut self, buf: &mut [u8], rng: &mut XorShift) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            let take = front.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&front[..take]);
            front.drain(..take);
            if front.is_empty() {
                self.pieces.pop_front();
            }
            n += take;
            if !rng.one_in(2) {
                break;
            }
        }
        self.len -= n;
        n
    }

    /// Takes everything in flight.
    pub fn take_all(&mut self) -> Vec<u8> {
        self.len = 0;
        self.pieces.drain(..).flatten().collect()
    }

    /// Drops everything in flight.
    pub fn clear(&mut self) {
        self.pieces.clear();
        self.len = 0;
    }
}

/// How many of `len` bytes go in one piece: all of them half the time, else a uniform
/// `1..=len`.
fn split(len: usize, rng: &mut XorShift) -> usize {
    if len <= 1 || rng.one_in(2) {
        len
    } else {
        1 + rng.below(len as u64) as usize
    }
}

/// One connection: the pipes, who waits on them, and the walsender serving it.
#[derive(Debug)]
pub struct Conn {
    /// Client to server.
    pub to_server: Pipe,
    /// Server to client.
    pub to_client: Pipe,
    /// Reset: every read and write fails, nothing in flight arrives.
    pub reset: bool,
    /// The client dropped its end.
    pub client_gone: bool,
    /// The server side closed (its task ended): client writes vanish.
    pub server_done: bool,
    /// The client wrote after the server closed: the peer answered with a reset, so the
    /// stream ends with ConnectionReset instead of end of stream (as on Linux).
    pub reset_after_close: bool,
    /// The client task waiting to read.
    pub client_reader: Option<Waker>,
    /// The client task waiting to write.
    pub client_writer: Option<Waker>,
    /// The server task, waiting for anything.
    pub server_waker: Option<Waker>,
    /// The walsender of this connection.
    pub walsender: FakeWalsender,
    /// The server task's keepalive timer.
    pub keepalive_timer: Option<(Duration, u64)>,
    /// When the next idle keepalive goes out.
    pub next_keepalive: Option<Duration>,
}

impl Conn {
    /// Wakes the client side (reader and writer).
    pub fn wake_client(&mut self) {
        for w in [self.client_reader.take(), self.client_writer.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
    }

    /// Wakes the server task.
    pub fn wake_server(&mut self) {
        if let Some(w) = self.server_waker.take() {
            w.wake();
        }
    }

    /// Whether the connection is over on the server's side.
    pub fn is_closed(&self) -> bool {
        self.server_done
    }
}

/// Every connection of the run.
#[derive(Debug, Default)]
pub struct Net {
    /// By id, in order of opening.
    pub conns: Vec<Conn>,
    /// Connection attempts, refused ones included.
    pub attempts: u32,
}

impl Net {
    /// One line per connection, for deadlock reports.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (id, c) in self.conns.iter().enumerate() {
            let _ = writeln!(
                s,
                "  conn#{id}: server_done={} client_gone={} reset={} to_server={}B{} to_client={}B{} streaming={} caught_up_sent_lsn={}",
                c.server_done,
                c.client_gone,
                c.reset,
                c.to_server.len(),
                if c.to_server.fin { " fin" } else { "" },
                c.to_client.len(),
                if c.to_client.fin { " fin" } else { "" },
                c.walsender.is_streaming(),
                c.walsender.sent_lsn(),
            );
        }
        s
    }
}

/// Opens a connection (or refuses it, as scripted) and starts its walsender task.
pub fn connect(rt: &SimRuntime, host: &str, port: u16) -> io::Result<SimStream> {
    let id = {
        let mut w = rt.world();
        w.net.attempts += 1;
        if w.faults.refuse > 0 {
            w.faults.refuse -= 1;
            w.log(format!("connect to {host}:{port} refused"));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused by the simulated network",
            ));
        }
        let id = w.net.conns.len();
        let pid = 1000 + i32::try_from(id).unwrap_or(0);
        w.net.conns.push(Conn {
            to_server: Pipe::default(),
            to_client: Pipe::default(),
            reset: false,
            client_gone: false,
            server_done: false,
            reset_after_close: false,
            client_reader: None,
            client_writer: None,
            server_waker: None,
            walsender: FakeWalsender::new(pid),
            keepalive_timer: None,
            next_keepalive: None,
        });
        w.log(format!("conn#{id} opened to {host}:{port}"));
        id
    };
    rt.spawn_named(
        &format!("walsender conn#{id}"),
        server::serve(rt.clone(), id),
    );
    Ok(SimStream { rt: rt.clone(), id })
}

/// The client's end of a connection.
#[derive(Debug)]
pub struct SimStream {
    rt: SimRuntime,
    id: usize,
}

impl SimStream {
    fn with<T>(&self, f: impl FnOnce(&mut Conn, &mut XorShift) -> T) -> T {
        let mut w = self.rt.world();
        let World { net, rng, .. } = &mut *w;
        f(&mut net.conns[self.id], rng)
    }
}

fn reset_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection reset by the simulated network",
    )
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|c, rng| {
            if c.reset {
                return Poll::Ready(Err(reset_error()));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if c.to_client.is_empty() {
                if c.to_client.fin {
                    return Poll::Ready(if c.reset_after_close {
                        Err(reset_error())
                    } else {
                        Ok(0)
                    });
                }
                c.client_reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = c.to_client.read(buf, rng);
            c.wake_server();
            Poll::Ready(Ok(n))
        })
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|c, rng| {
            if c.reset {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write on a reset connection",
                )));
            }
            if c.to_server.fin {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "write after close",
                )));
            }
            if c.server_done {
                // The peer is gone: the write succeeds locally, the peer answers with a reset.
                c.reset_after_close = true;
                return Poll::Ready(Ok(buf.len()));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let room = c.to_server.room();
            if room == 0 {
                c.client_writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = split(buf.len().min(room), rng);
            c.to_server.push_piece(&buf[..n]);
            c.wake_server();
            Poll::Ready(Ok(n))
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|c, _| {
            c.to_server.fin = true;
            c.wake_server();
        });
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.with(|c, _| {
            c.client_gone = true;
            c.to_server.fin = true;
            c.wake_server();
        });
    }
}
