//! Connection settings from `--url` and the environment, and plain SQL connections.

use pgcdc_core::query::QueryResult;
use pgcdc_tokio::{ConnectOptions, PgConnection, PostgresSourceConfig};

use crate::CliError;

/// The hint appended to "where is the database" errors.
pub const URL_HINT: &str = "pass --url postgres://user:password@host:port/database (or set PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD)";

/// The settings of `--url` over libpq's environment variables over the defaults. Like libpq,
/// the user defaults to the login name and the database to the user.
pub fn config(url: Option<&str>) -> Result<PostgresSourceConfig, CliError> {
    let mut cfg = PostgresSourceConfig::default();
    cfg.apply_env(|k| std::env::var(k).ok())
        .map_err(|e| CliError::failed(e.to_string()))?;
    if let Some(url) = url {
        cfg.apply_url(url)
            .map_err(|e| CliError::usage(None, format!("--url: {e}")))?;
    }
    if cfg.user.is_empty() {
        cfg.user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_default();
    }
    if cfg.database.is_empty() {
        cfg.database = cfg.user.clone();
    }
    if cfg.user.is_empty() {
        return Err(CliError::usage(
            None,
            format!("no database user given: {URL_HINT}"),
        ));
    }
    Ok(cfg)
}

/// Opens an ordinary (non-replication) connection with the configuration's settings.
pub async fn connect(cfg: &PostgresSourceConfig) -> Result<PgConnection, CliError> {
    let opts = ConnectOptions::from_config(cfg, false);
    pgcdc_tokio::connect(&opts).await.map_err(|e| {
        CliError::failed(format!(
            "connecting to database {:?} as {:?}: {e}",
            cfg.database, cfg.user
        ))
    })
}

/// Runs `sql` (simple query protocol) and returns the last statement's result.
pub async fn query(conn: &mut PgConnection, sql: &str) -> Result<QueryResult, CliError> {
    let mut results = conn
        .simple_query(sql)
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
    Ok(results.pop().unwrap_or_default())
}

/// The text of `column` in `row`, or `None` for NULL (or a missing value).
pub fn text<'a>(r: &'a QueryResult, row: usize, column: &str) -> Option<&'a str> {
    r.text(row, column).ok().flatten()
}

/// Quotes an SQL string literal (the core's rule: backslashes in an `E''` literal).
pub fn literal(s: &str) -> Result<String, CliError> {
    pgcdc_core::replication::quote_literal(s).map_err(|e| CliError::usage(None, e.to_string()))
}
