//! Cedar adapter tests.
mod common;
