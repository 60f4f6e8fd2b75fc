//! Scaffolding for tests of pgcdc and of code built on it (cargo feature `testing`): a
//! scripted fake walsender, byte for byte.
//!
//! | item | holds |
//! |---|---|
//! | [`backend`] | backend message encoders: ReadyForQuery, result sets, errors, CopyBoth … |
//! | [`frontend`] | frontend message parsing: startup packet, queries, CopyData, status updates |
//! | [`wal`] | walsender payloads: XLogData of pgoutput messages, keepalives, transactions of `users` |
//! | [`FakeServer`] | the catalog, the slot and the WAL script; answers the session's queries |
//! | [`FakeWalsender`] | one connection's walsender: a sans-IO machine from client bytes to server bytes |
//!
//! Like the rest of the core, nothing here opens a socket, reads a clock or awaits: a harness
//! moves the bytes and decides when time passes.
//!
//! A script the encoders cannot encode (a message over 2 GiB, a row of 32768 columns) is a
//! bug in the test, reported by a panic.
#![allow(clippy::expect_used)]

pub mod backend;
pub mod frontend;
mod server;
pub mod wal;
mod walsender;

#[cfg(test)]
mod tests;

pub use frontend::{Frontend, FrontendError};
pub use server::{FakeServer, QueryCut, Slot};
pub use wal::{TxnPart, WalTxn};
pub use walsender::{FakeWalsender, Outgoing, Sent, WalsenderEvent};
