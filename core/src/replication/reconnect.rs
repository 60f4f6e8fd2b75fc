//! The reconnect policy: which failures are worth a retry, and how long to wait.

use std::io::ErrorKind;
use std::time::Duration;

use crate::connection::ConnectionError;
use crate::error::{ServerError, SqlState};

use super::SessionError;

/// How reconnect delays grow.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectPolicy {
    /// The delay before the first reconnect (5 s).
    pub initial_delay: Duration,
    /// The longest delay (60 s).
    pub max_delay: Duration,
    /// The growth factor per consecutive failure (2.0); values below 1 count as 1.
    pub multiplier: f64,
    /// Relative jitter: 0.2 spreads each delay uniformly over ±20 % (clamped to 0..=1).
    pub jitter: f64,
    /// The most consecutive reconnect attempts; `None` (default) retries forever, `Some(0)`
    /// never reconnects.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before reconnect attempt `attempt` (1 for the first; 0 counts as 1):
    /// `initial_delay × multiplier^(attempt-1)`, capped at `max_delay`, then spread by the
    /// jitter using `random` (uniform over `u64`), and capped at `max_delay` again.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let initial = self.initial_delay.as_secs_f64();
        let max = self.max_delay.as_secs_f64();
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let exp = i32::try_from(attempt.max(1) - 1).unwrap_or(i32::MAX);
        let base = (initial * multiplier.powi(exp)).min(max);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // u in [0, 1]; factor in [1 - jitter, 1 + jitter].
        let u = random as f64 / u64::MAX as f64;
        let secs = (base * (1.0 + jitter * (2.0 * u - 1.0))).min(max);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay)
    }
}

/// What went wrong, for [`classify`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Failure<'a> {
    /// A socket error (connect, read, write), or an unexpected EOF.
    Io(ErrorKind),
    /// The TLS handshake failed with this I/O error kind: `InvalidData` when the TLS library
    /// refused the server for good (certificate verification, host name, protocol version),
    /// another kind when the connection broke during the handshake (EOF, reset).
    Tls(ErrorKind),
    /// A driver-side timeout (connect).
    Timeout,
    /// A failure of this process that no reconnect changes: a configuration the driver
    /// could not apply, a result it could not read, a bug.
    Local,
    /// The connection state machine failed (startup, authentication).
    Connection(&'a ConnectionError),
    /// The replication session failed.
    Session(&'a SessionError),
}

/// Whether a failure is worth a reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Transient: reconnect after a delay.
    Retry,
    /// Permanent until an operator acts: stop with the error.
    Fatal,
}

/// Classifies a failure:
///
/// | failure | disposition |
/// |---|---|
/// | I/O errors (refused, reset, aborted, EOF, broken pipe, timeouts, DNS …) | retry |
/// | I/O `InvalidInput` / `Unsupported` (a bad address, an impossible socket option) | fatal |
/// | TLS connection dropped during the handshake ([`Failure::Tls`], not `InvalidData`) | retry |
/// | TLS refused: certificate or protocol rejected ([`Failure::Tls`] with `InvalidData`) | fatal |
/// | a local failure ([`Failure::Local`]) | fatal |
/// | timeouts, the connection closed, the server ending the stream | retry |
/// | SQLSTATE class 08, 57P01, 57P02, 57P03, 53000/53100/53200/53300, 55006, 55P03, 40001, 40P01 | retry |
/// | 55000 "… WAL sender is in stopping mode" (a server shutting down) | retry |
/// | [`SlotActive`](SessionError::SlotActive) | retry |
/// | 28P01/28000 (password, pg_hba.conf), 42501 (no REPLICATION), 3D000, MD5 demanded, any other authentication failure | fatal |
/// | wal_level, missing publication/table/slot, wrong slot, system identifier changed, unsupported or invalid option | fatal |
/// | protocol and assembly errors | fatal: the same WAL would fail again on replay; the message carries the LSN |
/// | any other SQLSTATE | fatal: an operator has to look |
pub fn classify(f: &Failure<'_>) -> Disposition {
    match f {
        Failure::Io(ErrorKind::InvalidInput | ErrorKind::Unsupported) => Disposition::Fatal,
        Failure::Tls(ErrorKind::InvalidData) | Failure::Local => Disposition::Fatal,
        Failure::Io(_) | Failure::Tls(_) | Failure::Timeout => Disposition::Retry,
        Failure::Connection(e) => classify_connection(e),
        Failure::Session(e) => classify_session(e),
    }
}

pub(crate) fn classify_connection(e: &ConnectionError) -> Disposition {
    match e {
        ConnectionError::Server(s) => classify_server(s),
        ConnectionError::Timeout { .. } | ConnectionError::Closed { .. } => Disposition::Retry,
        _ => Disposition::Fatal,
    }
}

