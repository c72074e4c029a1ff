//! sextant's built-in plugins, the Rust side of rpcx's `serverplugin` package and of
//! rpcxio/rpcx-plugins:
//!
//! - [`metrics`]: Prometheus metrics (prometheus-client) per service and method, for servers and
//!   XClients, served at `/metrics`;
//! - [`debug`]: GeeRPC's debug page, an HTML view of services, methods and connections;
//! - [`ratelimit`]: connection and request rate limits (rpcx's `RateLimitingPlugin` and
//!   `ReqRateLimitingPlugin`), token buckets from governor;
//! - [`alias`]: service and method aliases (rpcx's `AliasPlugin`);
//! - [`iplist`]: IP blacklists and whitelists with CIDR ranges (rpcx's `BlacklistPlugin` and
//!   `WhitelistPlugin`);
//! - [`otel`]: OpenTelemetry spans and W3C trace context in rpcx metadata, as rpcx-plugins
//!   carries it (feature `opentelemetry`, on by default; `otlp` adds an exporter).
//!
//! Every plugin is a [`sextant::ServerPlugin`] or [`sextant::xclient::ClientPlugin`], added
//! with `Server::builder().plugin(..)` or `XClient::builder(..).plugin(..)`. Constructors check
//! their configuration and return an error rather than build a plugin that cannot work.

pub mod alias;
pub mod debug;
pub mod iplist;
pub mod metrics;
#[cfg(feature = "opentelemetry")]
pub mod otel;
pub mod ratelimit;
