//! What the Go rpcx server that produced the captures in the repository's `testdata/wire` served,
//! re-implemented with sextant.
//!
//! - `Arith` (`Mul`, `Add`, `Div`; `Div` fails with `divide by zero` when `B` is 0)
//! - `ArithFn` (the same three, registered as functions)
//! - `Echo.Echo` (returns its argument unchanged, whatever the codec)
//! - `Hello.Say` (rpcx-benchmark: sets `field1 = "OK"`, `field2 = 100` and returns the message)
//!
//! [`register_all`] puts them on a server; the `interop-server` example serves them, and the
//! compatibility tests replay Go's captured requests against them.
//!
//! [`PushTicks`] is `interop-server --push N`: after a client's first call on a connection, the
//! server pushes `N` messages `Push.Tick` to it; [`is_tick`] checks one on the client side
//! (`interop-client --bidirectional`).
//!
//! [`pki`] makes certificates at run time for the TLS, `wss@` and `quic@` examples, tests and
//! benchmarks; [`flags`] are the transport switches (`--cert`, `--ca`, `--kcp-pass`, …) of
//! `interop-server`, `interop-client` and the benchmark.

pub mod flags;
pub mod go_peer;
pub mod pki;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant::{
    CallHooks, ClientConn, Context, Error, Metadata, Proto, PushError, Raw, Server, ServerMessage,
    ServerPlugin, ServiceError,
};

/// rpcx-benchmark's message, and the request its client sends (581 bytes of protobuf); from the
/// benchmark driver crate, so that the benchmark and these services share one definition.
pub use sextant_bench_driver::message::{prepare_args, BenchmarkMessage};

/// rpcx-examples' `Args{A int; B int}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// First operand.
    pub a: i64,
    /// Second operand.
    pub b: i64,
}

/// rpcx-examples' `Reply{C int}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Reply {
    /// The result.
    pub c: i64,
}

/// rpcx-examples' `Arith` service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arith;

#[sextant::service]
impl Arith {
    /// `C = A * B`.
    pub async fn mul(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        mul(args)
    }

    /// `C = A + B`.
    pub async fn add(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        add(args)
    }

    /// `C = A / B`; an error when `B` is 0.
    pub async fn div(&self, _cx: Context, args: Args) -> Result<Reply, ServiceError> {
        div(args)
    }
}

fn mul(a: Args) -> Result<Reply, ServiceError> {
    Ok(Reply {
        c: a.a.wrapping_mul(a.b),
    })
}

fn add(a: Args) -> Result<Reply, ServiceError> {
    Ok(Reply {
        c: a.a.wrapping_add(a.b),
    })
}

fn div(a: Args) -> Result<Reply, ServiceError> {
    if a.b == 0 {
        return Err(ServiceError::new("divide by zero"));
    }
    Ok(Reply {
        c: a.a.wrapping_div(a.b),
    })
}

/// Echoes the payload back untouched, whatever its serialize type.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

#[sextant::service]
impl Echo {
    /// Returns its argument.
    pub async fn echo(&self, _cx: Context, args: Raw) -> Result<Raw, ServiceError> {
        Ok(args)
    }
}

/// rpcx-benchmark's `Hello` service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hello;

#[sextant::service]
impl Hello {
    /// Sets `field1 = "OK"` and `field2 = 100` and returns the message.
    pub async fn say(
        &self,
        _cx: Context,
        args: Proto<BenchmarkMessage>,
    ) -> Result<Proto<BenchmarkMessage>, ServiceError> {
        Ok(Proto(sextant_bench_driver::message::say(args.0)))
    }
}

/// Registers `Arith`, `ArithFn`, `Echo` and `Hello` on `server`.
pub fn register_all(server: &Server) -> sextant::Result<()> {
    server.register(Arith)?;
    server.register_fn(
        "ArithFn",
        "Mul",
        |_cx: Context, a: Args| async move { mul(a) },
    )?;
    server.register_fn(
        "ArithFn",
        "Add",
        |_cx: Context, a: Args| async move { add(a) },
    )?;
    server.register_fn(
        "ArithFn",
        "Div",
        |_cx: Context, a: Args| async move { div(a) },
    )?;
    server.register(Echo)?;
    server.register(Hello)?;
    Ok(())
}