pub(crate) fn classify_session(e: &SessionError) -> Disposition {
    match e {
        SessionError::Connection(c) => classify_connection(c),
        SessionError::Server(s) => classify_server(s),
        SessionError::SlotActive { .. }
        | SessionError::Timeout { .. }
        | SessionError::ServerEndedStream => Disposition::Retry,
        _ => Disposition::Fatal,
    }
}

/// A server error by SQLSTATE (no code: retry, it is a broken connection's last word).
pub(crate) fn classify_server(e: &ServerError) -> Disposition {
    match e.code {
        None => Disposition::Retry,
        Some(code) => classify_sqlstate(code, &e.message),
    }
}

/// A SQLSTATE (and the message, for the ambiguous 55000).
pub fn classify_sqlstate(code: SqlState, message: &str) -> Disposition {
    let retry = code.class() == "08"
        || matches!(
            code.code(),
            "57P01"
                | "57P02"
                | "57P03"
                | "53000"
                | "53100"
                | "53200"
                | "53300"
                | "55006"
                | "55P03"
                | "40001"
                | "40P01"
        )
        || (code == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            && message.contains("stopping mode"));
    if retry {
        Disposition::Retry
    } else {
        Disposition::Fatal
    }
}

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Reconnect after this delay.
    RetryAfter(Duration),
    /// Transient, but `max_attempts` consecutive attempts failed.
    GiveUp {
        /// Consecutive failed attempts.
        attempts: u32,
    },
    /// Permanent: stop with the error.
    Fatal,
}

/// Counts consecutive failures and turns them into [`Decision`]s.
///
/// ```
/// use std::time::Duration;
/// use pgcdc_core::replication::{Decision, Failure, ReconnectPolicy, Reconnector};
///
/// let mut r = Reconnector::new(ReconnectPolicy { jitter: 0.0, ..ReconnectPolicy::default() });
/// let refused = Failure::Io(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(r.on_failure(&refused, 0), Decision::RetryAfter(Duration::from_secs(5)));
/// assert_eq!(r.on_failure(&refused, 0), Decision::RetryAfter(Duration::from_secs(10)));
/// r.on_streaming(); // streaming started: the next failure starts over
/// assert_eq!(r.on_failure(&refused, 0), Decision::RetryAfter(Duration::from_secs(5)));
/// ```
#[derive(Clone, Debug)]
pub struct Reconnector {
    policy: ReconnectPolicy,
    attempts: u32,
}

impl Reconnector {
    /// A reconnector with no failures yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Reconnector {
            policy,
            attempts: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Consecutive failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Decides what to do after `f`; `random` is a uniform random `u64` for the jitter.
    pub fn on_failure(&mut self, f: &Failure<'_>, random: u64) -> Decision {
        if classify(f) == Disposition::Fatal {
            return Decision::Fatal;
        }
        if let Some(max) = self.policy.max_attempts
            && self.attempts >= max
        {
            return Decision::GiveUp {
                attempts: self.attempts,
            };
        }
        self.attempts = self.attempts.saturating_add(1);
        Decision::RetryAfter(self.policy.delay(self.attempts, random))
    }

