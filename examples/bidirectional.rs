//! Server push, chat style (rpcx-examples' `bidirectional`): clients join a room with a call, and
//! the server pushes every message said in the room to every member's connection
//! (`ClientConn::send_message`, rpcx's `Server.SendMessage`). Each member is a bidirectional
//! XClient (rpcx's `NewBidirectionalXClient`) reading its pushes from `server_messages()`.
//!
//! Run: `cargo run --example bidirectional`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sextant::discovery::Peer2PeerDiscovery;
use sextant::{ClientConn, Context, Metadata, Server, ServiceError, XClient};

/// The room: who is in it, by name, and the connection to push to.
#[derive(Clone, Default)]
struct Room {
    members: Arc<Mutex<HashMap<String, ClientConn>>>,
}

impl Room {
    /// Pushes `text` from `from` to every member still connected; forgets those that left.
    fn say(&self, from: &str, text: &str) -> usize {
        let mut meta = Metadata::new();
        meta.insert("from", from.to_string());
        let mut members = self.members.lock().unwrap();
        members.retain(|_, conn| !conn.is_closed());
        let mut delivered = 0;
        for (name, conn) in members.iter() {
            match conn.send_message("Chat", "Message", &meta, text.as_bytes()) {
                Ok(()) => delivered += 1,
                // A slow or closed member: the push fails at once, the others still get it.
                Err(e) => eprintln!("not delivered to {name}: {e}"),
            }
        }
        delivered
    }
}

#[tokio::main]
async fn main() -> sextant::Result<()> {
    let room = Room::default();
    let server = Server::new();
    let r = room.clone();
    server.register_fn("Chat", "Join", move |cx: Context, name: String| {
        let r = r.clone();
        async move {
            let conn = cx
                .conn()
                .ok_or_else(|| ServiceError::new("join over rpcx to receive messages"))?
                .clone();
            r.members.lock().unwrap().insert(name.clone(), conn);
            r.say("server", &format!("{name} joined"));
            Ok::<_, ServiceError>(())
        }
    })?;
    let r = room.clone();
    server.register_fn("Chat", "Say", move |cx: Context, text: String| {
        let r = r.clone();
        async move {
            let from = cx.metadata().get("name").unwrap_or("someone").to_string();
            Ok::<_, ServiceError>(r.say(&from, &text) as u32)
        }
    })?;
    let address = server.start("tcp@127.0.0.1:0").await?;
    println!("chat server on {address}");

    let member = |name: &'static str| {
        XClient::builder("Chat")
            .discovery(Peer2PeerDiscovery::new(address.clone(), "").expect("a valid address"))
            .bidirectional(64)
            .build()
            .map(|x| (name, x))
    };
    let (alice, alice_x) = member("alice")?;
    let (bob, bob_x) = member("bob")?;
    let mut alice_inbox = alice_x.server_messages().expect("bidirectional");
    let mut bob_inbox = bob_x.server_messages().expect("bidirectional");

    alice_x.call::<_, ()>("Join", &alice).await?;
    bob_x.call::<_, ()>("Join", &bob).await?;
    let said_by = |name: &str| sextant::CallOptions::new().metadata("name", name.to_string());
    let reached: u32 = alice_x
        .call_with("Say", &"hello, bob", said_by(alice))
        .await?
        .reply;
    println!("alice said hello to {reached} members");
    bob_x
        .call_with::<_, u32>("Say", &"hi alice!", said_by(bob))
        .await?;

    // alice saw: her own join, bob's join, her message, bob's message; bob saw the last three.
    for (name, inbox, expected) in [(alice, &mut alice_inbox, 4), (bob, &mut bob_inbox, 3)] {
        for _ in 0..expected {
            let m = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
                .await
                .map_err(|_| sextant::Error::DeadlineExceeded)?
                .ok_or(sextant::Error::Closed)?;
            println!(
                "{name} got {}.{} from {}: {}",
                m.service_path(),
                m.service_method(),
                m.metadata().get("from").unwrap_or("?"),
                String::from_utf8_lossy(m.payload())
            );
        }
    }

    alice_x.close();
    bob_x.close();
    server.shutdown(Duration::from_secs(1)).await
}
