//! Reconnects, resume positions, dedupe, snapshot hold, stop.

use std::time::Duration;

use super::*;
use crate::connection::ConnectionError;
use crate::replication::Phase;

fn start_lsn_of(queries: &[String]) -> String {
    let start = queries
        .iter()
        .find(|q| q.starts_with("START_REPLICATION"))
        .expect("START_REPLICATION sent");
    start.split(' ').nth(4).unwrap().to_owned()
}

#[test]
fn reconnect_resumes_after_the_last_delivered_transaction() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    assert_eq!(h.batches().len(), 2);
    h.session.ack(Lsn(0x2130));
    // The connection breaks; nothing of 701 was acknowledged, but it was delivered.
    let e = h.session.handle_eof();
    assert!(e.is_retryable(), "{e}");
    h.session.detach();
    assert_eq!(h.session.phase(), Phase::Detached);
    assert_eq!(h.session.resume_lsn(), Lsn(0x2230));
    h.server.slot.as_mut().unwrap().confirmed = Lsn(0x2130);
    h.connect().unwrap();
    let q = h.queries();
    assert_eq!(start_lsn_of(&q), "0/2230");
    let evs = h.events();
    assert!(
        !evs.iter()
            .any(|e| matches!(e, SessionEvent::ResumeGap { .. })),
        "the slot is behind the resume point, not past it: {evs:?}"
    );
    // A server that re-sends anyway: dropped; the next one is delivered.
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    h.feed(&txn(702, 0x2300, 0x2330, &[3])).unwrap();
    assert_eq!(h.batches(), [(702, 0, true, Some(Lsn(0x2330)))]);
    assert_eq!(h.session.stats().duplicates_dropped, 1);
    assert_eq!(h.session.stats().attempts, 2);
    // Acknowledgement state survived: 701 is still pending.
    h.feed(&keepalive(Lsn(0x2330), true)).unwrap();
    let u = h.status_updates();
    assert_eq!(u[0].flush, Lsn(0x2130));
    h.session.ack(Lsn(0x2330));
    h.feed(&keepalive(Lsn(0x2400), true)).unwrap();
    assert_eq!(h.status_updates()[0].flush, Lsn(0x2400));
}

#[test]
fn reconnect_inside_a_chunked_transaction_continues_with_the_next_chunk() {
    let mut h = Harness::with_pipeline(
        ReplicationOptions::default(),
        FakeServer::new("15.18"),
        PipelineConfig::default().with_max_batch_changes(2),
    );
    h.stream();
    h.feed(&txn(699, 0x1F00, 0x1F30, &[9])).unwrap();
    assert_eq!(h.batches().len(), 1);
    let whole = txn(700, 0x2100, 0x2130, &[1, 2, 3, 4, 5]);
    // Begin, Relation, four inserts: the first chunk (1, 2) goes out at insert 3.
    let cut = {
        let mut v = xlog(
            Lsn(0x2000),
            &PgOutputMessage::Begin {
                final_lsn: Lsn(0x2100),
                commit_time: 0,
                xid: Xid(700),
            },
        );
        v.extend(xlog(Lsn::ZERO, &relation()));
        v.len() + 3 * xlog(Lsn(0x2008), &insert(1)).len()
    };
    h.feed(&whole[..cut]).unwrap();
    assert_eq!(h.batches(), [(700, 0, false, None)]);
    h.session.handle_eof();
    h.session.detach();
    let evs = h.events();
    assert!(
        evs.iter().any(
            |e| matches!(e, SessionEvent::Warning(w) if w.contains("transaction 700 after 1 chunk"))
        ),
        "{evs:?}"
    );
    h.connect().unwrap();
    assert_eq!(start_lsn_of(&h.queries()), "0/1F30");
    // The server sends the whole transaction again; chunk 0 is not repeated.
    h.feed(&whole).unwrap();
    let evs = h.events();
    let chunks: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Transaction(b) => Some((b.chunk_index, b.last_chunk, b.changes.len())),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, [(1, false, 2), (2, true, 1)]);
    h.session.ack(Lsn(0x2130));
    h.feed(&keepalive(Lsn(0x3000), true)).unwrap();
    assert_eq!(h.status_updates()[0].flush, Lsn(0x3000));
}

