//! `pgcdc`: stream the changes of a PostgreSQL database as JSON lines.
//!
//! ```text
//! pgcdc stream --url postgres://… --publication P --slot S [options]
//! pgcdc demo [--url URL]
//! pgcdc slots [--url URL] [--drop NAME]
//! pgcdc doctor [--url URL] [--publication P]
//! ```
//!
//! Exit codes: 0 on a clean end (including Ctrl-C / SIGTERM), 1 on a runtime error (the
//! message on stderr says what to do), 2 on a usage error (the usage is printed).

mod args;
mod db;
mod demo;
mod doctor;
mod hints;
mod metrics;
mod output;
mod publish;
mod slots;
mod stream;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use args::Command;

/// Why the program did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: the message, and the usage of the command it concerns.
    Usage {
        /// The command whose usage to print (`None`: the top-level usage).
        command: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
    /// Something failed at run time; the message says what and how to fix it.
    Failed(String),
}

impl CliError {
    /// A usage error about `command` (`None`: the top level).
    pub fn usage(command: Option<&'static str>, message: impl Into<String>) -> Self {
        CliError::Usage {
            command,
            message: message.into(),
        }
    }

    /// A runtime error.
    pub fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage { message, .. } | CliError::Failed(message) => f.write_str(message),
        }
    }
}

fn main() -> ExitCode {
    let mut raw = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(s) => raw.push(s),
            Err(bad) => {
                return report(CliError::usage(
                    None,
                    format!("argument {bad:?} is not valid UTF-8"),
                ));
            }
        }
    }
    let command = match args::parse(raw) {
        Ok(Command::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("pgcdc {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(c) => c,
        Err(e) => return report(e),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(CliError::failed(format!("starting the async runtime: {e}"))),
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Stream(a) => stream::run(*a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Slots(a) => slots::run(a).await,
            Command::Doctor(a) => doctor::run(a).await,
            Command::Help(_) | Command::Version => Ok(()),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

/// Prints the error on stderr (its advice naming the CLI's flags and URL parameters rather
/// than the library's settings) and picks the exit code.
fn report(e: CliError) -> ExitCode {
    match e {
        CliError::Usage { command, message } => {
            eprintln!("pgcdc: {message}\n\n{}", args::usage_of(command));
            ExitCode::from(2)
        }
        CliError::Failed(message) => {
            eprintln!("pgcdc: error: {}", hints::for_cli(&message));
            ExitCode::from(1)
        }
    }
}

/// Logs on stderr; `RUST_LOG` overrides the default level (info for pgcdc, warn otherwise).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,pgcdc=info,pgcdc_driver=info,pgcdc_tokio=info,pgcdc_core=info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
