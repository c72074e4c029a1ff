//! One KCP session: the state a [`KcpStream`] and its driver task share, and the driver.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use kcp::Kcp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::fec::{FecDecoder, FecEncoder, FEC_HEADER, FEC_HEADER_PLUS2, TYPE_DATA, TYPE_PARITY};
use crate::packet::{self, le16, le32, CRYPT_HEADER, KCP_OVERHEAD, MTU_LIMIT};
use crate::{KcpConfig, KcpError, KcpStats};

/// Locks a session mutex; a panic elsewhere never leaves the KCP state half-updated in a way
/// that matters more than losing the session, so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Packets the driver collects from an inbound source before it runs the state machine once.
const INPUT_BATCH: usize = 64;
/// Largest write handed to KCP at once: fewer fragments than the `kcp` crate's limit (128).
const MAX_WRITE_SEGMENTS: usize = 120;
/// How long an idle driver sleeps when nothing is in flight and no idle timeout is set.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// KCP's output: collects the packets a flush produces, each with the session header reserved
/// in front (kcp-go's `ReserveBytes`, sess.go:175).
struct Sink {
    header: usize,
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut pkt = Vec::with_capacity(self.header + data.len());
        pkt.resize(self.header, 0);
        pkt.extend_from_slice(data);
        lock(&self.packets).push(pkt);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Failure {
    DeadLink,
    Idle,
    Replaced,
    ListenerGone,
    Socket(io::ErrorKind),
}

impl Failure {
    fn to_io(self) -> io::Error {
        match self {
            Failure::DeadLink => io::Error::new(io::ErrorKind::TimedOut, KcpError::DeadLink),
            Failure::Idle => io::Error::new(io::ErrorKind::TimedOut, KcpError::IdleTimeout),
            Failure::Replaced => io::Error::new(io::ErrorKind::ConnectionReset, KcpError::Replaced),
            Failure::ListenerGone => {
                io::Error::new(io::ErrorKind::ConnectionAborted, KcpError::ListenerClosed)
            }
            Failure::Socket(kind) => io::Error::new(kind, KcpError::Socket(kind)),
        }
    }
}

struct State {
    kcp: Kcp<Sink>,
    mss: usize,
    /// A received message larger than the caller's buffer, and how much of it was read.
    leftover: Vec<u8>,
    leftover_pos: usize,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    shutdown_waker: Option<Waker>,
    failure: Option<Failure>,
    write_shutdown: bool,
    /// The stream was dropped: the driver lingers until the send queue is acknowledged.
    dropped: bool,
}

impl State {
    fn send_limit(&self) -> usize {
        self.kcp.snd_wnd().min(self.kcp.rmt_wnd()) as usize
    }

    fn wake_all(&mut self) {
        for w in [
            self.read_waker.take(),
            self.write_waker.take(),
            self.shutdown_waker.take(),
        ]
        .into_iter()
        .flatten()
        {
            w.wake();
        }
    }
}

#[derive(Default)]
struct Counters {
    packets_in: AtomicU64,
    packets_out: AtomicU64,
    fec_parity_in: AtomicU64,
    fec_recovered: AtomicU64,
    dropped_in: AtomicU64,
}

/// What a stream and its driver share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the driver: data written, data read (window may reopen), stream dropped, replaced.
    notify: Notify,
    counters: Counters,
}

impl Shared {
    /// Ends the session from outside the driver (the listener replacing it).
    pub(crate) fn fail(&self, failure: Failure) {
        let mut st = lock(&self.state);
        st.failure.get_or_insert(failure);
        st.wake_all();
        drop(st);
        self.notify.notify_one();
    }
}

/// Where a driver's datagrams come from.
pub(crate) enum Inbound {
    /// A listener's reader task: decrypted, checksummed payloads.
    Channel(mpsc::Receiver<Bytes>),
    /// A client's own connected socket.
    Socket,
}

/// Reported to the listener when a driver ends: (peer, session id).
pub(crate) type Removal = (SocketAddr, u64);

/// Runs one session: feeds datagrams into KCP, drives its clock, sends what it outputs.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    connected: bool,
    config: Arc<KcpConfig>,
    conv: u32,
    header: usize,
    fec_enc: Option<FecEncoder>,
    fec_dec: Option<FecDecoder>,
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
    epoch: Instant,
    on_exit: Option<(mpsc::UnboundedSender<Removal>, u64)>,
}

