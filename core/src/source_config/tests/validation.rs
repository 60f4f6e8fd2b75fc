//! Configuration validation: every field that can be wrong is named, with its fix.

use super::*;

// ---- validation ----

#[test]
fn error_display_format() {
    let mut c = valid();
    c.slot_name = "My-Slot".into();
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "invalid config field `slot_name`: \"My-Slot\" is not a valid replication slot name; \
         use lower-case letters, digits and underscores (at most 63 bytes)"
    );
}

#[test]
fn connection_field_errors() {
    let cases: Vec<(&str, Mutation)> = vec![
        ("host", Box::new(|c| c.host.clear())),
        ("host", Box::new(|c| c.host = "a\0b".into())),
        ("host", Box::new(|c| c.host = "a,b".into())),
        ("port", Box::new(|c| c.port = 0)),
        ("database", Box::new(|c| c.database.clear())),
        ("database", Box::new(|c| c.database = "d\0".into())),
        ("user", Box::new(|c| c.user.clear())),
        (
            "password",
            Box::new(|c| c.password = Password::new(*b"a\0b")),
        ),
        (
            "application_name",
            Box::new(|c| c.application_name = "\0".into()),
        ),
        (
            "ssl_root_cert",
            Box::new(|c| c.ssl_root_cert = Some(PathBuf::new())),
        ),
        (
            "channel_binding",
            Box::new(|c| {
                c.channel_binding = ChannelBinding::Require;
                c.ssl_mode = SslMode::Disable;
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut c = valid();
        mutate(&mut c);
        assert_eq!(field_of(&c), field);
    }
    // The password never appears in validation messages.
    let mut c = valid();
    c.password = Password::new(*b"hunter2\0");
    assert!(!c.validate().unwrap_err().to_string().contains("hunter2"));
}

#[test]
fn verify_modes_need_a_root_file_or_system() {
    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let mut c = valid();
        c.ssl_mode = mode;
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "ssl_root_cert", "{mode}");
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        c.ssl_root_cert = Some(PathBuf::from("/etc/ca.pem"));
        c.validate().unwrap();
        c.ssl_root_cert = Some(PathBuf::from("system"));
        c.validate().unwrap();
    }
    // "system" needs TLS.
    let mut c = valid();
    c.ssl_mode = SslMode::Disable;
    c.ssl_root_cert = Some(PathBuf::from("system"));
    assert_eq!(field_of(&c), "ssl_root_cert");
}

#[test]
fn slot_and_publication_names() {
    for bad in [
        "",
        "My_Slot",
        "my-slot",
        "slot.name",
        "ünï",
        &"a".repeat(64),
    ] {
        let mut c = valid();
        c.slot_name = bad.into();
        assert_eq!(field_of(&c), "slot_name", "{bad:?}");
    }
    for good in ["a", "drasi_slot", "_1", &"a".repeat(63)] {
        assert!(is_valid_slot_name(good), "{good:?}");
    }
    for bad in ["", "p\0", &"p".repeat(64)] {
        let mut c = valid();
        c.publication_name = bad.into();
        assert_eq!(field_of(&c), "publication_name", "{bad:?}");
    }
    let mut c = valid();
    c.publication_name = "My Publication".into();
    c.validate().unwrap();
}

#[test]
fn slot_options() {
    let mut c = valid();
    c.temporary_slot = true;
    c.create_slot = false;
    assert_eq!(field_of(&c), "temporary_slot");
    let mut c = valid();
    c.temporary_slot = true;
    c.start_lsn = Some(Lsn(5));
    assert_eq!(field_of(&c), "start_lsn");
    c.start_lsn = Some(Lsn::ZERO);
    c.validate().unwrap();
    let mut c = valid();
    c.start_lsn = Some(Lsn(5));
    c.validate().unwrap();
}

#[test]
fn table_names() {
    let p = |s: &str| TableName::parse(s);
    assert_eq!(
        p("users").unwrap(),
        TableName {
            schema: None,
            name: "users".into()
        }
    );
    assert_eq!(
        p("sales.Orders").unwrap(),
        TableName {
            schema: Some("sales".into()),
            name: "Orders".into()
        }
    );
    assert_eq!(
        p(r#""my.schema"."say ""hi""""#).unwrap(),
        TableName {
            schema: Some("my.schema".into()),
            name: r#"say "hi""#.into()
        }
    );
    for bad in [
        "",
        ".t",
        "s.",
        "a.b.c",
        "\"unterminated",
        "a\"b",
        "\"x\"y",
        " t",
        "t\0",
        "\"\"",
    ] {
        assert!(p(bad).is_err(), "{bad:?}");
    }
    assert!(p(&"t".repeat(64)).is_err());
    assert_eq!(p("s.t").unwrap().to_string(), "s.t");
}

#[test]
fn tables_and_table_keys() {
    let with = |tables: &[&str], keys: Vec<TableKeyConfig>| {
        let mut c = valid();
        c.tables = tables.iter().map(|s| s.to_string()).collect();
        c.table_keys = keys;
        c
    };
    let k = |t: &str| TableKeyConfig::new(t, ["id"]);
    // Matching rules: bare key matches any schema; bare table means public.
    with(&["t"], vec![k("public.t")]).validate().unwrap();
    with(&["public.t"], vec![k("t")]).validate().unwrap();
    with(&["s.t"], vec![k("t")]).validate().unwrap();
    with(&[], vec![k("anything")]).validate().unwrap();
    assert_eq!(
        field_of(&with(&["t"], vec![k("s.t")])),
        "table_keys[0].table"
    );
    assert_eq!(
        field_of(&with(&["a", "b"], vec![k("a"), k("c")])),
        "table_keys[1].table"
    );
    assert_eq!(field_of(&with(&["a", ""], vec![])), "tables[1]");
    assert_eq!(field_of(&with(&["a", "public.a"], vec![])), "tables[1]");
    assert_eq!(
        field_of(&with(&[], vec![k("a"), k("a")])),
        "table_keys[1].table"
    );
    assert_eq!(field_of(&with(&[], vec![k("a..b")])), "table_keys[0].table");
    assert_eq!(
        field_of(&with(
            &[],
            vec![TableKeyConfig::new("a", Vec::<String>::new())]
        )),
        "table_keys[0].key_columns"
    );
    assert_eq!(
        field_of(&with(&[], vec![TableKeyConfig::new("a", ["id", "id"])])),
        "table_keys[0].key_columns"
    );
    assert_eq!(
        field_of(&with(&[], vec![TableKeyConfig::new("a", [""])])),
        "table_keys[0].key_columns"
    );
    let e = with(&["t"], vec![k("s.t")]).validate().unwrap_err();
    assert!(e.message.contains("\"s.t\"") && !e.hint.is_empty(), "{e}");
}

#[test]
fn pgoutput_option_errors() {
    let check = |f: &dyn Fn(&mut PostgresSourceConfig)| {
        let mut c = valid();
        f(&mut c);
        c.validate().map_err(|e| e.field.into_owned())
    };
    assert_eq!(
        check(&|c| c.proto_version = Some(0)),
        Err("proto_version".into())
    );
    assert_eq!(
        check(&|c| c.proto_version = Some(5)),
        Err("proto_version".into())
    );
    assert_eq!(
        check(&|c| {
            c.proto_version = Some(1);
            c.streaming = StreamingMode::On;
        }),
        Err("proto_version".into())
    );
    assert_eq!(
        check(&|c| {
            c.proto_version = Some(3);
            c.streaming = StreamingMode::Parallel;
        }),
        Err("proto_version".into())
    );
    assert_eq!(
        check(&|c| {
            c.proto_version = Some(2);
            c.two_phase = true;
        }),
        Err("proto_version".into())
    );
    assert_eq!(
        check(&|c| {
            c.proto_version = Some(2);
            c.streaming = StreamingMode::On;
        }),
        Ok(())
    );
    assert_eq!(
        check(&|c| {
            c.proto_version = Some(4);
            c.streaming = StreamingMode::Parallel;
            c.two_phase = true;
        }),
        Ok(())
    );
    assert_eq!(
        check(&|c| c.streaming = StreamingMode::Parallel),
        Ok(()),
        "unset version: chosen by the session"
    );
    assert_eq!(
        check(&|c| c.origin = Some("all".into())),
        Err("origin".into())
    );
    assert_eq!(check(&|c| c.origin = Some("any".into())), Ok(()));
    assert_eq!(check(&|c| c.origin = Some("none".into())), Ok(()));
}

#[test]
fn delivery_and_reconnect_errors() {
    let check = |f: &dyn Fn(&mut PostgresSourceConfig)| {
        let mut c = valid();
        f(&mut c);
        c.validate().map_err(|e| e.field.into_owned())
    };
    let bad = |field: &str| Err::<(), String>(field.into());
    assert_eq!(
        check(&|c| c.status_interval_ms = 99),
        bad("status_interval_ms")
    );
    assert_eq!(
        check(&|c| c.status_interval_ms = 3_600_001),
        bad("status_interval_ms")
    );
    assert_eq!(check(&|c| c.status_interval_ms = 100), Ok(()));
    assert_eq!(
        check(&|c| c.max_batch_changes = 0),
        bad("max_batch_changes")
    );
    assert_eq!(
        check(&|c| c.dispatch_buffer_capacity = 0),
        bad("dispatch_buffer_capacity")
    );
    assert_eq!(
        check(&|c| c.reconnect.initial_delay_ms = 0),
        bad("reconnect.initial_delay_ms")
    );
    assert_eq!(
        check(&|c| c.reconnect.max_delay_ms = 0),
        bad("reconnect.max_delay_ms")
    );
    assert_eq!(
        check(&|c| c.reconnect.initial_delay_ms = 70_000),
        bad("reconnect.initial_delay_ms")
    );
    assert_eq!(check(&|c| c.reconnect.max_attempts = Some(0)), Ok(()));
    assert_eq!(
        check(&|c| c.bootstrap = BootstrapMode::Jsonl { paths: vec![] }),
        bad("bootstrap")
    );
}

#[test]
fn validation_errors_lists_all() {
    let c = PostgresSourceConfig {
        port: 0,
        slot_name: "X".into(),
        max_batch_changes: 0,
        ..PostgresSourceConfig::default()
    };
    let fields: Vec<_> = c
        .validation_errors()
        .into_iter()
        .map(|e| e.field.into_owned())
        .collect();
    assert_eq!(
        fields,
        ["port", "database", "user", "slot_name", "max_batch_changes"]
    );
}

#[test]
fn max_frame_len_is_validated_and_passed_on() {
    let mut c = valid();
    assert_eq!(c.max_frame_len, crate::wire::DEFAULT_MAX_FRAME_LEN);
    c.max_frame_len = 1 << 20;
    c.validate().unwrap();
    assert_eq!(c.connect_params(true).max_frame_len, 1 << 20);
    for bad in [0, 1000, (1 << 30) + 1] {
        c.max_frame_len = bad;
        assert_eq!(field_of(&c), "max_frame_len", "{bad}");
    }
}
