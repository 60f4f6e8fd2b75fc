//! Walsender payloads: XLogData frames of pgoutput messages, keepalives, and whole
//! transactions of inserts into one table, `public.users (id int4 primary key, name text)`.

use bytes::BytesMut;

use super::backend::copy_data;
use crate::lsn::Lsn;
use crate::pgoutput::{
    Column, ColumnValue, Oid, PgOutputMessage, RelationBody, ReplicaIdentity, ReplicationMessage,
    TupleData, Xid, encode,
};

/// The relation OID of `public.users`.
pub const USERS: Oid = Oid(16402);

/// A CopyData message holding XLogData at `lsn` (start and end) that carries `m`.
pub fn xlog(lsn: Lsn, m: &PgOutputMessage) -> Vec<u8> {
    xlog_sent_at(lsn, m, 0)
}

/// [`xlog`] sent by the server at `send_time` (its clock, µs since 2000-01-01).
pub fn xlog_sent_at(lsn: Lsn, m: &PgOutputMessage, send_time: i64) -> Vec<u8> {
    let mut data = BytesMut::new();
    encode::message(m, &mut data).expect("a test message encodes");
    let mut payload = BytesMut::new();
    encode::replication_message(
        &ReplicationMessage::XLogData {
            wal_start: lsn,
            wal_end: lsn,
            send_time,
            data: data.freeze(),
        },
        &mut payload,
    );
    copy_data(&payload)
}

/// A one-row transaction (as [`txn`]) committed at `commit_time` and sent at `send_time`
/// (both the server's clock, µs since 2000-01-01).
pub fn txn_sent_at(
    xid: u32,
    commit: u64,
    end: u64,
    id: u32,
    commit_time: i64,
    send_time: i64,
) -> Vec<u8> {
    let begin = commit - 0x100;
    let mut v = xlog_sent_at(
        Lsn(begin),
        &PgOutputMessage::Begin {
            final_lsn: Lsn(commit),
            commit_time,
            xid: Xid(xid),
        },
        send_time,
    );
    v.extend(xlog_sent_at(Lsn::ZERO, &relation(), send_time));
    v.extend(xlog_sent_at(Lsn(begin + 8), &insert(id), send_time));
    v.extend(xlog_sent_at(
        Lsn(end),
        &PgOutputMessage::Commit {
            flags: 0,
            commit_lsn: Lsn(commit),
            end_lsn: Lsn(end),
            commit_time,
        },
        send_time,
    ));
    v
}

/// A CopyData message holding a primary keepalive.
pub fn keepalive(wal_end: Lsn, reply: bool) -> Vec<u8> {
    keepalive_sent_at(wal_end, reply, 0)
}

/// [`keepalive`] sent at `send_time` (µs since 2000-01-01).
pub fn keepalive_sent_at(wal_end: Lsn, reply: bool, send_time: i64) -> Vec<u8> {
    let mut payload = BytesMut::new();
    encode::replication_message(
        &ReplicationMessage::Keepalive {
            wal_end,
            send_time,
            reply_requested: reply,
        },
        &mut payload,
    );
    copy_data(&payload)
}

/// The Relation message of `public.users`: `id int4` (the key) and `name text`.
pub fn relation() -> PgOutputMessage {
    PgOutputMessage::Relation(RelationBody {
        xid: None,
        oid: USERS,
        namespace: "public".into(),
        name: "users".into(),
        replica_identity: ReplicaIdentity::Default,
        columns: vec![
            Column {
                flags: 1,
                name: "id".into(),
                type_oid: Oid(23),
                type_modifier: -1,
            },
            Column {
                flags: 0,
                name: "name".into(),
                type_oid: Oid(25),
                type_modifier: -1,
            },
        ],
    })
}

/// An Insert into `users` of the row `(id, 'x')`; its element id is `users:{id}`.
pub fn insert(id: u32) -> PgOutputMessage {
    let id = id.to_string();
    PgOutputMessage::Insert {
        xid: None,
        rel: USERS,
        new: TupleData::from_values([ColumnValue::Text(id.as_bytes()), ColumnValue::Text(b"x")])
            .expect("a two-column tuple encodes"),
    }
}

/// The Commit message of a transaction committed at `commit` and ending at `end`.
pub fn commit_msg(commit: u64, end: u64) -> PgOutputMessage {
    PgOutputMessage::Commit {
        flags: 0,
        commit_lsn: Lsn(commit),
        end_lsn: Lsn(end),
        commit_time: 0,
    }
}