/// The broken transaction changed the relation's schema: the first pass carries a
/// schema-change entry, the replay does not (the relation cache already has the new schema),
/// so the chunk boundaries shift by one. Every row must still arrive exactly once.
#[test]
fn reconnect_replay_with_shifted_chunk_boundaries_loses_and_repeats_nothing() {
    let mut h = Harness::with_pipeline(
        ReplicationOptions::default(),
        FakeServer::new("15.18"),
        PipelineConfig::default().with_max_batch_changes(2),
    );
    h.stream();
    h.feed(&txn(699, 0x1F00, 0x1F30, &[9])).unwrap();
    assert_eq!(h.batches().len(), 1);
    // The same table with a column added.
    let PgOutputMessage::Relation(mut wider) = relation() else {
        unreachable!()
    };
    wider.columns.push(Column {
        flags: 0,
        name: "age".into(),
        type_oid: Oid(23),
        type_modifier: -1,
    });
    let row = |id: u32| {
        let id = id.to_string();
        PgOutputMessage::Insert {
            xid: None,
            rel: USERS,
            new: TupleData::from_values([
                ColumnValue::Text(id.as_bytes()),
                ColumnValue::Text(b"x"),
                ColumnValue::Text(b"7"),
            ])
            .unwrap(),
        }
    };
    let mut whole = xlog(
        Lsn(0x2000),
        &PgOutputMessage::Begin {
            final_lsn: Lsn(0x2100),
            commit_time: 0,
            xid: Xid(700),
        },
    );
    whole.extend(xlog(Lsn::ZERO, &PgOutputMessage::Relation(wider)));
    let mut cut = 0;
    for id in 1..=5u32 {
        whole.extend(xlog(Lsn(0x2000 + 8 * u64::from(id)), &row(id)));
        if id == 3 {
            cut = whole.len();
        }
    }
    whole.extend(xlog(Lsn(0x2130), &commit_msg(0x2100, 0x2130)));
    let ids = |evs: &[SessionEvent]| -> Vec<String> {
        evs.iter()
            .filter_map(|e| match e {
                SessionEvent::Transaction(b) => Some(b),
                _ => None,
            })
            .flat_map(|b| b.changes.iter())
            .map(|c| {
                c.element_id()
                    .map_or_else(|| c.kind().to_owned(), str::to_owned)
            })
            .collect()
    };
    // First pass: [schema change, row 1] goes out, then the connection breaks.
    h.feed(&whole[..cut]).unwrap();
    let first = ids(&h.events());
    assert_eq!(first, ["schema_change", "users:1"]);
    h.session.handle_eof();
    h.session.detach();
    h.events();
    h.connect().unwrap();
    // Replay: [1, 2], [3, 4], [5] — row 1 is cut, nothing else.
    h.feed(&whole).unwrap();
    let evs = h.events();
    assert_eq!(ids(&evs), ["users:2", "users:3", "users:4", "users:5"]);
    let firsts: Vec<bool> = evs
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Transaction(b) => Some(b.first_chunk),
            _ => None,
        })
        .collect();
    assert!(firsts.iter().all(|f| !f), "{firsts:?}");
}

#[test]
fn resume_after_idle_flush_uses_the_flushed_position() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&keepalive(Lsn(0x5000), true)).unwrap();
    assert_eq!(h.status_updates()[0].flush, Lsn(0x5000));
    h.session.detach();
    h.server.slot.as_mut().unwrap().confirmed = Lsn(0x5000);
    h.connect().unwrap();
    assert_eq!(start_lsn_of(&h.queries()), "0/5000");
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, SessionEvent::ResumeGap { .. }))
    );
}

