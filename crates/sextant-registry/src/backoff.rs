//! Exponential backoff with jitter, for reconnecting to a registry: the core's
//! [`sextant::util::Backoff`], the same one the XClient redials servers with.

pub use sextant::util::Backoff;
