//! Rust-to-Rust sessions on 127.0.0.1, and a listener under bad input.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sextant_kcp::{KcpConfig, KcpListener, KcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::timeout;

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(7) + i / 251) as u8
}

/// Accepts sessions forever and echoes each.
async fn echo_server(config: KcpConfig) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = KcpListener::bind(local(), config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, task)
}

/// Writes `n` pattern bytes and reads them back; returns the elapsed time.
async fn echo(stream: KcpStream, n: usize) -> Duration {
    let start = Instant::now();
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..n).map(pattern).collect();
        for chunk in data.chunks(16 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        w
    });
    let mut got = vec![0u8; n];
    r.read_exact(&mut got).await.unwrap();
    let elapsed = start.elapsed();
    let _w = writer.await.unwrap();
    for (i, b) in got.iter().enumerate() {
        assert_eq!(*b, pattern(i), "byte {i}");
    }
    elapsed
}

#[tokio::test]
async fn echo_1mib_aes_fec_stream_mode() {
    let config = KcpConfig::new()
        .with_pass_salt("rpcx-key", "rpcx-salt")
        .fec(10, 3);
    let (addr, server) = echo_server(config.clone()).await;
    let client = KcpStream::connect(addr, config).await.unwrap();
    let elapsed = timeout(Duration::from_secs(60), echo(client, 1 << 20))
        .await
        .expect("echo timed out");
    println!(
        "1 MiB echoed over KCP (AES-256, FEC 10/3) in {elapsed:?}: {:.1} MiB/s each way",
        1.0 / elapsed.as_secs_f64()
    );
    server.abort();
}

#[tokio::test]
async fn echo_without_cipher_and_without_fec() {
    for config in [
        KcpConfig::new(),
        KcpConfig::new().fec(0, 0),
        KcpConfig::new().with_key(&[9; 16]).unwrap().fec(0, 0),
    ] {
        let (addr, server) = echo_server(config.clone()).await;
        let client = KcpStream::connect(addr, config.clone()).await.unwrap();
        timeout(Duration::from_secs(30), echo(client, 100_000))
            .await
            .unwrap_or_else(|_| panic!("{config:?}"));
        server.abort();
    }
}

#[tokio::test]
async fn several_concurrent_sessions() {
    let config = KcpConfig::new().with_key(&[3; 24]).unwrap();
    let (addr, server) = echo_server(config.clone()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            let client = KcpStream::connect(addr, config).await.unwrap();
            echo(client, 128 * 1024).await
        }));
    }
    for t in tasks {
        timeout(Duration::from_secs(60), t)
            .await
            .expect("timed out")
            .unwrap();
    }
    server.abort();
}

#[tokio::test]
async fn wrong_key_delivers_nothing() {
    let server_cfg = KcpConfig::new().with_pass_salt("rpcx-key", "rpcx-salt");
    let listener = KcpListener::bind(local(), server_cfg).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client_cfg = KcpConfig::new().with_pass_salt("other-key", "rpcx-salt");
    let mut client = KcpStream::connect(addr, client_cfg).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    assert!(
        timeout(Duration::from_millis(800), client.read(&mut buf))
            .await
            .is_err(),
        "read must time out"
    );
    assert!(
        timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_err(),
        "no session may be created"
    );
}

#[tokio::test]
async fn dead_peer_fails_reads_and_writes() {
    // A port where nothing answers.
    let silent = UdpSocket::bind(local()).await.unwrap();
    let mut config = KcpConfig::new().with_key(&[1; 32]).unwrap();
    config.dead_link = 4;
    let mut client = KcpStream::connect(silent.local_addr().unwrap(), config)
        .await
        .unwrap();
    client.write_all(b"anyone?").await.unwrap();
    let mut buf = [0u8; 8];
    let err = timeout(Duration::from_secs(20), client.read(&mut buf))
        .await
        .expect("dead link not detected")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(client.write_all(b"more").await.is_err());
}

#[tokio::test]
async fn idle_timeout_ends_the_session() {
    let mut config = KcpConfig::new();
    config.idle_timeout = Some(Duration::from_millis(300));
    let silent = UdpSocket::bind(local()).await.unwrap();
    let mut client = KcpStream::connect(silent.local_addr().unwrap(), config)
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let err = timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test]
async fn random_datagrams_are_dropped_without_sessions() {
    let config = KcpConfig::new().with_pass_salt("rpcx-key", "rpcx-salt");
    let listener = KcpListener::bind(local(), config.clone()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let junk = UdpSocket::bind(local()).await.unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..3000usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = [0, 1, 27, 51, 52, 100, 1400, 1500, 2000][i % 9].min((x % 2100) as usize + i % 3);
        let data: Vec<u8> = (0..len).map(|j| (x >> (j % 56)) as u8 ^ j as u8).collect();
        let _ = junk.send_to(&data, addr).await;
        if i % 200 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Packets sealed with another key fail the checksum as well.
    let mut other = KcpStream::connect(addr, KcpConfig::new().with_pass_salt("x", "y"))
        .await
        .unwrap();
    other.write_all(&[7u8; 50_000]).await.unwrap();
    assert!(
        timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err(),
        "no session from junk"
    );

    // The listener still works.
    let mut client = KcpStream::connect(addr, config).await.unwrap();
    client.write_all(b"ping").await.unwrap();
    let (mut s, _) = timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 4];
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn new_sessions_are_bounded_by_max_sessions() {
    let mut config = KcpConfig::new().with_key(&[5; 16]).unwrap();
    config.max_sessions = 3;
    config.linger = Duration::from_millis(200);
    let listener = KcpListener::bind(local(), config.clone()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::new();
    for i in 0..12u8 {
        let mut c = KcpStream::connect(addr, config.clone()).await.unwrap();
        c.write_all(&[i; 10]).await.unwrap();
        clients.push(c);
    }
    let mut accepted = Vec::new();
    while let Ok(r) = timeout(Duration::from_millis(600), listener.accept()).await {
        accepted.push(r.unwrap());
    }
    assert_eq!(accepted.len(), 3, "max_sessions");

    // The refused clients stop retransmitting once dropped.
    let ports: Vec<u16> = accepted.iter().map(|(_, peer)| peer.port()).collect();
    clients.retain(|c| ports.contains(&local_port(c)));
    assert_eq!(clients.len(), 3);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Dropping a session frees its slot: a new client gets in.
    drop(accepted.pop());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut late = KcpStream::connect(addr, config).await.unwrap();
    late.write_all(b"late").await.unwrap();
    let (mut s, peer) = timeout(Duration::from_secs(5), listener.accept())
        .await
        .expect("a freed slot is reused")
        .unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!((&buf, peer.port()), (b"late", local_port(&late)));
}

fn local_port(s: &KcpStream) -> u16 {
    s.local_addr().unwrap().port()
}

#[tokio::test]
async fn shutdown_waits_for_acknowledgement_and_drop_frees_the_session() {
    let config = KcpConfig::new().with_key(&[2; 32]).unwrap();
    let listener = KcpListener::bind(local(), config.clone()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = KcpStream::connect(addr, config).await.unwrap();
    client.write_all(&vec![1u8; 300_000]).await.unwrap();
    let (mut s, _) = listener.accept().await.unwrap();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 300_000];
        s.read_exact(&mut buf).await.unwrap();
        s
    });
    timeout(Duration::from_secs(20), client.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert!(
        client.write_all(b"x").await.is_err(),
        "write after shutdown"
    );
    let s = reader.await.unwrap();
    assert_eq!(s.conv(), client.conv());
    assert!(client.stats().packets_out > 0 && s.stats().packets_in > 0);
}