#[test]
fn start_lsn_and_resume_gap() {
    let o = ReplicationOptions {
        start_lsn: Some(Lsn(0x3000)),
        ..ReplicationOptions::default()
    };
    let mut server = FakeServer::new("16.4");
    server.slot = Some(Slot::pgoutput(0x5000));
    let mut h = Harness::new(o.clone(), server);
    h.connect().unwrap();
    assert_eq!(start_lsn_of(&h.queries()), "0/3000");
    let evs = h.events();
    assert!(
        evs.contains(&SessionEvent::ResumeGap {
            requested: Lsn(0x3000),
            server_start: Lsn(0x5000)
        }),
        "{evs:?}"
    );

    // The slot behind the start position: no gap, and old transactions are dropped.
    let mut server = FakeServer::new("16.4");
    server.slot = Some(Slot::pgoutput(0x1000));
    let mut h = Harness::new(o, server);
    h.connect().unwrap();
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e, SessionEvent::ResumeGap { .. }))
    );
    h.feed(&txn(700, 0x2F00, 0x3000, &[1])).unwrap();
    h.feed(&txn(701, 0x3000, 0x3030, &[2])).unwrap();
    assert_eq!(h.batches(), [(701, 0, true, Some(Lsn(0x3030)))]);
}

#[test]
fn lost_temporary_slot_reports_a_gap() {
    let o = ReplicationOptions {
        temporary_slot: true,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.session.detach();
    // The temporary slot died with the connection; the new one starts later.
    h.server.slot = None;
    h.server.next_consistent_point = Lsn(0x8000);
    h.connect().unwrap();
    let evs = h.events();
    assert!(
        evs.contains(&SessionEvent::ResumeGap {
            requested: Lsn(0x2130),
            server_start: Lsn(0x8000)
        }),
        "{evs:?}"
    );
}

#[test]
fn snapshot_hold_sends_nothing_until_release() {
    let o = ReplicationOptions {
        export_snapshot: true,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, FakeServer::new("15.18"));
    h.connect().unwrap();
    let q = h.queries();
    // The snapshot comes from a temporary slot; the permanent one does not exist yet.
    assert_eq!(
        q.last().unwrap(),
        "CREATE_REPLICATION_SLOT \"drasi_slot_boot\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')"
    );
    assert!(h.server.slot.is_none());
    assert_eq!(h.session.bootstrap_slot(), Some("drasi_slot_boot"));
    let evs = h.events();
    assert!(
        evs.contains(&SessionEvent::SnapshotHeld {
            snapshot_name: "00000003-0000000D-1".into(),
            consistent_point: Lsn(0x1000),
        }),
        "{evs:?}"
    );
    assert_eq!(h.session.phase(), Phase::SnapshotHeld);
    assert_eq!(h.session.poll_timeout(), None);
    h.advance(Duration::from_secs(3600)).unwrap();
    assert!(h.take_sent().is_empty());
    assert!(h.queries().is_empty());

    h.session.release_snapshot(h.now).unwrap();
    h.pump().unwrap();
    // Released: the permanent slot is copied from the temporary one, which is dropped, and
    // streaming starts on the permanent slot at the consistent point.
    let q = h.queries();
    assert_eq!(q.len(), 3, "{q:?}");
    assert_eq!(
        q[0],
        "SELECT slot_name, lsn FROM pg_catalog.pg_copy_logical_replication_slot('drasi_slot_boot', 'drasi_slot', false)"
    );
    assert_eq!(q[1], "DROP_REPLICATION_SLOT \"drasi_slot_boot\"");
    assert!(q[2].starts_with("START_REPLICATION SLOT \"drasi_slot\" LOGICAL 0/1000"));
    assert_eq!(start_lsn_of(&q), "0/1000");
    assert_eq!(
        h.server.slot.as_ref().map(|s| s.confirmed),
        Some(Lsn(0x1000))
    );
    assert!(h.server.bootstrap_slot.is_none());
    assert_eq!(h.session.bootstrap_slot(), None);
    let evs = h.events();
    assert!(
        evs.contains(&SessionEvent::SlotCreated {
            slot_name: "drasi_slot".into(),
            consistent_point: Lsn(0x1000),
            snapshot_name: None,
            temporary: false,
        }),
        "{evs:?}"
    );
    assert!(evs.contains(&SessionEvent::StreamingStarted {
        requested_lsn: Lsn(0x1000),
        slot_confirmed_lsn: Some(Lsn(0x1000)),
        proto_version: 3,
    }));

    // A later reconnect does not export again.
    h.session.detach();
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        !q.iter()
            .any(|q| q.starts_with("DROP") || q.starts_with("CREATE_REPLICATION")),
        "{q:?}"
    );
    assert_eq!(h.session.phase(), Phase::Streaming);
}

