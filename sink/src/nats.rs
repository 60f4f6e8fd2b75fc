//! NATS JetStream as the log.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, stream};

use crate::{PendingAck, Receipt, Record, Sink, SinkError};

/// Where and how to publish.
#[derive(Clone, Debug)]
pub struct JetStreamOptions {
    /// The server, `nats://host:port` (several separated by commas).
    pub url: String,
    /// The stream the records go to.
    pub stream: String,
    /// Create the stream when it does not exist (see [`JetStreamSink::connect`]).
    pub create_stream: bool,
    /// The subjects a created stream captures (`<prefix>.>`).
    pub subjects: Vec<String>,
    /// The duplicate window of a created stream: a record sent again within it is stored
    /// once. A restart after a crash must come within it.
    pub duplicate_window: Duration,
    /// How long an acknowledgement may take before the record is sent again.
    pub ack_timeout: Duration,
}

impl JetStreamOptions {
    /// Defaults for `url` and `stream`: no creation, a 2-minute duplicate window, a 10 s
    /// acknowledgement timeout.
    pub fn new(url: impl Into<String>, stream: impl Into<String>) -> Self {
        JetStreamOptions {
            url: url.into(),
            stream: stream.into(),
            create_stream: false,
            subjects: Vec::new(),
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// Records published to a JetStream stream with `Nats-Msg-Id` = [`Record::id`].
///
/// The client reconnects by itself when the server goes away; the acknowledgements lost
/// meanwhile time out, and [`forward`](crate::forward) sends those records again.
pub struct JetStreamSink {
    js: jetstream::Context,
    url: String,
    stream: String,
    /// The stream's name, shared with the acknowledgements.
    stream_arc: std::sync::Arc<str>,
    /// The stream's duplicate window.
    duplicate_window: Duration,
}

impl std::fmt::Debug for JetStreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamSink")
            .field("url", &self.url)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl JetStreamSink {
    /// Connects and checks the stream. With `create_stream`, a missing stream is created
    /// with file storage, `subjects`, the duplicate window, `max_age` 7 days and the
    /// oldest messages discarded past the server's limits.
    ///
    /// # Errors
    ///
    /// [`SinkError::Refused`] when the server cannot be reached, JetStream is not enabled,
    /// or the stream does not exist (and is not to be created) — each with a hint.
    pub async fn connect(options: &JetStreamOptions) -> Result<JetStreamSink, SinkError> {
        let client = async_nats::ConnectOptions::new()
            .name("pgcdc")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(options.url.as_str())
            .await
            .map_err(|e| SinkError::Refused {
                message: format!("cannot connect to {}: {e}", options.url),
                hint: Some(
                    "is nats-server running there, with JetStream (`nats-server -js`)?".into(),
                ),
            })?;
        let mut js = jetstream::new(client);
        js.set_timeout(options.ack_timeout);
        let info = match js.get_stream(&options.stream).await {
            Ok(mut s) => {
                s.info()
                    .await
                    .map(|i| i.config.clone())
                    .map_err(|e| SinkError::Refused {
                        message: format!("reading stream {}: {e}", options.stream),
                        hint: None,
                    })?
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(j)
                        if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                if !options.create_stream {
                    return Err(SinkError::Refused {
                        message: format!(
                            "stream {} does not exist on {}",
                            options.stream, options.url
                        ),
                        hint: Some(format!(
                            "create it capturing {} (or pass --create-stream)",
                            options.subjects.join(", ")
                        )),
                    });
                }
                let config = stream::Config {
                    name: options.stream.clone(),
                    subjects: options.subjects.clone(),
                    duplicate_window: options.duplicate_window,
                    storage: stream::StorageType::File,
                    max_age: Duration::from_secs(7 * 24 * 3600),
                    discard: stream::DiscardPolicy::Old,
                    ..Default::default()
                };
                let created = js.create_stream(config).await.map_err(|e| SinkError::Refused {
                    message: format!("creating stream {}: {e}", options.stream),
                    hint: Some("another stream may capture the same subjects: pick another --subject-prefix".into()),
                })?;
                tracing::info!(stream = %options.stream, subjects = ?options.subjects, "stream created");
                created.cached_info().config.clone()
            }
            Err(e) => {
                return Err(SinkError::Refused {
                    message: format!(
                        "looking up stream {} on {}: {e}",
                        options.stream, options.url
                    ),
                    hint: Some("is JetStream enabled on the server (`nats-server -js`)?".into()),
                });
            }
        };
        tracing::info!(
            stream = %options.stream,
            duplicate_window_s = info.duplicate_window.as_secs(),
            "publishing to JetStream: a restart after a crash must come within the duplicate window"
        );
        Ok(JetStreamSink {
            js,
            url: options.url.clone(),
            stream: options.stream.clone(),
            stream_arc: options.stream.as_str().into(),
            duplicate_window: info.duplicate_window,
        })
    }

    /// The stream's duplicate window.
    pub fn duplicate_window(&self) -> Duration {
        self.duplicate_window
    }
}

impl Sink for JetStreamSink {
    async fn publish(
        &mut self,
        record: &Record,
        after: Option<&str>,
    ) -> Result<PendingAck, SinkError> {
        let mut message = jetstream::message::PublishMessage::build()
            .payload(record.payload.clone())
            .message_id(&record.id);
        if let Some(after) = after {
            message = message.expected_last_message_id(after);
        }
        let ack = self
            .js
            .send_publish(record.subject.clone(), message)
            .await
            .map_err(|e| classify(e, &record.subject, &self.stream))?;
        // Shared, so that the acknowledgement's error can name the stream without a copy.
        let stream = std::sync::Arc::clone(&self.stream_arc);
        Ok(Box::pin(async move {
            match ack.await {
                Ok(a) => Ok(Receipt {
                    duplicate: a.duplicate,
                    sequence: a.sequence,
                }),
                Err(e) => Err(classify(e, "", &stream)),
            }
        }))
    }

    fn describe(&self) -> String {
        format!("{} stream {}", self.url, self.stream)
    }
}

/// Transient (send again) or refused, with a hint.
fn classify(e: jetstream::context::PublishError, subject: &str, stream: &str) -> SinkError {
    let text = e.to_string();
    match e.kind() {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending => SinkError::Transient { message: text },
        PublishErrorKind::WrongLastMessageId => SinkError::OutOfOrder { message: text },
        PublishErrorKind::StreamNotFound => SinkError::Refused {
            message: if subject.is_empty() {
                "no stream captures the subject".to_owned()
            } else {
                format!("no stream captures subject {subject}")
            },
            hint: Some(format!(
                "add the subject to stream {stream}, or check --subject-prefix"
            )),
        },
        PublishErrorKind::MaxPayloadExceeded => SinkError::Refused {
            message: text,
            hint: Some("raise the server's max_payload (1 MB by default)".into()),
        },
        _ if text.contains("temporarily unavailable") => SinkError::Transient { message: text },
        _ if text.contains("maximum messages")
            || text.contains("maximum bytes")
            || text.contains("insufficient resources") =>
        {
            SinkError::Refused {
                message: format!("stream {stream} is full: {text}"),
                hint: Some("raise the stream's limits, or use discard=old".into()),
            }
        }
        _ => SinkError::Refused {
            message: text,
            hint: None,
        },
    }
}