/// A server like the Go one behind the captures: every service registered, and with `auth`, an
/// auth function accepting only that token (error text `invalid token`).
pub fn interop_server(auth: Option<String>) -> sextant::Result<Server> {
    interop_server_from(Server::builder(), auth)
}

/// Like [`interop_server`], from a builder that already carries other options (HTTP switches,
/// CORS, limits).
pub fn interop_server_from(
    mut builder: sextant::ServerBuilder,
    auth: Option<String>,
) -> sextant::Result<Server> {
    if let Some(token) = auth {
        builder = builder.auth_fn(move |_req, got| {
            let ok = got == token;
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("invalid token".to_string())
                }
            }
        });
    }
    let server = builder.build();
    register_all(&server)?;
    Ok(server)
}

/// The service path of the interop pushes.
pub const PUSH_SERVICE: &str = "Push";
/// The method of the interop pushes.
pub const PUSH_METHOD: &str = "Tick";

/// `interop-server --push N`: after a client's first call on a connection (whatever the call),
/// the server pushes `n` messages to that connection: service path `Push`, method `Tick`,
/// metadata `seq=i` and raw payload `tick-i` for `i` in `1..=n`, as Go's `SendMessage` sends
/// them. A Go bidirectional client counts them, as `interop-client --bidirectional` does.
pub struct PushTicks {
    n: u32,
    pushed: Arc<Mutex<HashSet<u64>>>,
}

impl PushTicks {
    /// Pushes `n` ticks to every connection after its first call.
    pub fn new(n: u32) -> PushTicks {
        PushTicks {
            n,
            pushed: Arc::default(),
        }
    }
}

impl ServerPlugin for PushTicks {
    fn call_hooks(&self) -> CallHooks {
        CallHooks::POST_CALL
    }

    fn post_call(&self, ctx: &Context, _outcome: &mut sextant::CallOutcome) {
        let Some(conn) = ctx.conn() else { return };
        if !self.pushed.lock().unwrap().insert(conn.id()) {
            return;
        }
        let conn = conn.clone();
        let n = self.n;
        let pushed = self.pushed.clone();
        tokio::spawn(async move {
            match push_ticks(&conn, n).await {
                Ok(()) => println!("pushed {n} ticks to {}", conn.peer_addr()),
                Err(e) => eprintln!("pushing ticks to {}: {e}", conn.peer_addr()),
            }
            // Forget the connection once it is gone, so the set stays as small as the open
            // connections.
            conn.closed().await;
            pushed.lock().unwrap().remove(&conn.id());
        });
    }
}

/// Pushes ticks `1..=n` to `conn`. When the connection's push queue is full it waits a little
/// and tries again (for at most 10 s in all); a closed connection ends it with the error.
pub async fn push_ticks(conn: &ClientConn, n: u32) -> sextant::Result<()> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    for i in 1..=n {
        let mut meta = Metadata::new();
        meta.insert("seq", i.to_string());
        let payload = format!("tick-{i}");
        loop {
            match conn.send_message(PUSH_SERVICE, PUSH_METHOD, &meta, payload.as_bytes()) {
                Ok(()) => break,
                Err(Error::Push {
                    reason: PushError::Full,
                    ..
                }) if tokio::time::Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether `m` is a well-formed interop tick: `Push.Tick`, metadata `seq=i`, payload `tick-i`.
pub fn is_tick(m: &ServerMessage) -> bool {
    m.service_path() == PUSH_SERVICE
        && m.service_method() == PUSH_METHOD
        && m.metadata()
            .get("seq")
            .is_some_and(|i| m.payload()[..] == *format!("tick-{i}").as_bytes())
}