/// Creates a session: the stream the user gets and the driver to spawn.
pub(crate) fn new_session(
    conv: u32,
    config: Arc<KcpConfig>,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    connected: bool,
    on_exit: Option<(mpsc::UnboundedSender<Removal>, u64)>,
) -> (KcpStream, Driver) {
    let header = config.header_size();
    let packets = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink {
        header,
        packets: packets.clone(),
    };
    let mut kcp = if config.stream_mode {
        Kcp::new_stream(conv, sink)
    } else {
        Kcp::new(conv, sink)
    };
    // kcp-go counts the reserved header in the MTU (kcp.go:207-214): the same datagram sizes.
    let _ = kcp.set_mtu(config.mtu - header);
    let nd = config.nodelay;
    kcp.set_nodelay(
        nd.nodelay,
        nd.interval as i32,
        nd.resend as i32,
        nd.no_congestion_control,
    );
    kcp.set_wndsize(config.send_window, config.recv_window);
    kcp.set_maximum_resend_times(config.dead_link);
    let mss = kcp.mss();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            kcp,
            mss,
            leftover: Vec::new(),
            leftover_pos: 0,
            read_waker: None,
            write_waker: None,
            shutdown_waker: None,
            failure: None,
            write_shutdown: false,
            dropped: false,
        }),
        notify: Notify::new(),
        counters: Counters::default(),
    });
    let crypt_offset = if config.crypt.is_some() {
        CRYPT_HEADER
    } else {
        0
    };
    let driver = Driver {
        shared: shared.clone(),
        socket,
        peer,
        connected,
        fec_enc: FecEncoder::new(config.data_shards, config.parity_shards, crypt_offset),
        fec_dec: FecDecoder::new(config.data_shards, config.parity_shards),
        config,
        conv,
        header,
        packets,
        epoch: Instant::now(),
        on_exit,
    };
    let local = driver.socket.local_addr();
    (
        KcpStream {
            shared,
            peer,
            local,
            conv,
        },
        driver,
    )
}

struct Step {
    failed: bool,
    dropped: bool,
    wait_snd: usize,
    next: u32,
}

enum Event {
    Packet(Bytes),
    Dropped,
    Closed(Failure),
    Notified,
    Timer,
}

impl Driver {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Decrypts and checks one datagram of a client socket.
    fn open_datagram(&self, buf: &mut [u8]) -> Option<Bytes> {
        if buf.len() < self.header + KCP_OVERHEAD {
            return None;
        }
        packet::open(self.config.crypt.as_ref(), buf).map(Bytes::copy_from_slice)
    }

    async fn next_event(&self, inbound: &mut Inbound, buf: &mut [u8], deadline: Instant) -> Event {
        tokio::select! {
            biased;
            _ = self.shared.notify.notified() => Event::Notified,
            ev = async {
                match inbound {
                    Inbound::Channel(rx) => match rx.recv().await {
                        Some(p) => Event::Packet(p),
                        None => Event::Closed(Failure::ListenerGone),
                    },
                    Inbound::Socket => match self.socket.recv(buf).await {
                        Ok(n) if n <= MTU_LIMIT => match self.open_datagram(&mut buf[..n]) {
                            Some(p) => Event::Packet(p),
                            None => Event::Dropped,
                        },
                        Ok(_) => Event::Dropped,
                        Err(e) if transient(&e) => Event::Dropped,
                        Err(e) => Event::Closed(Failure::Socket(e.kind())),
                    },
                }
            } => ev,
            _ = tokio::time::sleep_until(deadline) => Event::Timer,
        }
    }

