//! Small pieces every sextant crate needs once: a poison-free lock and an exponential backoff.
//!
//! They are public so that the registry backends (and user plugins) use the same ones instead of
//! writing their own.

mod backoff;
mod sync;

pub use backoff::Backoff;
pub use sync::{lock, read, write};
