//! The configuration error.

use std::borrow::Cow;
use std::fmt;

/// A configuration field that is missing, malformed or inconsistent with another one.
///
/// Displays as ``invalid config field `slot_name`: "My-Slot" is not a valid replication slot
/// name; use lower-case letters, digits and underscores (at most 63 bytes)``. Messages never
/// contain a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault, by its configuration name (`slot_name`, `table_keys`, `url`, …).
    pub field: Cow<'static, str>,
    /// What is wrong.
    pub message: String,
    /// How to fix it (may be empty).
    pub hint: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config field `{}`: {}", self.field, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