    /// Takes more datagrams that are already waiting, without blocking.
    fn drain_inbound(&self, inbound: &mut Inbound, buf: &mut [u8], out: &mut Vec<Bytes>) {
        while out.len() < INPUT_BATCH {
            match inbound {
                Inbound::Channel(rx) => match rx.try_recv() {
                    Ok(p) => out.push(p),
                    Err(_) => return,
                },
                Inbound::Socket => match self.socket.try_recv(buf) {
                    Ok(n) if n <= MTU_LIMIT => match self.open_datagram(&mut buf[..n]) {
                        Some(p) => out.push(p),
                        None => self.count_drop(),
                    },
                    Ok(_) => self.count_drop(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => return,
                },
            }
        }
    }

    fn count_drop(&self) {
        self.shared
            .counters
            .dropped_in
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Splits a decrypted payload into the KCP packets it carries (sess.go:656-712): a data shard
    /// is its KCP packet; FEC may recover more from parity.
    fn demux(&mut self, p: Bytes, now: u32, out: &mut Vec<Bytes>) {
        let counters = &self.shared.counters;
        counters.packets_in.fetch_add(1, Ordering::Relaxed);
        let Some(dec) = self.fec_dec.as_mut() else {
            out.push(p);
            return;
        };
        if p.len() <= FEC_HEADER {
            self.count_drop();
            return;
        }
        let seqid = le32(&p);
        let flag = le16(&p[4..]);
        if flag != TYPE_DATA && flag != TYPE_PARITY {
            self.count_drop();
            return;
        }
        if flag == TYPE_PARITY {
            counters.fec_parity_in.fetch_add(1, Ordering::Relaxed);
        }
        let recovered = dec.decode(seqid, flag, &p[FEC_HEADER..], now);
        if flag == TYPE_DATA && p.len() >= FEC_HEADER_PLUS2 {
            out.push(p.slice(FEC_HEADER_PLUS2..));
        }
        for r in recovered {
            if r.len() >= 2 {
                let size = le16(&r) as usize;
                if (2..=r.len()).contains(&size) {
                    counters.fec_recovered.fetch_add(1, Ordering::Relaxed);
                    out.push(Bytes::from(r).slice(2..size));
                }
            }
        }
    }

    /// Adds the FEC header and parity, seals, and sends the packets of one flush.
    async fn send_all(&mut self, packets: Vec<Vec<u8>>) {
        let mut wire = Vec::with_capacity(packets.len() * 2);
        for mut pkt in packets {
            let parity = match self.fec_enc.as_mut() {
                Some(enc) => enc.encode(&mut pkt),
                None => Vec::new(),
            };
            wire.push(pkt);
            wire.extend(parity);
        }
        if let Some(crypt) = self.config.crypt.as_ref() {
            for pkt in &mut wire {
                packet::seal(crypt, pkt);
            }
        }
        for pkt in &wire {
            let sent = if self.connected {
                self.socket.send(pkt).await
            } else {
                self.socket.send_to(pkt, self.peer).await
            };
            if let Err(e) = sent {
                tracing::trace!(peer = %self.peer, error = %e, "kcp: send failed");
            }
        }
        self.shared
            .counters
            .packets_out
            .fetch_add(wire.len() as u64, Ordering::Relaxed);
    }

    /// Runs the state machine once under the session lock: input, clock, flush, wakeups.
    fn step(
        &self,
        now: u32,
        kcp_packets: &mut Vec<Bytes>,
        got_packet: bool,
        last_input: &mut Instant,
    ) -> Step {
        let mut st = lock(&self.shared.state);
        let _ = st.kcp.update(now);
        for k in kcp_packets.drain(..) {
            if packet::valid_kcp(&k, self.conv, Some(now)) && st.kcp.input(&k).is_ok() {
                *last_input = Instant::now();
            } else {
                self.shared
                    .counters
                    .dropped_in
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        // With ack_nodelay, input is acknowledged at once (kcp.go:648-650), together with the
        // data the acknowledgements let into the window; without it, acks wait for the next
        // interval flush. Writes and timers always flush (kcp-go's Write, sess.go:295-298).
        if self.config.ack_nodelay || !got_packet {
            let _ = st.kcp.flush();
        }
        if st.kcp.is_dead_link() {
            st.failure.get_or_insert(Failure::DeadLink);
        }
        if let Some(idle) = self.config.idle_timeout {
            if last_input.elapsed() >= idle {
                st.failure.get_or_insert(Failure::Idle);
            }
        }
        let wait_snd = st.kcp.wait_snd();
        if st.kcp.peeksize().is_ok() {
            if let Some(w) = st.read_waker.take() {
                w.wake();
            }
        }
        if wait_snd < st.send_limit() {
            if let Some(w) = st.write_waker.take() {
                w.wake();
            }
        }
        if wait_snd == 0 {
            if let Some(w) = st.shutdown_waker.take() {
                w.wake();
            }
        }
        let failed = st.failure.is_some();
        if failed {
            st.wake_all();
        }
        let dropped = st.dropped;
        let next = st.kcp.check(now);
        Step {
            failed,
            dropped,
            wait_snd,
            next,
        }
    }

    /// The session's loop; returns when the stream is gone and its data acknowledged (or the
    /// linger time passed), or the session failed.
    pub(crate) async fn run(mut self, mut inbound: Inbound) {
        let mut buf = vec![0u8; MTU_LIMIT + 1];
        let mut payloads: Vec<Bytes> = Vec::new();
        let mut kcp_packets: Vec<Bytes> = Vec::new();
        let mut deadline = Instant::now();
        let mut last_input = Instant::now();
        let mut linger_until: Option<Instant> = None;
        let interval = Duration::from_millis(u64::from(self.config.nodelay.interval.max(1)));
        loop {
            let mut got_packet = false;
            match self.next_event(&mut inbound, &mut buf, deadline).await {
                Event::Packet(p) => {
                    payloads.push(p);
                    got_packet = true;
                }
                Event::Dropped => {
                    self.count_drop();
                    got_packet = true;
                }
                Event::Closed(f) => self.shared.fail(f),
                Event::Notified | Event::Timer => {}
            }
            self.drain_inbound(&mut inbound, &mut buf, &mut payloads);

            let now = self.now_ms();
            for p in payloads.drain(..) {
                self.demux(p, now, &mut kcp_packets);
            }

            let Step {
                failed,
                dropped,
                wait_snd,
                next,
            } = self.step(now, &mut kcp_packets, got_packet, &mut last_input);
            let out = std::mem::take(&mut *lock(&self.packets));
            if !out.is_empty() {
                self.send_all(out).await;
            }

            if failed {
                break;
            }
            if dropped {
                let until =
                    *linger_until.get_or_insert_with(|| Instant::now() + self.config.linger);
                if wait_snd == 0 || Instant::now() >= until {
                    break;
                }
            }

            // Sleep until KCP needs its clock (retransmissions, window probes) or, when nothing
            // is in flight, until input, a write or the idle deadline.
            let now_i = Instant::now();
            deadline = if wait_snd > 0 {
                now_i
                    + Duration::from_millis(u64::from(next))
                        .min(interval)
                        .max(Duration::from_millis(1))
            } else {
                now_i + IDLE_TICK
            };
            if let Some(idle) = self.config.idle_timeout {
                deadline = deadline.min(last_input + idle);
            }
            if let Some(until) = linger_until {
                deadline = deadline.min(until);
            }
        }
        tracing::debug!(peer = %self.peer, conv = self.conv, "kcp: session ended");
        if let Some((tx, id)) = self.on_exit.take() {
            let _ = tx.send((self.peer, id));
        }
    }
}

/// Errors a UDP socket reports for ICMP messages about earlier datagrams: not fatal (kcp-go's
/// sockets are unconnected and never see them).
pub(crate) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::WouldBlock
    )
}

/// One KCP session over UDP, wire-compatible with a kcp-go `UDPSession`: tokio `AsyncRead` +
/// `AsyncWrite`.
///
/// Writes go into KCP's send queue, at most the send window (`min(send_window, remote window)`
/// segments in flight or queued, as kcp-go's `Write`); a full window makes `poll_write` return
/// `Pending` until acknowledgements free it. `poll_flush` asks the driver to transmit now and
/// returns at once; `poll_shutdown` waits until everything written is acknowledged, then refuses
/// further writes (reads go on: kcp-go has no close packet, so the peer is not told).
///
/// Reads never return end-of-file (there is no close on the wire): a session ends with an error,
/// when the peer stops acknowledging (`dead_link` retransmissions), after `idle_timeout` without
/// input, or when the peer starts a new conversation from the same address.
///
/// Dropping the stream ends the session: the driver keeps sending until what was written is
/// acknowledged or `linger` passes, then frees the session (on a listener, its slot).
pub struct KcpStream {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: io::Result<SocketAddr>,
    conv: u32,
}

impl std::fmt::Debug for KcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KcpStream")
            .field("peer", &self.peer)
            .field("conv", &self.conv)
            .finish()
    }
}

