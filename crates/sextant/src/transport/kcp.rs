//! The `kcp@` network: KCP over UDP with kcp-go's session layer (block cipher, FEC, checksum),
//! from the `sextant-kcp` crate. rpcx listens with `kcp.ListenWithOptions(addr, block, 10, 3)`
//! and dials with `kcp.DialWithOptions(addr, block, 10, 3)`; [`KcpConfig`] holds the same
//! settings (rpcx-examples derive the AES key from a pass and salt:
//! [`KcpConfig::with_pass_salt`]).

use std::io;
use std::net::SocketAddr;

use sextant_kcp::{KcpConfig, KcpListener, KcpStream};

use super::{Address, Stream};
use crate::client::ClientOptions;
use crate::error::Error;
use crate::server::ServerOptions;

/// How long a server keeps a silent KCP session when its [`KcpConfig::idle_timeout`] is not set.
pub(super) const SERVER_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

async fn resolve(addr: &Address) -> io::Result<SocketAddr> {
    tokio::net::lookup_host(addr.addr())
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "resolves to no address"))
}

pub(super) async fn bind(addr: &Address, options: &ServerOptions) -> Result<KcpListener, Error> {
    let mut config = options.kcp.clone().ok_or_else(|| {
        Error::Config(format!(
            "{addr}: kcp@ needs ServerOptions::kcp (rpcx: \"KCP BlockCrypt must be configured\"); \
             KcpConfig::new().with_pass_salt(pass, salt) as rpcx-examples"
        ))
    })?;
    let bind_err = |e: io::Error| Error::Bind {
        address: addr.to_string(),
        source: e.into(),
    };
    // kcp-go has no close packet: without an idle timeout the sessions of clients that went
    // away would stay until `max_sessions` is reached and new clients are refused.
    if config.idle_timeout.is_none() {
        config.idle_timeout = Some(SERVER_IDLE);
    }
    let local = resolve(addr).await.map_err(bind_err)?;
    KcpListener::bind(local, config).await.map_err(bind_err)
}

pub(super) async fn dial(addr: &Address, options: &ClientOptions) -> io::Result<Stream> {
    let config: KcpConfig = options.kcp.clone().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "kcp@ needs ClientOptions::kcp (the same block cipher and FEC as the server)",
        )
    })?;
    let remote = resolve(addr).await?;
    Ok(Stream::from_io(KcpStream::connect(remote, config).await?))
}
