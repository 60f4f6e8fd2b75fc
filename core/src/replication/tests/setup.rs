//! Setup: the commands sent, options by version, and every fatal check.

use std::time::Duration;

use super::*;
use crate::replication::Phase;
use crate::source_config::StreamingMode;

fn opts() -> ReplicationOptions {
    ReplicationOptions {
        tables: vec!["users".into()],
        ..ReplicationOptions::default()
    }
}

fn fails_with(options: ReplicationOptions, server: FakeServer) -> SessionError {
    let mut h = Harness::new(options, server);
    h.connect().unwrap_err()
}

const PK_QUERY: &str = "SELECT c.oid, n.nspname, c.relname, a.attname \
    FROM pg_catalog.pg_publication_tables p \
    JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname \
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
    LEFT JOIN (pg_catalog.pg_index i \
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) \
    ON i.indrelid = c.oid AND i.indisprimary \
    WHERE p.pubname = 'drasi_publication' ORDER BY n.nspname, c.relname, k.ord";

#[test]
fn happy_path_sends_exactly_these_commands() {
    let mut h = Harness::new(opts(), FakeServer::new("15.18 (Debian 15.18-0+deb12u1)"));
    h.connect().unwrap();
    assert_eq!(
        h.queries(),
        [
            "IDENTIFY_SYSTEM",
            "SELECT name, setting FROM pg_catalog.pg_settings WHERE name IN ('wal_level', 'wal_sender_timeout')",
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND (n.nspname, c.relname) \
             IN (('public', 'users'))",
            "SELECT pubname, puballtables FROM pg_catalog.pg_publication WHERE pubname = 'drasi_publication'",
            "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = 'drasi_publication'",
            PK_QUERY,
            crate::replication::user_types_query(150018),
            "SELECT slot_name, plugin, slot_type, database, active, active_pid, confirmed_flush_lsn, \
             wal_status FROM pg_catalog.pg_replication_slots WHERE slot_name = 'drasi_slot'",
            "CREATE_REPLICATION_SLOT \"drasi_slot\" LOGICAL pgoutput (SNAPSHOT 'nothing')",
            "START_REPLICATION SLOT \"drasi_slot\" LOGICAL 0/0 (proto_version '3', \
             publication_names '\"drasi_publication\"', messages 'true')",
        ]
    );
    assert_eq!(
        h.events(),
        [
            SessionEvent::Identified {
                system_id: 7312345678901234567,
                timeline: 1,
                xlogpos: Lsn(0x100_0000),
                server_version_num: 150018,
            },
            SessionEvent::SlotCreated {
                slot_name: "drasi_slot".into(),
                consistent_point: Lsn(0x1000),
                snapshot_name: None,
                temporary: false,
            },
            SessionEvent::StreamingStarted {
                requested_lsn: Lsn::ZERO,
                slot_confirmed_lsn: Some(Lsn(0x1000)),
                proto_version: 3,
            },
        ]
    );
    assert_eq!(h.session.phase(), Phase::Streaming);
    assert_eq!(h.session.server_version_num(), Some(150018));
    assert_eq!(h.session.system_id(), Some(7312345678901234567));
    assert_eq!(h.session.stats().attempts, 1);
    assert!(h.take_sent().is_empty(), "nothing but queries before data");
}

#[test]
fn existing_slot_is_reused() {
    let mut server = FakeServer::new("16.4");
    server.slot = Some(Slot::pgoutput(0x5000));
    let mut h = Harness::new(ReplicationOptions::default(), server);
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        !q.iter().any(|q| q.starts_with("CREATE_REPLICATION_SLOT")),
        "{q:?}"
    );
    assert!(
        !q.iter().any(|q| q.contains("relkind IN")),
        "no tables configured: {q:?}"
    );
    assert!(
        !q.iter().any(|q| q.starts_with("SELECT schemaname")),
        "{q:?}"
    );
    assert_eq!(
        q.last().unwrap(),
        "START_REPLICATION SLOT \"drasi_slot\" LOGICAL 0/0 (proto_version '4', \
         publication_names '\"drasi_publication\"', messages 'true')"
    );
    assert!(h.events().contains(&SessionEvent::StreamingStarted {
        requested_lsn: Lsn::ZERO,
        slot_confirmed_lsn: Some(Lsn(0x5000)),
        proto_version: 4,
    }));
}

