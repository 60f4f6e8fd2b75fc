//! pgcdc on tokio (work in progress).