#[test]
fn snapshot_export_recreates_an_existing_slot() {
    let o = ReplicationOptions {
        export_snapshot: true,
        snapshot_existing_slot: true,
        ..ReplicationOptions::default()
    };
    let mut server = FakeServer::new("14.12");
    server.slot = Some(Slot::pgoutput(0x500));
    let mut h = Harness::new(o, server);
    h.connect().unwrap();
    let q = h.queries();
    let n = q.len();
    assert_eq!(
        q[n - 2..],
        [
            "DROP_REPLICATION_SLOT \"drasi_slot\"".to_owned(),
            "CREATE_REPLICATION_SLOT \"drasi_slot_boot\" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"
                .to_owned(),
        ]
    );
    assert_eq!(h.session.phase(), Phase::SnapshotHeld);
}

#[test]
fn before_12_or_with_two_phase_the_snapshot_comes_from_the_slot_itself() {
    // No pg_copy_logical_replication_slot before 12; a copy loses two_phase before 17.
    for (version, two_phase, create) in [
        (
            "11.22",
            false,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" LOGICAL pgoutput EXPORT_SNAPSHOT",
        ),
        (
            "15.18",
            true,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" LOGICAL pgoutput (SNAPSHOT 'export', TWO_PHASE true)",
        ),
    ] {
        let o = ReplicationOptions {
            export_snapshot: true,
            two_phase,
            ..ReplicationOptions::default()
        };
        let mut h = Harness::new(o, FakeServer::new(version));
        h.connect().unwrap();
        assert_eq!(h.queries().last().unwrap(), create);
        assert_eq!(h.session.bootstrap_slot(), None);
        h.session.release_snapshot(h.now).unwrap();
        h.pump().unwrap();
        assert!(h.queries()[0].starts_with("START_REPLICATION"));
    }
}

#[test]
fn snapshot_export_reuses_an_existing_slot_unless_asked() {
    let o = ReplicationOptions {
        export_snapshot: true,
        ..ReplicationOptions::default()
    };
    let mut server = FakeServer::new("15.18");
    server.slot = Some(Slot::pgoutput(0x500));
    let mut h = Harness::new(o, server);
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        q.iter().all(|c| !c.starts_with("DROP_REPLICATION_SLOT")
            && !c.starts_with("CREATE_REPLICATION_SLOT")),
        "{q:?}"
    );
    assert!(q.last().unwrap().starts_with("START_REPLICATION"), "{q:?}");
    let mut skipped = false;
    while let Some(ev) = h.session.poll_event() {
        skipped |= matches!(ev, SessionEvent::SnapshotSkipped { .. });
    }
    assert!(skipped);
}

#[test]
fn clean_stop() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.batches();
    h.session.ack(Lsn(0x2130));
    h.session.stop(h.now);
    h.pump().unwrap();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let Frontend::CopyData(p) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(
        decode_status(p).unwrap().flush,
        Lsn(0x2130),
        "final status first"
    );
    assert_eq!(sent[1], Frontend::CopyDone);
    assert_eq!(h.session.phase(), Phase::Stopping);
    assert!(
        h.events().is_empty(),
        "not stopped before the server finishes"
    );

    // Data after stop() is not delivered.
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    h.feed(&copy_done()).unwrap();
    h.feed(&keepalive(Lsn(0x2230), true)).unwrap();
    assert!(h.events().is_empty());
    assert!(h.take_sent().is_empty(), "no reply after CopyDone");
    let mut end = complete("COPY 0");
    end.extend(complete("START_REPLICATION"));
    end.extend(ready());
    h.feed(&end).unwrap();
    assert_eq!(h.take_sent(), [Frontend::Terminate]);
    assert_eq!(h.events(), [SessionEvent::Stopped]);
    assert_eq!(h.session.phase(), Phase::Stopped);
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn stop_times_out_and_other_phases_stop_at_once() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.session.stop(h.now);
    h.pump().unwrap();
    h.take_sent();
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + Duration::from_secs(5))
    );
    h.advance(Duration::from_secs(5)).unwrap();
    assert_eq!(h.take_sent(), [Frontend::Terminate]);
    assert_eq!(h.events(), [SessionEvent::Stopped]);

    // Detached: stopped at once.
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.session.stop(h.now);
    assert_eq!(h.events(), [SessionEvent::Stopped]);
    assert_eq!(h.session.phase(), Phase::Stopped);

    // During the checks: Terminate, stopped.
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    let c = h.ready_connection();
    h.session.attach(c, h.now).unwrap();
    h.session.stop(h.now);
    let mut out = BytesMut::new();
    while h.session.poll_transmit(&mut out) {}
    assert_eq!(
        parse_frontend(&out).unwrap().last(),
        Some(&Frontend::Terminate)
    );
    assert_eq!(h.events(), [SessionEvent::Stopped]);

    // The server closes during the stop (shutdown path): stopped too.
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.session.stop(h.now);
    h.feed(&complete("COPY 0")).unwrap();
    let e = h.session.handle_eof();
    assert!(matches!(
        e,
        SessionError::Connection(ConnectionError::Closed { .. })
    ));
    assert_eq!(h.session.phase(), Phase::Stopped);
    assert_eq!(h.events(), [SessionEvent::Stopped]);
}