#[test]
fn slot_creation_syntax_by_version() {
    for (version, temporary, two_phase, expected) in [
        (
            "13.15",
            false,
            false,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" LOGICAL pgoutput NOEXPORT_SNAPSHOT",
        ),
        (
            "14.12",
            true,
            false,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT",
        ),
        (
            "15.18",
            false,
            true,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" LOGICAL pgoutput (SNAPSHOT 'nothing', TWO_PHASE true)",
        ),
        (
            "16.4",
            true,
            false,
            "CREATE_REPLICATION_SLOT \"drasi_slot\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing')",
        ),
    ] {
        let o = ReplicationOptions {
            temporary_slot: temporary,
            two_phase,
            ..opts()
        };
        let mut h = Harness::new(o, FakeServer::new(version));
        h.connect().unwrap();
        let q = h.queries();
        assert!(q.iter().any(|q| q == expected), "{version}: {q:?}");
    }
}

#[test]
fn start_replication_options_by_version() {
    let full = ReplicationOptions {
        binary: true,
        streaming: StreamingMode::Parallel,
        two_phase: true,
        origin: Some("none".into()),
        ..opts()
    };
    let on15 = ReplicationOptions {
        binary: true,
        streaming: StreamingMode::On,
        two_phase: true,
        ..opts()
    };
    let on14 = ReplicationOptions {
        binary: true,
        streaming: StreamingMode::On,
        messages: false,
        ..opts()
    };
    for (version, o, expected) in [
        (
            "13.15",
            opts(),
            "(proto_version '1', publication_names '\"drasi_publication\"')",
        ),
        (
            "14.12",
            on14,
            "(proto_version '2', publication_names '\"drasi_publication\"', binary 'true', streaming 'on')",
        ),
        (
            "15.18",
            on15,
            "(proto_version '3', publication_names '\"drasi_publication\"', messages 'true', binary 'true', streaming 'on', two_phase 'on')",
        ),
        (
            "16.4",
            full,
            "(proto_version '4', publication_names '\"drasi_publication\"', messages 'true', binary 'true', streaming 'parallel', two_phase 'on', origin 'none')",
        ),
        (
            "15.18",
            ReplicationOptions {
                proto_version: Some(1),
                ..opts()
            },
            "(proto_version '1', publication_names '\"drasi_publication\"', messages 'true')",
        ),
    ] {
        let mut h = Harness::new(o, FakeServer::new(version));
        h.connect().unwrap();
        let q = h.queries();
        let start = q.last().unwrap();
        assert_eq!(
            start,
            &format!("START_REPLICATION SLOT \"drasi_slot\" LOGICAL 0/0 {expected}"),
            "{version}"
        );
    }
}

#[test]
fn options_unsupported_by_the_server_fail_before_sending() {
    for (version, o) in [
        (
            "13.15",
            ReplicationOptions {
                streaming: StreamingMode::On,
                ..opts()
            },
        ),
        (
            "15.18",
            ReplicationOptions {
                streaming: StreamingMode::Parallel,
                ..opts()
            },
        ),
        (
            "14.12",
            ReplicationOptions {
                two_phase: true,
                ..opts()
            },
        ),
        (
            "15.18",
            ReplicationOptions {
                origin: Some("any".into()),
                ..opts()
            },
        ),
    ] {
        let mut h = Harness::new(o, FakeServer::new(version));
        let conn = h.ready_connection();
        let e = h.session.attach(conn, h.now).unwrap_err();
        assert!(matches!(e, SessionError::UnsupportedOption { .. }), "{e}");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("upgrade the server"), "{e}");
        assert!(h.server.queries.is_empty());
        assert_eq!(h.session.phase(), Phase::Detached);
    }
}

