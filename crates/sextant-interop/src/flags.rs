//! The transport switches of `interop-server`, `interop-client` and the benchmark: TLS
//! certificates, mutual TLS, the KCP pass and salt, so that they can face Go rpcx peers set up
//! with the same files and secrets.
//!
//! Server: `--cert FILE --key FILE [--client-ca FILE]` (or `--self-signed DIR`: make a CA, a
//! server certificate for localhost/127.0.0.1/::1 and a client certificate, write them to DIR
//! and serve with them), `--kcp-pass P --kcp-salt S`.
//! Client: `--ca FILE [--cert FILE --key FILE] [--server-name NAME] [--insecure]`,
//! `--kcp-pass P --kcp-salt S`.

use std::path::PathBuf;

use sextant::transport::{ClientTlsConfig, KcpConfig, ServerTlsConfig};
use sextant::{ClientOptions, Error, Result, ServerBuilder};

use crate::pki::TestPki;

/// The value after a switch, or a usage error naming it.
fn value(flag: &str, args: &mut dyn Iterator<Item = String>) -> Result<String> {
    args.next()
        .ok_or_else(|| Error::Config(format!("{flag} needs a value")))
}

/// rpcx-examples' KCP key: pbkdf2-sha1(pass, salt, 4096 rounds, 32 bytes), AES, FEC 10/3.
fn kcp(pass: &Option<String>, salt: &Option<String>) -> Result<Option<KcpConfig>> {
    match (pass, salt) {
        (Some(p), Some(s)) => Ok(Some(KcpConfig::new().with_pass_salt(p, s))),
        (None, None) => Ok(None),
        _ => Err(Error::Config(
            "--kcp-pass and --kcp-salt go together".into(),
        )),
    }
}

/// A server's transport switches.
#[derive(Debug, Default, Clone)]
pub struct ServerTransport {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    self_signed: Option<PathBuf>,
    kcp_pass: Option<String>,
    kcp_salt: Option<String>,
}

impl ServerTransport {
    /// The usage text of these switches.
    pub const USAGE: &'static str =
        "[--cert FILE --key FILE [--client-ca FILE] | --self-signed DIR] \
                                     [--kcp-pass P --kcp-salt S]";

    /// Takes `flag` (and its value from `args`) if it is one of these switches: `Ok(true)`.
    pub fn parse(&mut self, flag: &str, args: &mut dyn Iterator<Item = String>) -> Result<bool> {
        match flag {
            "--cert" => self.cert = Some(value(flag, args)?.into()),
            "--key" => self.key = Some(value(flag, args)?.into()),
            "--client-ca" => self.client_ca = Some(value(flag, args)?.into()),
            "--self-signed" => self.self_signed = Some(value(flag, args)?.into()),
            "--kcp-pass" => self.kcp_pass = Some(value(flag, args)?),
            "--kcp-salt" => self.kcp_salt = Some(value(flag, args)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets TLS and KCP on `builder` from the switches given.
    pub fn apply(&self, mut builder: ServerBuilder) -> Result<ServerBuilder> {
        let (mut cert, mut key) = (self.cert.clone(), self.key.clone());
        let client_ca = self.client_ca.clone();
        if let Some(dir) = &self.self_signed {
            let pki = TestPki::new().map_err(Error::Config)?;
            let [ca, server_cert, server_key, client_cert, client_key] = pki
                .write_to(dir)
                .map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
            println!(
                "self-signed: CA {} (server {} {}, client {} {})",
                ca.display(),
                server_cert.display(),
                server_key.display(),
                client_cert.display(),
                client_key.display()
            );
            cert = Some(server_cert);
            key = Some(server_key);
        }
        match (&cert, &key) {
            (Some(c), Some(k)) => {
                let mut tls = ServerTlsConfig::builder().identity_pem_files(c, k)?;
                if let Some(ca) = &client_ca {
                    tls = tls.client_ca_pem_file(ca)?;
                }
                builder = builder.tls(tls.build()?);
            }
            (None, None) if client_ca.is_none() => {}
            _ => {
                return Err(Error::Config(
                    "--cert and --key go together (and --client-ca needs them)".into(),
                ))
            }
        }
        if let Some(k) = kcp(&self.kcp_pass, &self.kcp_salt)? {
            builder = builder.kcp(k);
        }
        Ok(builder)
    }
}

/// A client's transport switches.
#[derive(Debug, Default, Clone)]
pub struct ClientTransport {
    /// `--ca`: the CA certificate (PEM) the server's certificate is checked against.
    pub ca: Option<PathBuf>,
    /// `--cert`: the client's certificate (PEM), for mutual TLS.
    pub cert: Option<PathBuf>,
    /// `--key`: the client's key (PEM), for mutual TLS.
    pub key: Option<PathBuf>,
    /// `--server-name`: the name the server's certificate must have.
    pub server_name: Option<String>,
    /// `--insecure`: TLS without checking the server's certificate.
    pub insecure: bool,
    /// `--kcp-pass`.
    pub kcp_pass: Option<String>,
    /// `--kcp-salt`.
    pub kcp_salt: Option<String>,
}

impl ClientTransport {
    /// The usage text of these switches.
    pub const USAGE: &'static str = "[--ca FILE [--cert FILE --key FILE] [--server-name NAME] | \
                                     --insecure] [--kcp-pass P --kcp-salt S]";

    /// Takes `flag` (and its value from `args`) if it is one of these switches: `Ok(true)`.
    pub fn parse(&mut self, flag: &str, args: &mut dyn Iterator<Item = String>) -> Result<bool> {
        match flag {
            "--ca" => self.ca = Some(value(flag, args)?.into()),
            "--cert" => self.cert = Some(value(flag, args)?.into()),
            "--key" => self.key = Some(value(flag, args)?.into()),
            "--server-name" => self.server_name = Some(value(flag, args)?),
            "--insecure" => self.insecure = true,
            "--kcp-pass" => self.kcp_pass = Some(value(flag, args)?),
            "--kcp-salt" => self.kcp_salt = Some(value(flag, args)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether any TLS switch was given.
    pub fn has_tls(&self) -> bool {
        self.ca.is_some() || self.insecure
    }

    /// Sets TLS and KCP on `options` from the switches given.
    pub fn apply(&self, mut options: ClientOptions) -> Result<ClientOptions> {
        if self.has_tls() {
            let mut tls = ClientTlsConfig::builder();
            if let Some(ca) = &self.ca {
                tls = tls.ca_pem_file(ca)?;
            }
            if self.insecure {
                tls = tls.insecure_skip_verify();
            }
            match (&self.cert, &self.key) {
                (Some(c), Some(k)) => tls = tls.identity_pem_files(c, k)?,
                (None, None) => {}
                _ => return Err(Error::Config("--cert and --key go together".into())),
            }
            if let Some(n) = &self.server_name {
                tls = tls.server_name(n.clone());
            }
            options = options.tls(tls.build()?);
        } else if self.cert.is_some() || self.key.is_some() || self.server_name.is_some() {
            return Err(Error::Config(
                "--cert, --key and --server-name need --ca (or --insecure)".into(),
            ));
        }
        if let Some(k) = kcp(&self.kcp_pass, &self.kcp_salt)? {
            options = options.kcp(k);
        }
        Ok(options)
    }
}
