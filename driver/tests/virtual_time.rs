//! The driver in virtual time against the core's scripted fake walsender: every row exactly
//! once and in order, and a flush that never passes what the application acknowledged
//! (Manual) or was handed (OnDelivery), with the connection cut at every server message and
//! at named points (the slot's creation, mid-transaction, between chunks, a full subscriber
//! queue, right after a status update), followed or not by refused connections.
//!
//! Every run is deterministic: a failure names its seed and fault, and running that case
//! again replays it exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgcdc_core::source_config::AckMode;
use pgcdc_core::testing::{FakeServer, QueryCut};
use pgcdc_driver::Runtime;
use sim::net::Pipe;
use sim::scenario::{Case, ConsumerPlan, FirstCommit, Outcome, run};
use sim::server::{CutKind, Fault, Trigger};
use sim::{SimRuntime, XorShift};

/// Runs every case; fails listing each failing case with its first violations.
fn run_all(what: &str, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| run(case))) {
            Ok(o) => o,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push((
                    case.describe(),
                    vec![format!("panicked: {text}")],
                    Vec::new(),
                ));
                continue;
            }
        };
        let mut v = outcome.violations(case);
        if !outcome.unfired.is_empty() {
            v.push(format!(
                "harness: the planned fault never fired: {:?}",
                outcome.unfired
            ));
        }
        if !v.is_empty() {
            // PGCDC_SIM_TRACE=1 prints the whole trace of the first failing run.
            if failures.is_empty() && std::env::var_os("PGCDC_SIM_TRACE").is_some() {
                eprintln!(
                    "trace of {}:\n{}",
                    case.describe(),
                    outcome.trace.join("\n")
                );
            }
            failures.push((case.describe(), v, outcome.fired.clone()));
        }
    }
    if failures.is_empty() {
        return;
    }
    let mut report = format!(
        "{what}: {} of {} runs broke a guarantee\n",
        failures.len(),
        cases.len()
    );
    // PGCDC_SIM_ALL=1 lists every failing run, not only the first ones.
    let shown = if std::env::var_os("PGCDC_SIM_ALL").is_some() {
        failures.len()
    } else {
        12
    };
    for (case, v, fired) in failures.iter().take(shown) {
        report.push_str(&format!("- {case} (fired: {fired:?})\n"));
        for line in v.iter().take(3) {
            report.push_str(&format!("    {line}\n"));
        }
    }
    if failures.len() > shown {
        report.push_str(&format!("  … and {} more\n", failures.len() - shown));
    }
    panic!("{report}");
}

fn fin(trigger: Trigger) -> Fault {
    Fault {
        trigger,
        kind: CutKind::Fin,
        then_refuse: 0,
    }
}

fn reset(trigger: Trigger) -> Fault {
    Fault {
        trigger,
        kind: CutKind::Reset,
        then_refuse: 0,
    }
}

fn baseline(seed: u64, ack: AckMode) -> Outcome {
    let case = Case::new(seed, ack);
    let outcome = run(&case);
    let v = outcome.violations(&case);
    assert!(v.is_empty(), "{}: fault-free run: {v:#?}", case.describe());
    outcome
}

// ------------------------------------------------------------------ the harness itself

#[test]
#[should_panic(expected = "deadlock")]
fn the_executor_reports_a_deadlock() {
    let rt = SimRuntime::new(1, FakeServer::new("15.4"));
    rt.spawn_named("stuck", std::future::pending::<()>());
    rt.block_on(std::future::pending::<()>());
}

#[test]
fn virtual_time_jumps_to_the_earliest_timer() {
    let rt = SimRuntime::new(1, FakeServer::new("15.4"));
    let t0 = rt.now();
    let order = Arc::new(Mutex::new(Vec::new()));
    for (name, secs) in [("a", 5), ("b", 3), ("c", 3)] {
        let (rt2, order) = (rt.clone(), Arc::clone(&order));
        rt.spawn_named(name, async move {
            rt2.sleep(Duration::from_secs(secs)).await;
            order.lock().unwrap().push((name, rt2.elapsed()));
        });
    }
    rt.block_on(rt.sleep(Duration::from_millis(10_000)));
    assert_eq!(
        *order.lock().unwrap(),
        [
            ("b", Duration::from_secs(3)),
            ("c", Duration::from_secs(3)),
            ("a", Duration::from_secs(5))
        ]
    );
    assert_eq!(rt.now() - t0, Duration::from_secs(10));
    assert_eq!(rt.wall_clock(), sim::wall_epoch() + Duration::from_secs(10));
    // A sleep ends on a whole virtual millisecond, never early.
    rt.block_on(rt.sleep(Duration::from_micros(1500)));
    assert_eq!(rt.elapsed(), Duration::from_millis(10_002));
}

#[test]
fn the_network_splits_writes_and_keeps_every_byte() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut split = 0;
    for seed in 0..20 {
        let mut rng = XorShift::new(seed);
        let mut pipe = Pipe::default();
        pipe.push(&data, &mut rng);
        if pipe.pieces() > 1 {
            split += 1;
        }
        let mut got = Vec::new();
        while !pipe.is_empty() {
            let mut buf = vec![0; 1 + rng.below(3000) as usize];
            let n = pipe.read(&mut buf, &mut rng);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, data, "seed {seed}");
    }
    assert!(split > 10, "writes are split: {split} of 20 seeds");
}

