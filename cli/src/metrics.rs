//! `pgcdc stream --metrics-addr`: the source's figures in the Prometheus text format, served
//! over HTTP at `/metrics` (any path answers the same).
//!
//! The library hands its figures to the `metrics` facade (see `pgcdc_driver::source::metrics`);
//! this installs a Prometheus recorder for them and adds, at each scrape,
//! `pgcdc_last_commit_age_seconds`: how long ago the last delivered transaction committed.

use std::net::SocketAddr;
use std::time::SystemTime;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pgcdc_tokio::PostgresReplicationSource;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::CliError;

/// The most bytes of a request read before answering (the request line is all that matters).
const MAX_REQUEST: usize = 8 * 1024;

/// Installs the Prometheus recorder; call before the source is built (its handles are made
/// then).
pub fn install() -> Result<PrometheusHandle, CliError> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| CliError::failed(format!("installing the metrics recorder: {e}")))
}

/// Binds `addr` and serves scrapes in the background until the process ends.
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    source: PostgresReplicationSource,
) -> Result<SocketAddr, CliError> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        CliError::usage(
            Some("stream"),
            format!("--metrics-addr {addr}: cannot listen there: {e}; give a free address"),
        )
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %bound, "serving Prometheus metrics at http://{bound}/metrics");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            let source = source.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &handle, &source).await {
                    tracing::debug!(error = %e, "metrics scrape failed");
                }
            });
        }
    });
    Ok(bound)
}

/// Reads the request head (bounded) and writes the page.
async fn answer(
    mut stream: TcpStream,
    handle: &PrometheusHandle,
    source: &PostgresReplicationSource,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "slow request"))??;
        if n == 0 {
            break;
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let get = head.starts_with(b"GET ") || head.starts_with(b"HEAD ");
    let response = if get {
        let body = page(handle, source);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_owned()
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The recorder's page, with the commit age computed now.
pub fn page(handle: &PrometheusHandle, source: &PostgresReplicationSource) -> String {
    handle.run_upkeep();
    let mut body = handle.render();
    if let Some(age) = source
        .status()
        .last_commit_time
        .and_then(|t| SystemTime::now().duration_since(t).ok())
    {
        body.push_str(
            "# HELP pgcdc_last_commit_age_seconds How long ago the last delivered transaction \
             committed.\n# TYPE pgcdc_last_commit_age_seconds gauge\n",
        );
        body.push_str(&format!(
            "pgcdc_last_commit_age_seconds{{source=\"{}\"}} {:.3}\n",
            source.id().replace('\\', "\\\\").replace('"', "\\\""),
            age.as_secs_f64()
        ));
    }
    body
}
