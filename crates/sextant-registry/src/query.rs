//! URL query strings as rpcx reads and writes them (Go's `url.Values`): the core's
//! [`sextant::query`], re-exported here because every registry entry's value is one.

pub use sextant::query::{QueryError, QueryValues};