#[test]
fn wal_level_must_be_logical() {
    let mut server = FakeServer::new("15.18");
    server.wal_level = "replica".into();
    let e = fails_with(opts(), server);
    assert!(
        matches!(&e, SessionError::WalLevel { actual } if actual == "replica"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("ALTER SYSTEM SET wal_level = logical"),
        "{e}"
    );
    assert!(!e.is_retryable());
}

#[test]
fn missing_publication() {
    let mut server = FakeServer::new("15.18");
    server.publication = None;
    let e = fails_with(opts(), server.clone());
    assert!(matches!(e, SessionError::PublicationMissing { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("CREATE PUBLICATION \"drasi_publication\" FOR TABLE"),
        "{e}"
    );
    assert!(!e.is_retryable());

    // create_publication: FOR TABLE the configured tables …
    let o = ReplicationOptions {
        create_publication: true,
        tables: vec!["users".into(), "s.Orders".into()],
        ..opts()
    };
    server.tables.push(("s".into(), "Orders".into()));
    server.published.push(("s".into(), "Orders".into()));
    let mut h = Harness::new(o, server.clone());
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        q.contains(&"CREATE PUBLICATION \"drasi_publication\" FOR TABLE \"public\".\"users\", \"s\".\"Orders\"".to_owned()),
        "{q:?}"
    );
    assert_eq!(h.session.phase(), Phase::Streaming);

    // … or FOR ALL TABLES when none are configured.
    let o = ReplicationOptions {
        create_publication: true,
        ..ReplicationOptions::default()
    };
    let mut h = Harness::new(o, server);
    h.connect().unwrap();
    let q = h.queries();
    assert!(
        q.contains(&"CREATE PUBLICATION \"drasi_publication\" FOR ALL TABLES".to_owned()),
        "{q:?}"
    );
}

#[test]
fn table_not_in_publication() {
    let mut server = FakeServer::new("15.18");
    server.tables.push(("s".into(), "orders".into()));
    let o = ReplicationOptions {
        tables: vec!["users".into(), "s.orders".into()],
        ..opts()
    };
    let e = fails_with(o.clone(), server.clone());
    match &e {
        SessionError::TablesNotInPublication {
            publication,
            tables,
        } => {
            assert_eq!(publication, "drasi_publication");
            assert_eq!(tables, &["s.orders".to_owned()]);
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string()
            .contains("ALTER PUBLICATION \"drasi_publication\" ADD TABLE \"s\".\"orders\";"),
        "{e}"
    );
    // A FOR ALL TABLES publication has every table.
    server.publication = Some(true);
    let mut h = Harness::new(o.clone(), server.clone());
    h.connect().unwrap();
    // check_tables off skips the checks entirely.
    server.publication = Some(false);
    server.tables.clear();
    let mut h = Harness::new(
        ReplicationOptions {
            check_tables: false,
            ..o
        },
        server,
    );
    h.connect().unwrap();
    assert_eq!(h.session.phase(), Phase::Streaming);
}

#[test]
fn table_that_does_not_exist() {
    let o = ReplicationOptions {
        tables: vec!["users".into(), "nope".into(), "s.Users".into()],
        ..opts()
    };
    let e = fails_with(o, FakeServer::new("15.18"));
    match &e {
        SessionError::TableMissing { tables } => {
            assert_eq!(tables, &["public.nope".to_owned(), "s.Users".to_owned()])
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("do not exist"), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn an_invalidated_slot_is_fatal_and_says_how_to_recover() {
    let mut server = FakeServer::new("15.18");
    server.slot = Some(Slot {
        wal_status: "lost".into(),
        ..Slot::pgoutput(0x1234)
    });
    let e = fails_with(opts(), server);
    assert!(matches!(e, SessionError::SlotInvalidated { .. }), "{e}");
    assert!(!e.is_retryable());
    let text = e.to_string();
    for needle in [
        "invalidated",
        "0/1234",
        "lost",
        "bootstrap again",
        "max_slot_wal_keep_size",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    assert_eq!(
        e.sqlstate().map(|s| s.code().to_owned()),
        Some("55000".to_owned())
    );
}

#[test]
fn a_synced_slot_on_a_standby_is_recognised() {
    let mut server = FakeServer::new("17.2");
    server.slot = Some(Slot {
        synced: true,
        ..Slot::pgoutput(0x1234)
    });
    let e = fails_with(opts(), server);
    assert!(matches!(e, SessionError::SlotSynced { .. }), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("promoted"), "{e}");
}

#[test]
fn slot_of_another_plugin_database_or_type() {
    let check = |slot: Slot, needle: &str| {
        let mut server = FakeServer::new("15.18");
        server.slot = Some(slot);
        let e = fails_with(opts(), server);
        assert!(!e.is_retryable(), "{e}");
        assert!(e.to_string().contains("drasi_slot"), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        e
    };
    let e = check(
        Slot {
            plugin: "wal2json".into(),
            ..Slot::pgoutput(1)
        },
        "pg_drop_replication_slot('drasi_slot')",
    );
    assert!(matches!(e, SessionError::SlotWrongPlugin { .. }));
    let e = check(
        Slot {
            database: "other".into(),
            ..Slot::pgoutput(1)
        },
        "\"other\"",
    );
    assert!(matches!(e, SessionError::SlotWrongDatabase { .. }));
    let e = check(
        Slot {
            slot_type: "physical".into(),
            ..Slot::pgoutput(1)
        },
        "physical",
    );
    assert!(matches!(e, SessionError::SlotWrongType { .. }));
}

#[test]
fn missing_slot_without_create_is_fatal() {
    let o = ReplicationOptions {
        create_slot: false,
        ..opts()
    };
    let e = fails_with(o, FakeServer::new("15.18"));
    assert!(matches!(e, SessionError::SlotMissing { .. }), "{e}");
    assert!(e.to_string().contains("enable create_slot"), "{e}");
    assert!(!e.is_retryable());
}

#[test]
fn active_slot_is_retryable() {
    let mut server = FakeServer::new("15.18");
    server.slot = Some(Slot {
        active_pid: Some(13852),
        ..Slot::pgoutput(1)
    });
    let e = fails_with(opts(), server);
    assert!(
        matches!(
            e,
            SessionError::SlotActive {
                pid: Some(13852),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(e.to_string().contains("13852"), "{e}");

    // Taken between the lookup and START_REPLICATION: 55006 from the server.
    let mut server = FakeServer::new("15.18");
    server.fail(
        "START_REPLICATION",
        "55006",
        "replication slot \"drasi_slot\" is active for PID 4242",
    );
    let e = fails_with(opts(), server);
    assert!(
        matches!(
            e,
            SessionError::SlotActive {
                pid: Some(4242),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_retryable());
}

#[test]
fn raced_slot_creation_looks_up_again() {
    let mut server = FakeServer::new("15.18");
    server.fail(
        "CREATE_REPLICATION_SLOT",
        "42710",
        "replication slot \"drasi_slot\" already exists",
    );
    let mut h = Harness::new(opts(), server);
    h.connect().unwrap();
    let q = h.queries();
    let lookups = q
        .iter()
        .filter(|q| q.contains("pg_replication_slots"))
        .count();
    assert_eq!(lookups, 2, "{q:?}");
    assert_eq!(h.session.phase(), Phase::Streaming);
}

#[test]
fn server_errors_carry_a_hint() {
    let mut server = FakeServer::new("15.18");
    server.fail(
        "SELECT name, setting",
        "42501",
        "permission denied for view pg_settings",
    );
    let e = fails_with(opts(), server);
    assert!(matches!(e, SessionError::Server(_)), "{e}");
    assert!(e.to_string().contains("REPLICATION"), "{e}");
    assert_eq!(
        e.sqlstate().map(|s| s.to_string()).as_deref(),
        Some("42501")
    );
    assert!(!e.is_retryable());
}

#[test]
fn system_identifier_and_timeline_across_attaches() {
    let mut h = Harness::new(opts(), FakeServer::new("15.18"));
    h.stream();
    h.session.detach();
    h.server.timeline = 2;
    h.connect().unwrap();
    let evs = h.events();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            SessionEvent::PositionReset { reason, slot_position: Some(Lsn(0x1000)), .. }
                if reason.contains("timeline changed from 1 to 2")
        )),
        "{evs:?}"
    );
    h.session.detach();
    h.server.system_id = 42;
    let e = h.connect().unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::SystemIdentifierChanged {
                expected: 7312345678901234567,
                found: 42
            }
        ),
        "{e}"
    );
    assert!(!e.is_retryable());
}

#[test]
fn status_interval_follows_wal_sender_timeout() {
    let mut server = FakeServer::new("15.18");
    server.wal_sender_timeout_ms = 6000;
    let mut h = Harness::new(opts(), server);
    h.connect().unwrap();
    assert_eq!(h.session.status_interval(), Duration::from_secs(2));
}

#[test]
fn command_timeout() {
    let mut h = Harness::new(opts(), FakeServer::new("15.18"));
    let conn = h.ready_connection();
    h.session.attach(conn, h.now).unwrap();
    // The server never answers IDENTIFY_SYSTEM.
    let mut out = BytesMut::new();
    while h.session.poll_transmit(&mut out) {}
    let deadline = h.session.poll_timeout().unwrap();
    assert_eq!(deadline, h.now + Duration::from_secs(60));
    h.now += Duration::from_secs(59);
    h.session.handle_timeout(h.now).unwrap();
    h.now += Duration::from_secs(1);
    let e = h.session.handle_timeout(h.now).unwrap_err();
    assert!(matches!(e, SessionError::Timeout { .. }), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("IDENTIFY_SYSTEM"), "{e}");
}

#[test]
fn attach_misuse() {
    let mut h = Harness::new(opts(), FakeServer::new("15.18"));
    // Not a replication connection.
    let p = ConnectParams::new("u")
        .database("app")
        .ssl_mode(SslMode::Disable);
    let c = Connection::new(p, [1; 18], h.now).unwrap();
    assert!(matches!(
        h.session.attach(c, h.now),
        Err(SessionError::Usage(_))
    ));
    h.stream();
    let c = h.ready_connection();
    assert!(matches!(
        h.session.attach(c, h.now),
        Err(SessionError::Usage(_))
    ));
    assert!(matches!(
        h.session.release_snapshot(h.now),
        Err(SessionError::Usage(_))
    ));
    // Invalid options are refused at attach.
    let mut h = Harness::new(
        ReplicationOptions {
            slot_name: "Bad-Name".into(),
            ..opts()
        },
        FakeServer::new("15.18"),
    );
    let c = h.ready_connection();
    let e = h.session.attach(c, h.now).unwrap_err();
    assert!(
        matches!(
            e,
            SessionError::InvalidOption {
                option: "slot_name",
                ..
            }
        ),
        "{e}"
    );
}
