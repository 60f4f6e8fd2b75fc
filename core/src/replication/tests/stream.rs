//! Streaming: keepalives, status updates, flush rules, acknowledgements.

use std::time::Duration;

use super::*;
use crate::assemble::KeySource;
use crate::model::SourceChange;

fn streaming(version: &str) -> Harness {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new(version));
    h.stream();
    h
}

fn flushes(h: &mut Harness) -> Vec<Lsn> {
    h.status_updates().iter().map(|u| u.flush).collect()
}

#[test]
fn a_backlog_pauses_reads_until_the_server_catches_up() {
    use crate::replication::READ_PAUSE;
    let mut h = streaming("15.18");
    assert_eq!(h.session.read_pause(), None, "nothing received yet");
    let sent = 800_000_000_000_000i64;
    // Committed 5 s before the server sent it: a backlog.
    h.feed(&txn_sent_at(700, 0x2100, 0x2130, 1, sent - 5_000_000, sent))
        .unwrap();
    assert_eq!(h.session.read_pause(), Some(READ_PAUSE));
    // Still behind, but by less than CATCH_UP_LAG (20 ms): reads are immediate again.
    h.feed(&txn_sent_at(
        701,
        0x2200,
        0x2230,
        2,
        sent - 2_000,
        sent + 10,
    ))
    .unwrap();
    assert_eq!(h.session.read_pause(), None);
    h.feed(&txn_sent_at(
        702,
        0x2300,
        0x2330,
        3,
        sent - 60_000,
        sent + 20,
    ))
    .unwrap();
    assert_eq!(h.session.read_pause(), Some(READ_PAUSE));
    // A walsender sends keepalives inside a backlog too: they change nothing.
    h.feed(&keepalive_sent_at(Lsn(0x2330), false, sent + 30))
        .unwrap();
    assert_eq!(h.session.read_pause(), Some(READ_PAUSE));
    h.feed(&txn_sent_at(703, 0x2400, 0x2430, 4, sent + 35, sent + 40))
        .unwrap();
    assert_eq!(h.session.read_pause(), None);
    assert_eq!(h.batches().len(), 4, "every transaction delivered");
}

#[test]
fn keepalive_reply_requested_is_answered_at_once() {
    let mut h = streaming("15.18");
    h.feed(&keepalive(Lsn(0x3000), false)).unwrap();
    assert!(h.take_sent().is_empty(), "no reply without a request");
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    let u = h.status_updates();
    assert_eq!(u.len(), 1);
    // Idle and nothing to acknowledge: write = flush = apply = the keepalive's wal_end.
    assert_eq!(u[0].write, Lsn(0x3000));
    assert_eq!(u[0].flush, Lsn(0x3000));
    assert_eq!(u[0].apply, Lsn(0x3000));
    assert!(!u[0].reply_requested);
    let unix_micros = 1_700_000_000_000_000i64;
    assert_eq!(u[0].client_time, unix_micros - 946_684_800_000_000);
    let s = h.session.stats();
    assert_eq!(s.keepalives, 2);
    assert_eq!(s.status_updates_sent, 1);
    assert_eq!(s.flush_lsn, Lsn(0x3000));
}

#[test]
fn status_updates_every_interval_without_input() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    assert_eq!(h.batches(), [(700, 0, true, Some(Lsn(0x2130)))]);
    // The consumer is slow: no input, no ack; the timer alone sends updates.
    h.run_for(Duration::from_secs(9)).unwrap();
    assert!(h.take_sent().is_empty());
    h.run_for(Duration::from_secs(1)).unwrap();
    let u = h.status_updates();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].write, Lsn(0x2130));
    assert_eq!(
        u[0].flush,
        Lsn::ZERO,
        "never past an unacknowledged transaction"
    );
    h.run_for(Duration::from_secs(40)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO; 4]);
    assert_eq!(h.session.stats().status_updates_sent, 5);
    assert_eq!(h.session.stats().lag_bytes, 0x2130);
}

