//! Plugins: a server plugin of your own and a client plugin, as rpcx's `server.Plugin` and
//! `client.Plugin`. The server plugin logs connections, refuses calls without a tenant, leaves
//! the tenant in the context for the handler, and times every call; the client plugin writes a
//! request id into each call's metadata. A tower layer wraps the handlers too.
//!
//! Run: `cargo run --example plugin`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sextant::discovery::Peer2PeerDiscovery;
use sextant::xclient::{CallInfo, ClientPlugin};
use sextant::{
    CallOptions, CallOutcome, Context, PeerAddr, Server, ServerPlugin, ServiceError, Verdict,
    XClient,
};

/// The tenant a call is made for, found by the plugin and read by the handler.
#[derive(Clone, Debug)]
struct Tenant(String);

#[derive(Default)]
struct Audit {
    calls: AtomicU64,
}

/// The plugin; the example keeps a handle on its counters.
struct AuditPlugin(Arc<Audit>);

impl ServerPlugin for AuditPlugin {
    fn on_conn_accept(&self, peer: &PeerAddr) -> bool {
        println!("server: connection from {peer}");
        true
    }

    fn on_conn_close(&self, peer: &PeerAddr) {
        println!("server: {peer} went away");
    }

    fn pre_call(&self, ctx: &Context, payload: &Bytes) -> Verdict {
        match ctx.metadata().get("tenant") {
            Some(t) => {
                ctx.insert_extension(Tenant(t.to_string()));
                println!(
                    "server: {}.{} for {t}, {} bytes, request id {}",
                    ctx.service_path(),
                    ctx.service_method(),
                    payload.len(),
                    ctx.metadata().get("request-id").unwrap_or("-")
                );
                Verdict::Continue
            }
            None => Verdict::Reject("a tenant is required".into()),
        }
    }

    fn post_call(&self, ctx: &Context, outcome: &mut CallOutcome) {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        println!(
            "server: {}.{} took {:?}: {}",
            ctx.service_path(),
            ctx.service_method(),
            outcome.elapsed(),
            outcome.error().unwrap_or("ok")
        );
    }
}

/// Numbers the client's calls.
#[derive(Default)]
struct RequestIds(AtomicU64);

impl ClientPlugin for RequestIds {
    fn pre_call(&self, call: &mut CallInfo<'_>) -> sextant::Result<()> {
        let id = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        call.metadata.insert("request-id", format!("req-{id}"));
        Ok(())
    }

    fn post_call(&self, call: &CallInfo<'_>, error: Option<&sextant::Error>, elapsed: Duration) {
        println!(
            "client: {}.{} on {} in {elapsed:?}: {}",
            call.service_path,
            call.service_method,
            call.server,
            error.map_or("ok".to_string(), |e| e.to_string())
        );
    }
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let audit = Arc::new(Audit::default());
    let server = Server::builder()
        .plugin(AuditPlugin(audit.clone()))
        // Any tower middleware over sextant::server::CallRequest: here a 1 s timeout.
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_secs(1)))
        .build();
    server.register_fn("Greeter", "Hello", |cx: Context, name: String| async move {
        let tenant = cx.extension::<Tenant>().map(|t| t.0).unwrap_or_default();
        Ok::<_, ServiceError>(format!("hello {name}, from tenant {tenant}"))
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;

    let client = XClient::builder("Greeter")
        .discovery(Peer2PeerDiscovery::new(&address, "")?)
        .plugin(RequestIds::default())
        .build()?;
    let options = CallOptions::new().metadata("tenant", "acme");
    let r = client
        .call_with::<_, String>("Hello", "ana", options.clone())
        .await?;
    println!("reply: {}", r.reply);
    match client.call::<_, String>("Hello", "bob").await {
        Err(e) => println!("without a tenant: {e}"),
        Ok(r) => panic!("expected a refusal, got {r}"),
    }
    assert_eq!(audit.calls.load(Ordering::Relaxed), 2);

    client.close();
    server.shutdown(Duration::from_secs(2)).await?;
    Ok(())
}