impl KcpStream {
    /// Opens a session to a kcp-go listener (or a [`crate::KcpListener`]) at `addr`, from a new
    /// UDP socket of its own, as `kcp.DialWithOptions` does. There is no handshake: this returns
    /// at once, and a peer that is absent or uses another key shows as reads that never complete
    /// (and, once data is written, a `dead_link` error).
    pub async fn connect(addr: SocketAddr, config: KcpConfig) -> io::Result<KcpStream> {
        config.validate()?;
        let bind: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(addr).await?;
        let conv: u32 = rand::random();
        let (stream, driver) =
            new_session(conv, Arc::new(config), Arc::new(socket), addr, true, None);
        tokio::spawn(driver.run(Inbound::Socket));
        Ok(stream)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the UDP socket (a listener's for accepted sessions).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }

    /// The conversation id (kcp-go's `GetConv`).
    pub fn conv(&self) -> u32 {
        self.conv
    }

    /// Counters of this session.
    pub fn stats(&self) -> KcpStats {
        let c = &self.shared.counters;
        KcpStats {
            packets_in: c.packets_in.load(Ordering::Relaxed),
            packets_out: c.packets_out.load(Ordering::Relaxed),
            fec_parity_in: c.fec_parity_in.load(Ordering::Relaxed),
            fec_recovered: c.fec_recovered.load(Ordering::Relaxed),
            dropped_in: c.dropped_in.load(Ordering::Relaxed),
        }
    }
}

impl Drop for KcpStream {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.state);
        st.dropped = true;
        st.read_waker = None;
        st.write_waker = None;
        st.shutdown_waker = None;
        drop(st);
        self.shared.notify.notify_one();
    }
}