#[test]
fn fault_free_runs_hold_every_guarantee() {
    let mut cases = Vec::new();
    for seed in [1, 2, 3] {
        for ack in [AckMode::OnDelivery, AckMode::Manual] {
            for capacity in [1, 3] {
                let mut c = Case::new(seed, ack);
                c.capacity = capacity;
                cases.push(c);
            }
        }
    }
    let mut quiet = Case::new(4, AckMode::Manual);
    quiet.consumers = vec![ConsumerPlan {
        stall_every: 0,
        ..ConsumerPlan::default()
    }];
    cases.push(quiet);
    let mut big = Case::new(5, AckMode::OnDelivery);
    big.max_batch = 1000;
    cases.push(big);
    run_all("fault-free", &cases);
}

#[test]
fn fault_free_run_streams_and_confirms() {
    let o = baseline(7, AckMode::Manual);
    assert_eq!(
        o.consumers[0].batches.len(),
        30,
        "10 transactions of 3 chunks"
    );
    assert!(
        o.statuses.len() > 10,
        "status updates: {}",
        o.statuses.len()
    );
    assert!(
        o.consumers[0]
            .batches
            .iter()
            .all(|b| b.ids.len() == if b.last { 5 } else { 10 }),
        "chunks of 10, 10, 5"
    );
    assert_eq!(o.final_confirmed, o.script.last().map(|t| t.end));
    assert!(
        o.trace.iter().any(|l| l.contains("Keepalive")),
        "idle keepalives went out"
    );
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let mut lagging = Case::new(11, AckMode::Manual).with_fault(fin(Trigger::AfterRow {
        xid: 703,
        index: 12,
    }));
    lagging.consumers[0].ack_lag = 1;
    let mut two = Case::new(12, AckMode::Manual).with_fault(reset(Trigger::QueueFull(2)));
    two.consumers.push(ConsumerPlan::default());
    let refused = Case::new(13, AckMode::OnDelivery).with_fault(Fault {
        then_refuse: 3,
        ..reset(Trigger::AfterMessage(150))
    });
    for case in [lagging, two, refused] {
        let a = run(&case);
        let b = run(&case);
        assert_eq!(a.fired.len(), 1, "{}: {:?}", case.describe(), a.fired);
        assert!(a.trace == b.trace, "{}: two runs differ", case.describe());
    }
}

#[test]
fn faults_fire_where_scripted() {
    let case = Case::new(12, AckMode::OnDelivery).with_fault(Fault {
        then_refuse: 2,
        ..reset(Trigger::AfterMessage(40))
    });
    let o = run(&case);
    assert_eq!(o.fired.len(), 1, "{:?}", o.fired);
    let cut = o
        .trace
        .iter()
        .position(|l| l.contains("cut (Reset)"))
        .unwrap();
    assert!(
        o.trace[cut - 2].contains("sent #40"),
        "{:?}",
        &o.trace[cut - 3..=cut]
    );
    let refused = o
        .trace
        .iter()
        .filter(|l| l.contains("connect to") && l.ends_with("refused"))
        .count();
    assert_eq!(refused, 2, "connections refused after the cut");
    assert!(o.status.reconnects >= 3, "{:?}", o.status);
}

// ------------------------------------------------------- a cut after every server message

fn every_message(ack: AckMode, kind: CutKind) {
    let base = baseline(100, ack);
    let cases: Vec<Case> = (1..=base.messages_sent)
        .map(|k| {
            Case::new(100 + k, ack).with_fault(Fault {
                trigger: Trigger::AfterMessage(k),
                kind,
                then_refuse: u32::from(k % 5 == 0),
            })
        })
        .collect();
    run_all(
        &format!(
            "{ack:?}, {kind:?} after each of {} server messages",
            base.messages_sent
        ),
        &cases,
    );
}

#[test]
fn cut_after_every_server_message_manual() {
    every_message(AckMode::Manual, CutKind::Fin);
}

#[test]
fn cut_after_every_server_message_on_delivery() {
    every_message(AckMode::OnDelivery, CutKind::Fin);
}

#[test]
fn reset_after_every_server_message_manual() {
    every_message(AckMode::Manual, CutKind::Reset);
}

#[test]
fn reset_after_every_server_message_on_delivery() {
    every_message(AckMode::OnDelivery, CutKind::Reset);
}

// --------------------------------------------------------------------- named fault points