#[test]
fn ack_sends_an_update_soon_and_rate_limited() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    h.batches();
    h.run_for(Duration::from_secs(10)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO]);
    h.advance(Duration::from_secs(1)).unwrap();
    h.session.ack(Lsn(0x2130));
    let due = h.session.poll_timeout().unwrap();
    assert!(due <= h.now, "the last update was long ago: due at once");
    h.advance(Duration::ZERO).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2130)]);
    h.session.ack(Lsn(0x2230));
    // Within ACK_UPDATE_DELAY of the last update: not yet.
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + crate::replication::ACK_UPDATE_DELAY)
    );
    h.advance(Duration::from_millis(50)).unwrap();
    assert!(h.take_sent().is_empty());
    h.advance(Duration::from_millis(50)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2230)]);
    // Acknowledging again changes nothing: no extra update.
    h.session.ack(Lsn(0x2230));
    h.advance(Duration::from_secs(1)).unwrap();
    assert!(h.take_sent().is_empty());
    assert_eq!(h.session.stats().acked_lsn, Lsn(0x2230));
}

#[test]
fn flush_never_passes_unacknowledged_transactions() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    h.feed(&txn(702, 0x2300, 0x2330, &[3])).unwrap();
    assert_eq!(h.batches().len(), 3);
    // An LSN inside the second transaction acknowledges only the first.
    h.session.ack(Lsn(0x2200));
    h.feed(&keepalive(Lsn(0x9000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2130)]);
    h.session.ack(Lsn(0x2330));
    h.feed(&keepalive(Lsn(0x9000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x9000)], "all acknowledged and idle");
}

#[test]
fn acking_more_than_received_is_clamped() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.batches();
    h.session.ack(Lsn(0xFF_FFFF_FF00));
    h.feed(&keepalive(Lsn(0x2130), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2130)]);
}

#[test]
fn flush_follows_keepalive_only_when_nothing_is_open() {
    let mut h = streaming("15.18");
    // A transaction is open (Begin and a change, no Commit yet).
    let mut open = xlog(
        Lsn(0x2000),
        &PgOutputMessage::Begin {
            final_lsn: Lsn(0x2100),
            commit_time: 0,
            xid: Xid(700),
        },
    );
    open.extend(xlog(Lsn::ZERO, &relation()));
    open.extend(xlog(Lsn(0x2008), &insert(1)));
    h.feed(&open).unwrap();
    h.feed(&keepalive(Lsn(0x2050), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO]);
    h.feed(&xlog(Lsn(0x2130), &commit_msg(0x2100, 0x2130)))
        .unwrap();
    assert_eq!(h.batches(), [(700, 0, true, Some(Lsn(0x2130)))]);
    // Delivered, not acknowledged.
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO]);
    h.session.ack(Lsn(0x2130));
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x3000)]);
    // A reply-less keepalive while idle schedules an update soon (it unblocks shutdowns).
    h.feed(&keepalive(Lsn(0x3500), false)).unwrap();
    h.advance(crate::replication::ACK_UPDATE_DELAY).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x3500)]);
}

