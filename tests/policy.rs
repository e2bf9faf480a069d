//! Rule policy tests.
mod common;