#[test]
fn server_ending_the_stream_is_retryable() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    let mut end = copy_done();
    end.extend(complete("COPY 0"));
    end.extend(complete("START_REPLICATION"));
    end.extend(ready());
    let e = h.feed(&end).unwrap_err();
    assert!(matches!(e, SessionError::ServerEndedStream), "{e}");
    assert!(e.is_retryable());

    // An ERROR while streaming (publication dropped, ≤ PG 17) is the server's error.
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    let mut err = error("42704", "publication \"drasi_publication\" does not exist");
    err.extend(ready());
    let e = h.feed(&err).unwrap_err();
    assert!(matches!(e, SessionError::Server(_)), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn server_shutdown_handshake() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.session.ack(Lsn(0x2130));
    // The walsender drains and asks until the flush reaches its sent position.
    h.feed(&keepalive(Lsn(0x2200), true)).unwrap();
    assert_eq!(h.status_updates()[0].flush, Lsn(0x2200));
    // Then COPY 0 and EOF, with no CopyDone and no ReadyForQuery.
    h.feed(&complete("COPY 0")).unwrap();
    h.run_for(Duration::from_secs(30)).unwrap();
    assert!(h.take_sent().is_empty());
    let e = h.session.handle_eof();
    assert!(e.is_retryable(), "{e}");
    h.session.detach();
    h.connect().unwrap();
    assert_eq!(start_lsn_of(&h.queries()), "0/2200");
}

#[test]
fn a_slot_lost_after_streaming_is_fatal_and_never_recreated() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.session.detach();
    // A failover to a server without the slot.
    h.server.slot = None;
    let e = h.connect().unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::SlotLost {
                delivered: Lsn(0x2130),
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("bootstrap again"), "{e}");
    assert!(
        !h.queries()
            .iter()
            .any(|q| q.starts_with("CREATE_REPLICATION_SLOT")),
        "the slot must not be recreated"
    );
}

#[test]
fn a_server_behind_the_resume_point_resets_to_the_slot() {
    let mut h = Harness::new(ReplicationOptions::default(), FakeServer::new("15.18"));
    h.stream();
    h.feed(&txn(700, 0x2100, 0x2130, &[1])).unwrap();
    h.feed(&txn(701, 0x2200, 0x2230, &[2])).unwrap();
    h.batches();
    h.session.detach();
    // A standby that is behind took over; its copy of the slot is at 0/2130.
    h.server.xlogpos = Lsn(0x2180);
    h.server.slot.as_mut().unwrap().confirmed = Lsn(0x2130);
    h.connect().unwrap();
    let evs = h.events();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            SessionEvent::PositionReset {
                previous: Lsn(0x2230),
                slot_position: Some(Lsn(0x2130)),
                ..
            }
        )),
        "{evs:?}"
    );
    assert_eq!(start_lsn_of(&h.queries()), "0/2130");
    // A transaction at a position delivered before is new on this server: not dropped.
    h.feed(&txn(801, 0x2200, 0x2230, &[3])).unwrap();
    assert_eq!(h.batches(), vec![(801, 0, true, Some(Lsn(0x2230)))]);
}