#[test]
fn flush_stays_below_a_pending_prepare() {
    let o = ReplicationOptions {
        two_phase: true,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.session.ack(Lsn(0x2130));
    let gid = "g1".to_owned();
    let mut prep = xlog(
        Lsn(0x2400),
        &PgOutputMessage::BeginPrepare {
            prepare_lsn: Lsn(0x2500),
            end_lsn: Lsn(0x2530),
            prepare_time: 0,
            xid: Xid(701),
            gid: gid.clone(),
        },
    );
    prep.extend(xlog(Lsn(0x2408), &insert(2)));
    prep.extend(xlog(
        Lsn(0x2530),
        &PgOutputMessage::Prepare {
            flags: 0,
            prepare_lsn: Lsn(0x2500),
            end_lsn: Lsn(0x2530),
            prepare_time: 0,
            xid: Xid(701),
            gid: gid.clone(),
        },
    ));
    h.feed(&prep).unwrap();
    h.feed(&txn(702, 0x2800, 0x2830, &[3])).unwrap();
    assert_eq!(
        h.batches(),
        [
            (700, 0, true, Some(Lsn(0x2130))),
            (702, 0, true, Some(Lsn(0x2830)))
        ]
    );
    h.session.ack(Lsn(0x2830));
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2500)], "capped at the held prepare");
    h.feed(&xlog(
        Lsn(0x2930),
        &PgOutputMessage::CommitPrepared {
            flags: 0,
            commit_lsn: Lsn(0x2900),
            end_lsn: Lsn(0x2930),
            commit_time: 0,
            xid: Xid(701),
            gid,
        },
    ))
    .unwrap();
    assert_eq!(h.batches(), [(701, 0, true, Some(Lsn(0x2930)))]);
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(
        flushes(&mut h),
        [Lsn(0x2500)],
        "the commit prepared is not acknowledged"
    );
    // Reconnecting now: resume after the delivered commit prepared …
    h.session.detach();
    h.connect().unwrap();
    assert!(h.queries().last().unwrap().contains("LOGICAL 0/2930"));
    // … while the flush still holds the prepare for a restart.
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2500)]);
    h.session.ack(Lsn(0x2930));
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x3000)]);
}

#[test]
fn ack_of_a_non_last_chunk_does_not_advance() {
    let mut h = Harness::with_pipeline(
        ReplicationOptions::default(),
        FakeServer::new("15.18"),
        PipelineConfig::default().with_max_batch_changes(2),
    );
    h.stream();
    let t = txn(700, 0x2100, 0x2130, &[1, 2, 3, 4, 5]);
    // Everything but the Commit: two chunks go out early.
    let commit = xlog(Lsn(0x2130), &commit_msg(0x2100, 0x2130));
    let body = &t[..t.len() - commit.len()];
    h.feed(body).unwrap();
    let ev: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Transaction(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|b| b.ack_lsn().is_none()));
    // An application that acknowledges what a chunk carries moves nothing.
    h.session.ack(ev[1].commit_lsn);
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO]);
    h.feed(&commit).unwrap();
    assert_eq!(h.batches(), [(700, 2, true, Some(Lsn(0x2130)))]);
    h.session.ack(Lsn(0x2130));
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x3000)]);
    assert_eq!(h.session.stats().transactions, 1);
    assert_eq!(h.session.stats().changes, 5);
}

#[test]
fn empty_transactions_count_as_acknowledged() {
    let mut h = streaming("14.12");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    // PostgreSQL 14 sends empty transactions; the pipeline skips them.
    h.feed(&txn(701, 0x2200, 0x2230, &[])).unwrap();
    assert_eq!(h.batches().len(), 1);
    // Not acknowledged yet: still held at 0.
    h.feed(&keepalive(Lsn(0x2230), true)).unwrap();
    assert_eq!(flushes(&mut h), [Lsn::ZERO]);
    h.session.ack(Lsn(0x2130));
    h.advance(crate::replication::ACK_UPDATE_DELAY).unwrap();
    assert_eq!(flushes(&mut h), [Lsn(0x2230)]);
}

#[test]
fn primary_keys_from_the_catalog_reach_the_pipeline() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[7])).unwrap();
    assert_eq!(
        h.session.pipeline().key_source(USERS),
        Some(KeySource::PrimaryKey)
    );
    let evs = h.events();
    let Some(SessionEvent::Transaction(b)) = evs.last() else {
        panic!("{evs:?}")
    };
    let SourceChange::Insert { element, .. } = &b.changes[0] else {
        panic!("{:?}", b.changes)
    };
    assert_eq!(&*element.metadata().reference.element_id, "users:7");
}

#[test]
fn logical_messages_are_delivered() {
    let mut h = streaming("15.18");
    h.feed(&xlog(
        Lsn(0x2000),
        &PgOutputMessage::Message {
            xid: None,
            transactional: false,
            lsn: Lsn(0x2000),
            prefix: "app".into(),
            content: bytes::Bytes::from_static(b"hi"),
        },
    ))
    .unwrap();
    let evs = h.events();
    assert!(
        matches!(&evs[..], [SessionEvent::Message(m)] if m.prefix == "app" && &m.content[..] == b"hi"),
        "{evs:?}"
    );
}

