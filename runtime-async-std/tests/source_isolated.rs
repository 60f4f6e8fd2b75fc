//! The source's integration suite (shared with every runtime), the tests that need clusters of their own or the process to themselves, on async-std.
//! Each runtime has binaries of its own: the suite names databases after the test alone.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

isolated_tests!(async_std::task::block_on, pgcdc_async_std::AsyncStdRuntime);
