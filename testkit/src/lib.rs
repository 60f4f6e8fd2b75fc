//! Throwaway PostgreSQL clusters for tests (work in progress).