fn named_triggers() -> Vec<Trigger> {
    vec![
        Trigger::Query("IDENTIFY_SYSTEM", QueryCut::Before),
        Trigger::Query("CREATE_REPLICATION_SLOT", QueryCut::Before),
        Trigger::Query("CREATE_REPLICATION_SLOT", QueryCut::After),
        Trigger::Query("START_REPLICATION", QueryCut::Before),
        Trigger::Query("START_REPLICATION", QueryCut::After),
        Trigger::AfterRow { xid: 701, index: 0 },
        Trigger::AfterRow { xid: 702, index: 9 },
        Trigger::AfterRow {
            xid: 704,
            index: 14,
        },
        Trigger::AfterRow {
            xid: 709,
            index: 24,
        },
        Trigger::ConsumerChunk(1),
        Trigger::ConsumerChunk(4),
        Trigger::ConsumerChunk(11),
        Trigger::QueueFull(1),
        Trigger::QueueFull(3),
        Trigger::QueueFull(6),
        Trigger::AfterStatus(1),
        Trigger::AfterStatus(4),
        Trigger::AfterStatus(9),
    ]
}

fn named_points(ack: AckMode) {
    let mut cases = Vec::new();
    let mut seed = 500;
    let mut triggers = named_triggers();
    if ack == AckMode::Manual {
        triggers.extend([
            Trigger::AfterAck(1),
            Trigger::AfterAck(5),
            Trigger::AfterAck(9),
        ]);
    }
    for trigger in triggers {
        for kind in [CutKind::Fin, CutKind::Reset] {
            for then_refuse in [0, 3] {
                seed += 1;
                let mut case = Case::new(seed, ack).with_fault(Fault {
                    trigger: trigger.clone(),
                    kind,
                    then_refuse,
                });
                if seed % 2 == 0 {
                    case.capacity = 2;
                }
                cases.push(case);
            }
        }
    }
    run_all(&format!("{ack:?} at named points"), &cases);
}

#[test]
fn cut_at_named_points_manual() {
    named_points(AckMode::Manual);
}

#[test]
fn cut_at_named_points_on_delivery() {
    named_points(AckMode::OnDelivery);
}

#[test]
fn repeated_cuts_in_one_run() {
    let mut cases = Vec::new();
    for (i, ack) in [AckMode::Manual, AckMode::OnDelivery]
        .into_iter()
        .enumerate()
    {
        let mut case = Case::new(900 + i as u64, ack);
        for k in [30, 80, 130, 180, 260] {
            case = case.with_fault(fin(Trigger::AfterMessage(k)));
        }
        case = case
            .with_fault(reset(Trigger::QueueFull(2)))
            .with_fault(fin(Trigger::ConsumerChunk(8)))
            .with_fault(reset(Trigger::AfterStatus(3)));
        cases.push(case);
    }
    run_all("several cuts per run", &cases);
}

// ------------------------------------------------------------ start() and the slot

/// `start()` returns `Ok` only once the slot exists: a fault before or while it is created,
/// or refused connections, make `start()` wait for the retry, never return early. The
/// producer commits as soon as `start()` returns, so an early return loses those rows.
#[test]
fn start_returns_only_once_the_slot_exists() {
    let mut cases = Vec::new();
    for (i, ack) in [AckMode::Manual, AckMode::OnDelivery]
        .into_iter()
        .enumerate()
    {
        let seed = 300 + 10 * i as u64;
        let mut fault_free = Case::new(seed + 5, ack);
        fault_free.first_commit = FirstCommit::AfterStart;
        cases.push(fault_free);
        cases.push(Case::new(seed, ack).with_fault(fin(Trigger::Query(
            "CREATE_REPLICATION_SLOT",
            QueryCut::Before,
        ))));
        cases.push(Case::new(seed + 1, ack).with_fault(reset(Trigger::Query(
            "CREATE_REPLICATION_SLOT",
            QueryCut::After,
        ))));
        cases.push(Case::new(seed + 2, ack).with_fault(Fault {
            then_refuse: 4,
            ..fin(Trigger::Query("IDENTIFY_SYSTEM", QueryCut::Before))
        }));
        let mut refused = Case::new(seed + 3, ack);
        refused.refuse_first = 3;
        cases.push(refused);
        cases.push(
            Case::new(seed + 4, ack)
                .with_fault(fin(Trigger::Query("SELECT slot_name", QueryCut::Before))),
        );
    }
    for c in &mut cases {
        c.first_commit = FirstCommit::AfterStart;
    }
    run_all("start() before the slot exists", &cases);
}

// ------------------------------------------------------------ per-subscriber acknowledgements

/// With two Channel subscribers in Manual mode the flush is the minimum of what each
/// acknowledged: one consumer acknowledges at once, the other three batches late and with
/// stalls; the flush must follow the late one.
#[test]
fn two_subscribers_flush_follows_the_slower_ack() {
    let mut cases = Vec::new();
    for (seed, capacity) in [(400, 1), (401, 3)] {
        let mut case = Case::new(seed, AckMode::Manual);
        case.capacity = capacity;
        case.consumers = vec![
            ConsumerPlan {
                stall_every: 0,
                ..ConsumerPlan::default()
            },
            ConsumerPlan {
                stall_every: 2,
                stall: Duration::from_secs(3),
                ack_lag: 3,
            },
        ];
        cases.push(case.clone());
        cases.push(
            Case {
                seed: seed + 10,
                ..case
            }
            .with_fault(fin(Trigger::AfterRow { xid: 705, index: 3 })),
        );
    }
    run_all("two subscribers, Manual", &cases);
}