#[test]
fn undecodable_data_is_fatal_and_names_the_lsn() {
    let mut h = streaming("15.18");
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    let e = h.feed(&copy_data(b"zgarbage")).unwrap_err();
    assert!(matches!(e, SessionError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("0/2130"), "{e}");
    assert!(!e.is_retryable());

    let mut h = streaming("15.18");
    // A Commit with no Begin breaks the pgoutput flow.
    let e = h
        .feed(&xlog(Lsn(0x2230), &commit_msg(0x2200, 0x2230)))
        .unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::Assemble {
                lsn: Lsn(0x2230),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("0/2230"), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn stats_count_traffic() {
    let mut h = streaming("15.18");
    let t = txn(700, 0x2100, 0x2130, &[1, 2]);
    let k = keepalive(Lsn(0x4000), false);
    let before = h.session.stats().bytes_received;
    h.feed(&t).unwrap();
    h.feed(&k).unwrap();
    let s = h.session.stats();
    assert_eq!(s.bytes_received - before, (t.len() + k.len()) as u64);
    assert_eq!(s.xlog_messages, 5);
    assert_eq!(s.keepalives, 1);
    assert_eq!(s.received_lsn, Lsn(0x2130));
    assert_eq!(s.server_wal_end, Lsn(0x4000));
    assert_eq!(s.transactions, 1);
    assert_eq!(s.changes, 2);
}

#[test]
fn only_the_configured_tables_stream_and_renames_keep_them() {
    let o = ReplicationOptions {
        tables: vec!["users".into()],
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, FakeServer::new("15.18"));
    h.stream();
    // Another published table, `orders`, with its own OID.
    let PgOutputMessage::Relation(users) = relation() else {
        unreachable!()
    };
    let orders = RelationBody {
        oid: Oid(16500),
        name: "orders".into(),
        ..users.clone()
    };
    let order_row = PgOutputMessage::Insert {
        xid: None,
        rel: Oid(16500),
        new: TupleData::from_values([ColumnValue::Text(b"7"), ColumnValue::Text(b"o")]).unwrap(),
    };
    let truncate_both = PgOutputMessage::Truncate {
        xid: None,
        cascade: false,
        restart_identity: false,
        relations: vec![Oid(16500), USERS],
    };
    let renamed = RelationBody {
        name: "members".into(),
        ..users.clone()
    };
    let begin = |xid: u32, at: u64| PgOutputMessage::Begin {
        final_lsn: Lsn(at),
        commit_time: 0,
        xid: Xid(xid),
    };
    let mut t = xlog(Lsn(0x2000), &begin(700, 0x2100));
    t.extend(xlog(Lsn::ZERO, &PgOutputMessage::Relation(users)));
    t.extend(xlog(Lsn::ZERO, &PgOutputMessage::Relation(orders)));
    t.extend(xlog(Lsn(0x2008), &order_row));
    t.extend(xlog(Lsn(0x2010), &insert(1)));
    t.extend(xlog(Lsn(0x2018), &truncate_both));
    // Renamed while streaming: still the configured table.
    t.extend(xlog(Lsn::ZERO, &PgOutputMessage::Relation(renamed)));
    t.extend(xlog(Lsn(0x2020), &insert(2)));
    t.extend(xlog(Lsn(0x2130), &commit_msg(0x2100, 0x2130)));
    h.feed(&t).unwrap();
    let changes: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Transaction(b) => Some(b),
            _ => None,
        })
        .flat_map(|b| b.changes)
        .map(|c| match c {
            SourceChange::Insert { element, .. } => {
                format!("insert {}", element.metadata().reference.element_id)
            }
            SourceChange::Truncate { labels, .. } => format!("truncate {labels:?}"),
            SourceChange::SchemaChange { label, .. } => format!("schema {label}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            "insert users:1",
            "truncate [\"users\"]",
            "schema members",
            "insert members:2"
        ]
    );
}
