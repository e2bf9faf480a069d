//! Request-time policy: the rule engine, and Cedar (feature `cedar`), over one shared scenario.

#[cfg(feature = "cedar")]
mod cedar;
mod rules;
mod scenario;
