//! Runtime-agnostic driver (work in progress).
