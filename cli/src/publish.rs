//! `pgcdc stream --sink nats://…`: changes to NATS JetStream, acknowledged once stored.

use std::time::Duration;

use pgcdc_sink::nats::{JetStreamOptions, JetStreamSink};
use pgcdc_sink::{Encoder, Envelope, ForwardOptions, Naming, Stop};
use pgcdc_tokio::{PostgresReplicationSource, SourceState, Subscription};

use crate::CliError;
use crate::args::SinkArgs;
use crate::stream::Signals;

/// A connected sink and how its records are named.
pub struct Publisher {
    sink: JetStreamSink,
    encoder: Encoder,
    options: ForwardOptions,
}

/// Connects to the server and checks (or creates) the stream, before PostgreSQL is touched.
pub async fn connect(
    args: &SinkArgs,
    database: &str,
    slot: &str,
    until_lsn: Option<pgcdc_tokio::Lsn>,
) -> Result<Publisher, CliError> {
    let source = args.source_name.as_deref().unwrap_or(database);
    let mut naming = Naming::new(source, slot);
    if let Some(p) = &args.subject_prefix {
        naming.prefix = p.clone();
    }
    let mut options = JetStreamOptions::new(&args.url, &args.stream);
    options.create_stream = args.create_stream;
    options.subjects = vec![naming.stream_subject()];
    let sink = JetStreamSink::connect(&options)
        .await
        .map_err(|e| CliError::failed(format!("--sink: {e}")))?;
    let envelope = if args.debezium {
        Envelope::Debezium
    } else {
        Envelope::Native
    };
    let mut forward = ForwardOptions {
        until_lsn,
        ..ForwardOptions::default()
    };
    if let Some(n) = args.max_in_flight {
        forward.max_in_flight = n;
    }
    tracing::info!(
        sink = %args.url,
        stream = %args.stream,
        subjects = %naming.stream_subject(),
        "publishing to NATS JetStream"
    );
    Ok(Publisher {
        sink,
        encoder: Encoder::new(naming, envelope),
        options: forward,
    })
}

/// Publishes every batch until a signal (or, with `--snapshot-only`, the end of the copy),
/// then stops the source with what JetStream stored acknowledged.
pub async fn pump(
    source: &PostgresReplicationSource,
    mut sub: Subscription,
    mut publisher: Publisher,
    signals: &mut Signals,
    until_started: Option<tokio::sync::watch::Receiver<bool>>,
) -> Result<(), CliError> {
    let mut reason = "";
    let stop = async {
        let snapshot_over = async {
            let Some(mut rx) = until_started else {
                return std::future::pending().await;
            };
            if rx.wait_for(|done| *done).await.is_err() {
                return std::future::pending().await;
            }
            while source.status().state == SourceState::Bootstrapping {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            sig = signals.recv() => reason = sig,
            () = snapshot_over => reason = "snapshot copied (--snapshot-only)",
        }
    };
    let result = pgcdc_sink::forward(
        source,
        &mut sub,
        &mut publisher.sink,
        &mut publisher.encoder,
        &publisher.options,
        stop,
    )
    .await;
    match result {
        Ok(outcome) => {
            if outcome.stop == Some(Stop::UntilLsn) {
                reason = "--until-lsn reached";
            }
            if let Some(lsn) = outcome.last_acked {
                source.ack(lsn);
            }
            let stopped = source.stop().await;
            tracing::info!(
                records = outcome.records,
                duplicates = outcome.duplicates,
                resent = outcome.resent,
                batches = outcome.batches,
                acked = %outcome.last_acked.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                "publishing ended: {reason}{}",
                if outcome.stop == Some(Stop::DrainTimedOut) {
                    " (JetStream did not acknowledge everything in time: the rest is sent again next time)"
                } else {
                    ""
                }
            );
            stopped.map_err(|e| CliError::failed(e.to_string()))
        }
        Err(e) => {
            // Nothing past the last stored batch was acknowledged: the next run sends it again.
            let _ = source.stop().await;
            Err(CliError::failed(e.to_string()))
        }
    }
}