/// What one message of a scripted transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnPart {
    /// Begin.
    Begin,
    /// The Relation message.
    Relation,
    /// The insert of row `id`, the `index`-th of the transaction (from 0).
    Row {
        /// Position in the transaction.
        index: usize,
        /// The row id.
        id: u32,
    },
    /// Commit.
    Commit,
}

/// A whole transaction, one CopyData message per pgoutput message: Begin at
/// `commit - 0x100`, Relation, one insert per id (8 bytes apart), Commit whose XLogData
/// starts at `end` (as a walsender sends it).
pub fn txn_messages(xid: u32, commit: u64, end: u64, ids: &[u32]) -> Vec<(TxnPart, Vec<u8>)> {
    let begin = commit - 0x100;
    let mut v = vec![
        (
            TxnPart::Begin,
            xlog(
                Lsn(begin),
                &PgOutputMessage::Begin {
                    final_lsn: Lsn(commit),
                    commit_time: 0,
                    xid: Xid(xid),
                },
            ),
        ),
        (TxnPart::Relation, xlog(Lsn::ZERO, &relation())),
    ];
    for (index, id) in ids.iter().enumerate() {
        let lsn = Lsn(begin + 8 * (index as u64 + 1));
        v.push((TxnPart::Row { index, id: *id }, xlog(lsn, &insert(*id))));
    }
    v.push((TxnPart::Commit, xlog(Lsn(end), &commit_msg(commit, end))));
    v
}

/// [`txn_messages`] as one byte string.
pub fn txn(xid: u32, commit: u64, end: u64, ids: &[u32]) -> Vec<u8> {
    txn_messages(xid, commit, end, ids)
        .into_iter()
        .flat_map(|(_, m)| m)
        .collect()
}

/// One transaction of a walsender's script: inserts of `ids` into `users`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalTxn {
    /// Transaction id.
    pub xid: u32,
    /// The commit record's LSN (at least `0x100` past the previous transaction's end).
    pub commit: Lsn,
    /// The end of the commit record: what a client acknowledges and resumes from.
    pub end: Lsn,
    /// The row ids inserted, in order.
    pub ids: Vec<u32>,
}

impl WalTxn {
    /// Its messages (see [`txn_messages`]).
    pub fn messages(&self) -> Vec<(TxnPart, Vec<u8>)> {
        txn_messages(self.xid, self.commit.0, self.end.0, &self.ids)
    }
}

/// One server message of a scripted WAL ([`script`]): its bytes, the end LSN of its
/// transaction and its own position.
#[derive(Clone, Debug)]
pub struct WalMessage {
    /// The CopyData frame (an XLogData).
    pub bytes: Vec<u8>,
    /// The end LSN of the transaction it belongs to.
    pub txn_end: Lsn,
    /// The message's own position (a keepalive after it reports at least this).
    pub lsn: Lsn,
}

/// Transactions of `rows[i]` rows each (0: an empty transaction, completed silently) of the
/// table [`relation`], ids 1.. in order, one message per entry; transaction `i` begins at
/// `0x2000 + 0x400 * i`. Returns the messages and the number of rows.
pub fn script(rows: &[u8]) -> (Vec<WalMessage>, u32) {
    let mut out = Vec::new();
    let mut id = 0u32;
    for (i, &n) in rows.iter().enumerate() {
        let i = i as u64;
        let base = 0x2000 + 0x400 * i;
        let commit = base + 0x300;
        let end = commit + 0x30;
        let begin = PgOutputMessage::Begin {
            final_lsn: Lsn(commit),
            commit_time: 0,
            xid: Xid(700 + i as u32),
        };
        let mut push = |bytes: Vec<u8>, lsn: u64| {
            out.push(WalMessage {
                bytes,
                txn_end: Lsn(end),
                lsn: Lsn(lsn),
            });
        };
        push(xlog(Lsn(base), &begin), base);
        push(xlog(Lsn::ZERO, &relation()), base);
        for r in 0..u64::from(n) {
            id += 1;
            push(
                xlog(Lsn(base + 8 * (r + 1)), &insert(id)),
                base + 8 * (r + 1),
            );
        }
        push(xlog(Lsn(end), &commit_msg(commit, end)), end);
    }
    (out, id)
}
