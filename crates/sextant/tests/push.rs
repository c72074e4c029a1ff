//! Server push (rpcx's `Server.SendMessage`) and bidirectional clients: what a push looks like on
//! the wire, how `Client` and `XClient` receive it, and what happens when a connection is closed,
//! slow, or its client's queue is full. Everything runs on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sextant::discovery::MultipleServersDiscovery;
use sextant::protocol::{Decoder, Limits, Message, MessageType};
use sextant::{
    Client, ClientConn, ClientOptions, Context, Error, FailMode, KVPair, Metadata, PushError,
    PushOverflow, Raw, SelectMode, SerializeType, Server, ServiceError, XClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Note {
    text: String,
    n: u32,
}

/// A server whose `Chat.Join(n)` pushes `n` messages `Chat.Msg` (metadata `seq=i`, payload
/// `msg-i`) to the caller before replying, and keeps the caller's connection in `conns`.
struct ChatServer {
    server: Server,
    address: String,
    conns: Arc<Mutex<Vec<ClientConn>>>,
}

async fn chat_server(builder: sextant::ServerBuilder) -> ChatServer {
    let server = builder.build();
    let conns = Arc::new(Mutex::new(Vec::<ClientConn>::new()));
    let kept = conns.clone();
    server
        .register_fn("Chat", "Join", move |cx: Context, n: u32| {
            let kept = kept.clone();
            async move {
                let conn = cx.conn().expect("an rpcx call has a connection").clone();
                for i in 0..n {
                    let mut meta = Metadata::new();
                    meta.insert("seq", i.to_string());
                    conn.send_message("Chat", "Msg", &meta, format!("msg-{i}").as_bytes())
                        .map_err(|e| ServiceError::new(e.to_string()))?;
                }
                kept.lock().unwrap().push(conn);
                Ok::<_, ServiceError>(n)
            }
        })
        .unwrap();
    server
        .register_fn("Chat", "Note", |cx: Context, note: Note| async move {
            let conn = cx.conn().unwrap();
            conn.send_message_encoded("Chat", "Note", &Metadata::new(), &note, SerializeType::JSON)
                .map_err(|e| ServiceError::new(e.to_string()))?;
            Ok::<_, ServiceError>(())
        })
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    ChatServer {
        server,
        address,
        conns,
    }
}

async fn next(messages: &mut sextant::ServerMessages) -> sextant::ServerMessage {
    tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("a push within the wait")
        .expect("the stream is open")
}

#[tokio::test]
async fn a_handler_pushes_to_its_caller_through_the_context() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(
        s.address.as_str(),
        ClientOptions::default().server_message_capacity(16),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().expect("enabled");
    assert!(client.server_messages().is_none(), "one stream per client");

    let n: u32 = client.call("Chat", "Join", &3u32).await.unwrap();
    assert_eq!(n, 3);
    let mut seqs = Vec::new();
    for i in 0..3 {
        let m = next(&mut messages).await;
        assert_eq!(m.server(), s.address);
        assert_eq!(m.service_path(), "Chat");
        assert_eq!(m.service_method(), "Msg");
        assert_eq!(m.metadata().get("seq"), Some(i.to_string().as_str()));
        assert_eq!(&m.payload()[..], format!("msg-{i}").as_bytes());
        assert_eq!(m.serialize_type(), SerializeType::NONE);
        let raw: Raw = m.decode(&Default::default()).unwrap();
        assert_eq!(&raw.0[..], format!("msg-{i}").as_bytes());
        seqs.push(m.seq());
    }
    // One server-wide counter from 1, as Go's `s.seq.Add(1)`.
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(s.conns.lock().unwrap()[0].pushes(), 3);

    // The stream ends when the connection closes.
    client.close();
    let end = tokio::time::timeout(WAIT, messages.recv()).await.unwrap();
    assert!(end.is_none());
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn an_encoded_push_is_decoded_by_its_serialize_type() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(
        s.address.as_str(),
        ClientOptions::default().server_message_capacity(4),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().unwrap();
    let note = Note {
        text: "hello".into(),
        n: 7,
    };
    client.call::<_, ()>("Chat", "Note", &note).await.unwrap();
    let m = next(&mut messages).await;
    assert_eq!(m.serialize_type(), SerializeType::JSON);
    assert_eq!(&m.payload()[..], br#"{"text":"hello","n":7}"#);
    assert_eq!(m.decode::<Note>(&Default::default()).unwrap(), note);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// The bytes of a push are Go's `SendMessage` bytes: a request (bit 7 clear) with only the oneway
/// bit set in byte 2, serialize type none in byte 3, message id 1, then the four strings.
#[tokio::test]
async fn a_push_on_the_wire_is_what_go_sends() {
    let s = chat_server(Server::builder()).await;
    let mut tcp = TcpStream::connect(s.address.trim_start_matches("tcp@"))
        .await
        .unwrap();
    let mut req = Message::new();
    req.header.set_seq(42);
    req.header.set_serialize_type(SerializeType::MSGPACK);
    req.service_path = "Chat".into();
    req.service_method = "Join".into();
    req.payload = Bytes::from_static(&[0x01]); // msgpack 1
    tcp.write_all(&req.to_bytes().unwrap()).await.unwrap();

    let mut expected = vec![0x08, 0x00, 0x20, 0x00];
    expected.extend_from_slice(&1u64.to_be_bytes());
    let mut body = Vec::new();
    for part in [&b"Chat"[..], b"Msg"] {
        body.extend_from_slice(&(part.len() as u32).to_be_bytes());
        body.extend_from_slice(part);
    }
    let mut meta = Vec::new();
    for part in [&b"seq"[..], b"0"] {
        meta.extend_from_slice(&(part.len() as u32).to_be_bytes());
        meta.extend_from_slice(part);
    }
    body.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    body.extend_from_slice(&meta);
    body.extend_from_slice(&5u32.to_be_bytes());
    body.extend_from_slice(b"msg-0");
    expected.extend_from_slice(&(body.len() as u32).to_be_bytes());
    expected.extend_from_slice(&body);

    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, expected);

    // Then the reply to the call.
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::new(Limits::default());
    let reply = loop {
        if let Some(m) = decoder.decode(&mut buf).unwrap() {
            break m;
        }
        let n = tokio::time::timeout(WAIT, tcp.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the reply");
    };
    assert_eq!(reply.header.message_type(), MessageType::Response);
    assert_eq!(reply.header.seq(), 42);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn active_connections_lists_the_rpcx_connections_open_now() {
    let s = chat_server(Server::builder()).await;
    assert!(s.server.active_connections().is_empty());
    let a = Client::connect(s.address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let b = Client::connect(s.address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let _: u32 = a.call("Chat", "Join", &0u32).await.unwrap();
    let _: u32 = b.call("Chat", "Join", &0u32).await.unwrap();
    let conns = s.server.active_connections();
    assert_eq!(conns.len(), 2);
    assert_ne!(conns[0], conns[1]);
    assert_ne!(conns[0].id(), conns[1].id());
    let kept = s.conns.lock().unwrap().clone();
    assert!(kept.iter().all(|c| conns.contains(c)));

    a.close();
    let gone = kept[0].clone();
    tokio::time::timeout(WAIT, gone.closed()).await.unwrap();
    assert!(gone.is_closed());
    for _ in 0..200 {
        if s.server.active_connections().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.server.active_connections(), vec![kept[1].clone()]);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_push_to_a_closed_connection_fails_at_once() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(s.address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let _: u32 = client.call("Chat", "Join", &0u32).await.unwrap();
    let conn = s.conns.lock().unwrap()[0].clone();
    client.close();
    tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
    let err = s
        .server
        .send_message(&conn, "Chat", "Msg", &Metadata::new(), b"late")
        .unwrap_err();
    match &err {
        Error::Push { reason, peer } => {
            assert_eq!(*reason, PushError::Closed);
            assert_eq!(&**peer, conn.peer_addr().to_string());
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("closed"), "{err}");
    assert!(!err.is_retryable());
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// A client that never reads: the pushes to it fill its connection's push share and then fail
/// with `Full` at once, and the server goes on serving other clients.
#[tokio::test]
async fn a_client_that_never_reads_its_pushes_gets_a_bounded_queue() {
    let s = chat_server(Server::builder().push_queue_capacity(8)).await;
    let mut tcp = TcpStream::connect(s.address.trim_start_matches("tcp@"))
        .await
        .unwrap();
    let mut req = Message::new();
    req.header.set_seq(1);
    req.header.set_serialize_type(SerializeType::MSGPACK);
    req.service_path = "Chat".into();
    req.service_method = "Join".into();
    req.payload = Bytes::from_static(&[0x00]);
    tcp.write_all(&req.to_bytes().unwrap()).await.unwrap();
    let conn = loop {
        if let Some(c) = s.conns.lock().unwrap().first().cloned() {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    // 256 KiB pushes: the socket buffers take a few, then the queue's 8, then `Full`.
    let payload = vec![7u8; 256 * 1024];
    let mut sent = 0;
    let err = loop {
        match conn.send_message("Chat", "Big", &Metadata::new(), &payload) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 2000, "the push queue never filled");
        if sent % 8 == 0 {
            // Let the writer move what the socket takes.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    assert!(
        matches!(
            err,
            Error::Push {
                reason: PushError::Full,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("full"), "{err}");
    // Still full: the client has not read anything.
    assert!(conn
        .send_message("Chat", "Big", &Metadata::new(), b"x")
        .is_err());

    // Another client is served as usual, and receives its own pushes.
    let other = Client::connect(
        s.address.as_str(),
        ClientOptions::default().server_message_capacity(4),
    )
    .await
    .unwrap();
    let mut messages = other.server_messages().unwrap();
    let n: u32 = tokio::time::timeout(WAIT, other.call("Chat", "Join", &2u32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(next(&mut messages).await.metadata().get("seq"), Some("0"));

    drop(tcp);
    s.server.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// `PushOverflow::Drop` (rpcx's default): a full queue drops and counts, replies keep flowing.
#[tokio::test]
async fn a_full_receive_queue_drops_and_counts() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(
        s.address.as_str(),
        ClientOptions::default().server_message_capacity(2),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().unwrap();
    // The reply comes after the ten pushes on the same connection, so they have all been
    // handled when the call returns.
    let n: u32 = client.call("Chat", "Join", &10u32).await.unwrap();
    assert_eq!(n, 10);
    assert_eq!(messages.dropped(), 8);
    assert_eq!(next(&mut messages).await.metadata().get("seq"), Some("0"));
    assert_eq!(next(&mut messages).await.metadata().get("seq"), Some("1"));
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// `PushOverflow::Block` (rpcx's `BidirectionalBlock`): nothing is lost; the connection waits
/// for the reader, replies included.
#[tokio::test]
async fn a_blocking_receive_queue_loses_nothing() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(
        s.address.as_str(),
        ClientOptions::default()
            .server_message_capacity(2)
            .server_message_overflow(PushOverflow::Block),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().unwrap();
    let c = client.clone();
    let call = tokio::spawn(async move { c.call::<_, u32>("Chat", "Join", &10u32).await });
    for i in 0..10 {
        let m = next(&mut messages).await;
        assert_eq!(m.metadata().get("seq"), Some(i.to_string().as_str()));
    }
    let n = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!(messages.dropped(), 0);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// rpcx's `NewBidirectionalXClient`: the pushes of every server, merged, each naming its server.
#[tokio::test]
async fn a_bidirectional_xclient_merges_the_pushes_of_all_its_servers() {
    let a = chat_server(Server::builder()).await;
    let b = chat_server(Server::builder()).await;
    let xclient = XClient::builder("Chat")
        .fail_mode(FailMode::Failfast)
        .select_mode(SelectMode::RoundRobin)
        .discovery(
            MultipleServersDiscovery::new(vec![
                KVPair::new(a.address.clone(), ""),
                KVPair::new(b.address.clone(), ""),
            ])
            .unwrap(),
        )
        .bidirectional(16)
        .build()
        .unwrap();
    let mut messages = xclient.server_messages().expect("bidirectional");
    assert!(xclient.server_messages().is_none());
    let r = xclient
        .broadcast::<_, u32>("Join", &2u32, Default::default())
        .await
        .unwrap();
    assert_eq!(r.reply, 2);
    let mut from = Vec::new();
    for _ in 0..4 {
        let m = next(&mut messages).await;
        assert_eq!(m.service_method(), "Msg");
        from.push(m.server().to_string());
    }
    from.sort();
    let mut want = vec![
        a.address.clone(),
        a.address.clone(),
        b.address.clone(),
        b.address.clone(),
    ];
    want.sort();
    assert_eq!(from, want);

    // Closing the XClient ends the stream.
    xclient.close();
    let end = tokio::time::timeout(WAIT, messages.next()).await.unwrap();
    assert!(end.is_none());
    a.server.shutdown(Duration::from_secs(1)).await.unwrap();
    b.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Go's client takes only oneway, non-heartbeat requests as pushes; so does sextant's.
#[tokio::test]
async fn only_oneway_requests_from_the_server_are_pushes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut out = BytesMut::new();
        for (seq, oneway, heartbeat) in [(1, false, false), (2, true, true), (3, true, false)] {
            let mut m = Message::new();
            m.header.set_seq(seq);
            m.header.set_oneway(oneway);
            m.header.set_heartbeat(heartbeat);
            m.service_path = "P".into();
            m.service_method = "M".into();
            m.payload = Bytes::from(format!("m{seq}"));
            m.encode(&mut out).unwrap();
        }
        tcp.write_all(&out).await.unwrap();
        // Hold the connection until the client is done.
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut sink)).await;
    });
    let client = Client::connect(
        format!("tcp@{addr}").as_str(),
        ClientOptions::default().server_message_capacity(8),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().unwrap();
    let m = next(&mut messages).await;
    assert_eq!(m.seq(), 3);
    assert_eq!(&m.payload()[..], b"m3");
    client.close();
    assert!(tokio::time::timeout(WAIT, messages.recv())
        .await
        .unwrap()
        .is_none());
    server.await.unwrap();
}

/// Pushes and replies share the connection's writer: many of both, interleaved, all arrive.
#[tokio::test]
async fn pushes_and_replies_interleave_without_loss() {
    let s = chat_server(Server::builder()).await;
    let client = Client::connect(
        s.address.as_str(),
        ClientOptions::default()
            .server_message_capacity(64)
            .server_message_overflow(PushOverflow::Block),
    )
    .await
    .unwrap();
    let mut messages = client.server_messages().unwrap();
    let _: u32 = client.call("Chat", "Join", &0u32).await.unwrap();
    let conn = s.conns.lock().unwrap()[0].clone();

    let reader = tokio::spawn(async move {
        let mut n = 0u32;
        while let Ok(Some(_)) = tokio::time::timeout(WAIT, messages.recv()).await {
            n += 1;
            if n == 5000 {
                break;
            }
        }
        n
    });
    let pusher = tokio::spawn(async move {
        let mut sent = 0u32;
        let mut attempts = 0u32;
        while sent < 5000 && attempts < 1_000_000 {
            attempts += 1;
            match conn.send_message("Chat", "Tick", &Metadata::new(), b"0123456789abcdef") {
                Ok(()) => sent += 1,
                Err(Error::Push {
                    reason: PushError::Full,
                    ..
                }) => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        }
        sent
    });
    let calls = futures::future::join_all((0..200u32).map(|i| {
        let c = client.clone();
        async move { c.call::<_, u32>("Chat", "Join", &0u32).await.map(|n| n + i) }
    }))
    .await;
    for (i, r) in calls.into_iter().enumerate() {
        assert_eq!(r.unwrap(), i as u32);
    }
    assert_eq!(pusher.await.unwrap(), 5000);
    assert_eq!(reader.await.unwrap(), 5000);
    s.server.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[cfg(feature = "http")]
#[tokio::test]
async fn calls_over_http_have_no_connection_to_push_to() {
    let server = Server::new();
    server
        .register_fn("Probe", "HasConn", |cx: Context, _: Raw| async move {
            Ok::<_, ServiceError>(Raw::from(if cx.conn().is_some() {
                &b"yes"[..]
            } else {
                &b"no"[..]
            }))
        })
        .unwrap();
    let address = server.start("tcp@127.0.0.1:0").await.unwrap().to_string();
    let host = address.trim_start_matches("tcp@");
    let mut tcp = TcpStream::connect(host).await.unwrap();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-RPCX-SerializeType: 0\r\nX-RPCX-ServicePath: Probe\r\n\
         X-RPCX-ServiceMethod: HasConn\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("no"), "{resp}");

    let client = Client::connect(address.as_str(), ClientOptions::default())
        .await
        .unwrap();
    let r: Raw = client
        .call_with(
            "Probe",
            "HasConn",
            &Raw::from(&b""[..]),
            sextant::CallOptions::new().serialize_type(SerializeType::NONE),
        )
        .await
        .unwrap()
        .reply;
    assert_eq!(&r.0[..], b"yes");
    server.shutdown(Duration::from_secs(1)).await.unwrap();
}
