//! Test support for sextant's registry crates (not published).
//!
//! - [`engine`]: real engine processes (etcd, Redis, ZooKeeper) on free 127.0.0.1 ports with
//!   temporary data directories, killed and reaped on drop, which a test can stop and restart.
//!   A missing engine skips the test loudly, or fails it when `SEXTANT_REQUIRE_SERVICES=1`.
//! - [`service`]: rpcx-examples' `Arith.Mul`, servers on their own runtime that can be killed like
//!   a crashed process, bounded waits.
//! - [`proxy`]: a TCP proxy a test can cut and restore, to partition one client from a registry.
//! - [`scenarios`]: what every registry engine must do, written once and run by each backend's
//!   tests through a [`scenarios::Harness`].

pub mod engine;
pub mod proxy;
pub mod scenarios;
pub mod service;

pub use engine::{free_port, services_required, Engine, EtcdServer, RedisServer, ZooKeeperServer};
pub use proxy::Proxy;
pub use scenarios::Harness;
pub use service::{call_mul, init_logging, wait_until, Args, Arith, IsolatedServer, Reply};