    /// Streaming started: the next failure counts from the first attempt again.
    pub fn on_streaming(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;

    fn server(code: &str, message: &str) -> ServerError {
        ServerError {
            severity: "ERROR".into(),
            code: SqlState::from_code(code),
            message: message.into(),
            ..ServerError::default()
        }
    }

    #[test]
    fn backoff_and_cap() {
        let p = ReconnectPolicy {
            jitter: 0.0,
            ..ReconnectPolicy::default()
        };
        let secs: Vec<u64> = (0..8).map(|a| p.delay(a, 12345).as_secs()).collect();
        assert_eq!(secs, [5, 5, 10, 20, 40, 60, 60, 60]);
        assert_eq!(p.delay(u32::MAX, 0), Duration::from_secs(60));
    }

    #[test]
    fn jitter_bounds() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(1, 0), Duration::from_secs(4));
        assert_eq!(p.delay(1, u64::MAX), Duration::from_secs(6));
        let mid = p.delay(1, u64::MAX / 2).as_secs_f64();
        assert!((mid - 5.0).abs() < 0.001, "{mid}");
        for r in [1u64, 7 << 40, u64::MAX - 3, 0xdead_beef_dead_beef] {
            let d = p.delay(3, r).as_secs_f64();
            assert!((16.0..=24.0).contains(&d), "{d}");
            // At the cap, jitter only lowers.
            let d = p.delay(10, r).as_secs_f64();
            assert!((48.0..=60.0).contains(&d), "{d}");
        }
        let weird = ReconnectPolicy {
            multiplier: f64::NAN,
            jitter: 7.0,
            ..ReconnectPolicy::default()
        };
        assert!(weird.delay(5, u64::MAX) <= Duration::from_secs(10));
    }

    #[test]
    fn max_attempts() {
        let mut r = Reconnector::new(ReconnectPolicy {
            max_attempts: Some(2),
            jitter: 0.0,
            ..ReconnectPolicy::default()
        });
        let f = Failure::Timeout;
        assert_eq!(
            r.on_failure(&f, 0),
            Decision::RetryAfter(Duration::from_secs(5))
        );
        assert_eq!(
            r.on_failure(&f, 0),
            Decision::RetryAfter(Duration::from_secs(10))
        );
        assert_eq!(r.on_failure(&f, 0), Decision::GiveUp { attempts: 2 });
        r.on_streaming();
        assert_eq!(r.attempts(), 0);
        assert_eq!(
            r.on_failure(&f, 0),
            Decision::RetryAfter(Duration::from_secs(5))
        );
        let never = &mut Reconnector::new(ReconnectPolicy {
            max_attempts: Some(0),
            ..ReconnectPolicy::default()
        });
        assert_eq!(never.on_failure(&f, 0), Decision::GiveUp { attempts: 0 });
        let wal = SessionError::WalLevel {
            actual: "replica".into(),
        };
        assert_eq!(r.on_failure(&Failure::Session(&wal), 0), Decision::Fatal);
    }

    #[test]
    fn sqlstates() {
        for code in [
            "08006", "08P01", "57P01", "57P02", "57P03", "53300", "55006", "40001", "40P01",
        ] {
            let e = SessionError::Server(Box::new(server(code, "x")));
            assert!(e.is_retryable(), "{code}");
            let c = ConnectionError::Server(Box::new(server(code, "x")));
            assert_eq!(
                classify(&Failure::Connection(&c)),
                Disposition::Retry,
                "{code}"
            );
        }
        for code in [
            "28P01", "28000", "42501", "3D000", "42704", "0A000", "58P01", "XX000", "53400",
        ] {
            let e = SessionError::Server(Box::new(server(code, "x")));
            assert!(!e.is_retryable(), "{code}");
        }
        let stopping = server(
            "55000",
            "cannot execute new commands while WAL sender is in stopping mode",
        );
        assert_eq!(classify_server(&stopping), Disposition::Retry);
        assert_eq!(
            classify_server(&server(
                "55000",
                "logical decoding requires wal_level >= logical"
            )),
            Disposition::Fatal
        );
    }

    #[test]
    fn failures() {
        use ErrorKind::*;
        for k in [
            ConnectionRefused,
            ConnectionReset,
            ConnectionAborted,
            UnexpectedEof,
            BrokenPipe,
            TimedOut,
            Other,
        ] {
            assert_eq!(classify(&Failure::Io(k)), Disposition::Retry, "{k:?}");
        }
        assert_eq!(classify(&Failure::Io(InvalidInput)), Disposition::Fatal);
        assert_eq!(
            classify(&Failure::Tls(std::io::ErrorKind::UnexpectedEof)),
            Disposition::Retry
        );
        assert_eq!(
            classify(&Failure::Tls(std::io::ErrorKind::InvalidData)),
            Disposition::Fatal
        );
        assert_eq!(classify(&Failure::Local), Disposition::Fatal);
        assert_eq!(classify(&Failure::Timeout), Disposition::Retry);
        let md5 = ConnectionError::Auth(AuthError::Md5Refused);
        assert_eq!(classify(&Failure::Connection(&md5)), Disposition::Fatal);
        let closed = ConnectionError::Closed { during: "idle" };
        assert_eq!(classify(&Failure::Connection(&closed)), Disposition::Retry);
        let s = SessionError::Connection(closed);
        assert!(s.is_retryable());
        let active = SessionError::SlotActive {
            slot: "s".into(),
            pid: Some(1),
        };
        assert!(active.is_retryable());
        assert_eq!(active.sqlstate(), Some(SqlState::OBJECT_IN_USE));
        for fatal in [
            SessionError::PublicationMissing { name: "p".into() },
            SessionError::SlotMissing { slot: "s".into() },
            SessionError::SlotWrongPlugin {
                slot: "s".into(),
                plugin: "wal2json".into(),
            },
            SessionError::SystemIdentifierChanged {
                expected: 1,
                found: 2,
            },
            SessionError::Protocol("x".into()),
        ] {
            assert!(!fatal.is_retryable(), "{fatal}");
        }
        assert!(SessionError::Timeout { during: "x" }.is_retryable());
        assert!(SessionError::ServerEndedStream.is_retryable());
    }
}
