//! Authentication: SCRAM-SHA-256(-PLUS), SASLprep, channel binding and cleartext.