impl AsyncRead for KcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut guard = lock(&self.shared.state);
        let st = &mut *guard;
        if st.leftover_pos < st.leftover.len() {
            let n = buf.remaining().min(st.leftover.len() - st.leftover_pos);
            buf.put_slice(&st.leftover[st.leftover_pos..st.leftover_pos + n]);
            st.leftover_pos += n;
            return Poll::Ready(Ok(()));
        }
        loop {
            match st.kcp.peeksize() {
                // A zero-length message would read as end-of-file: skip it.
                Ok(0) => {
                    let _ = st.kcp.recv(&mut []);
                }
                Ok(size) if size <= buf.remaining() => {
                    let dst = buf.initialize_unfilled_to(size);
                    let n = st.kcp.recv(dst).map_err(kcp_io)?;
                    buf.advance(n);
                    break;
                }
                Ok(size) => {
                    st.leftover.resize(size, 0);
                    let n = st.kcp.recv(&mut st.leftover).map_err(kcp_io)?;
                    st.leftover.truncate(n);
                    let k = buf.remaining().min(n);
                    buf.put_slice(&st.leftover[..k]);
                    st.leftover_pos = k;
                    break;
                }
                Err(_) => {
                    if let Some(f) = st.failure {
                        return Poll::Ready(Err(f.to_io()));
                    }
                    st.read_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        drop(guard);
        // Reading may reopen the receive window: let the driver tell the peer.
        self.shared.notify.notify_one();
        Poll::Ready(Ok(()))
    }
}

fn kcp_io(e: kcp::Error) -> io::Error {
    io::Error::other(KcpError::Kcp(e.to_string()))
}

impl AsyncWrite for KcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut st = lock(&self.shared.state);
        if let Some(f) = st.failure {
            return Poll::Ready(Err(f.to_io()));
        }
        if st.write_shutdown {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                KcpError::Closed,
            )));
        }
        let limit = st.send_limit();
        let wait_snd = st.kcp.wait_snd();
        if wait_snd >= limit {
            st.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let room = (limit - wait_snd).min(MAX_WRITE_SEGMENTS) * st.mss;
        let n = buf.len().min(room);
        let sent = st.kcp.send(&buf[..n]).map_err(kcp_io)?;
        drop(st);
        self.shared.notify.notify_one();
        Poll::Ready(Ok(sent))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.notify.notify_one();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut st = lock(&self.shared.state);
        st.write_shutdown = true;
        if let Some(f) = st.failure {
            return Poll::Ready(Err(f.to_io()));
        }
        if st.kcp.wait_snd() == 0 {
            return Poll::Ready(Ok(()));
        }
        st.shutdown_waker = Some(cx.waker().clone());
        drop(st);
        self.shared.notify.notify_one();
        Poll::Pending
    }
}
