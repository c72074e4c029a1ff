//! TLS (rustls) for servers and clients: rpcx's `WithTLSConfig` and `Option.TLSConfig`.
//!
//! A server with [`ServerOptions::tls`](crate::ServerOptions::tls) serves TLS on its `tcp@`,
//! `http@` and `wss@` listeners (TLS is required for `wss@` and `quic@`); a client with
//! [`ClientOptions::tls`](crate::ClientOptions::tls) dials TLS on `tcp@`, `http@` and `wss@`
//! addresses and uses the same roots for `quic@`. Certificates and keys are PEM.
//!
//! ```no_run
//! # fn run() -> sextant::Result<()> {
//! use sextant::transport::{ClientTlsConfig, ServerTlsConfig};
//! let server_tls = ServerTlsConfig::builder()
//!     .identity_pem_files("server.crt", "server.key")?
//!     .client_ca_pem_file("ca.crt")?          // mutual TLS: clients must show a certificate
//!     .build()?;
//! let client_tls = ClientTlsConfig::builder()
//!     .ca_pem_file("ca.crt")?
//!     .identity_pem_files("client.crt", "client.key")?
//!     .server_name("server.example")          // SNI and the name checked; default: the host dialled
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! A client certificate's identity is visible to the server's auth function (see
//! [`ServerBuilder::auth_fn_with_peer`](crate::server::ServerBuilder::auth_fn_with_peer)) and to
//! handlers ([`Context::peer_identity`](crate::Context::peer_identity)) as a [`PeerIdentity`].

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::error::{Error, Result};

/// The ALPN protocol rpcx's QUIC transport negotiates.
pub const RPCX_ALPN: &[u8] = b"rpcx";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_err(what: &str, e: impl fmt::Display) -> Error {
    Error::Config(format!("TLS: {what}: {e}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| config_err(&format!("cannot read {}", path.display()), e))
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_err(what, e))?;
    if certs.is_empty() {
        return Err(config_err(what, "no CERTIFICATE block in the PEM"));
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| config_err("private key", e))
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs_from_pem(pem, "CA certificates")? {
        roots.add(c).map_err(|e| config_err("CA certificate", e))?;
    }
    Ok(roots)
}

/// `config` with `alpn` as its only ALPN protocol when it names none, else `config` itself.
#[cfg(feature = "quic")]
fn default_alpn<C: Clone>(
    config: &Arc<C>,
    alpn: &[u8],
    protocols: impl Fn(&mut C) -> &mut Vec<Vec<u8>>,
) -> Arc<C> {
    let mut c = (**config).clone();
    let p = protocols(&mut c);
    if !p.is_empty() {
        return config.clone();
    }
    p.push(alpn.to_vec());
    Arc::new(c)
}

/// A server's TLS settings: its certificate chain and key, and whether (and by which CAs)
/// clients must be authenticated. Cheap to clone.
#[derive(Clone)]
pub struct ServerTlsConfig {
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for ServerTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfig")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfig {
    /// A builder: [`identity_pem`](ServerTlsConfigBuilder::identity_pem) is required.
    pub fn builder() -> ServerTlsConfigBuilder {
        ServerTlsConfigBuilder::default()
    }

    /// A server certificate chain and key, PEM; no client authentication.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<ServerTlsConfig> {
        ServerTlsConfig::builder()
            .identity_pem(cert_chain, key)?
            .build()
    }

    /// Any rustls server configuration, as built by the caller.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> ServerTlsConfig {
        ServerTlsConfig { config }
    }

    /// The rustls configuration.
    pub fn rustls(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }

    /// The same configuration with `alpn` as the only protocol when it names none (QUIC's
    /// `rpcx`, as rpcx sets `NextProtos`).
    #[cfg(feature = "quic")]
    pub(crate) fn with_default_alpn(&self, alpn: &[u8]) -> Arc<rustls::ServerConfig> {
        default_alpn(&self.config, alpn, |c| &mut c.alpn_protocols)
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}

/// Builds a [`ServerTlsConfig`].
#[derive(Default)]
pub struct ServerTlsConfigBuilder {
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    client_roots: Option<RootCertStore>,
    client_auth_optional: bool,
    alpn: Vec<Vec<u8>>,
}

impl fmt::Debug for ServerTlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfigBuilder")
            .field("identity", &self.identity.is_some())
            .field("client_auth", &self.client_roots.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfigBuilder {
    /// The server's certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or SEC1),
    /// PEM.
    pub fn identity_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self> {
        self.identity = Some((
            certs_from_pem(cert_chain, "server certificate")?,
            key_from_pem(key)?,
        ));
        Ok(self)
    }

    /// [`identity_pem`](Self::identity_pem) from files.
    pub fn identity_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let c = read_file(cert_chain.as_ref())?;
        let k = read_file(key.as_ref())?;
        self.identity_pem(&c, &k)
    }

    /// Mutual TLS: clients must present a certificate signed by one of these CAs (PEM), or the
    /// handshake fails (Go's `tls.RequireAndVerifyClientCert`).
    pub fn client_ca_pem(mut self, ca: &[u8]) -> Result<Self> {
        self.client_roots = Some(roots_from_pem(ca)?);
        Ok(self)
    }

    /// [`client_ca_pem`](Self::client_ca_pem) from a file.
    pub fn client_ca_pem_file(self, ca: impl AsRef<Path>) -> Result<Self> {
        let c = read_file(ca.as_ref())?;
        self.client_ca_pem(&c)
    }

    /// With [`client_ca_pem`](Self::client_ca_pem): a client without a certificate is let in
    /// too (Go's `tls.VerifyClientCertIfGiven`); one with a certificate must pass the check.
    pub fn client_auth_optional(mut self) -> Self {
        self.client_auth_optional = true;
        self
    }

    /// ALPN protocols offered, in order of preference. Default: none (QUIC listeners use
    /// `rpcx`).
    pub fn alpn(mut self, protocols: impl IntoIterator<Item = impl Into<Vec<u8>>>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The configuration, or why it is not one (no identity, a key that does not match).
    pub fn build(self) -> Result<ServerTlsConfig> {
        let (certs, key) = self
            .identity
            .ok_or_else(|| Error::Config("TLS: a server needs a certificate and key".into()))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?;
        let builder = match self.client_roots {
            Some(roots) => {
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let v = if self.client_auth_optional {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder
                    .with_client_cert_verifier(v.build().map_err(|e| config_err("client CAs", e))?)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| config_err("certificate and key", e))?;
        config.alpn_protocols = self.alpn;
        Ok(ServerTlsConfig {
            config: Arc::new(config),
        })
    }
}

/// A client's TLS settings: which servers it trusts, its own certificate for mutual TLS, the
/// name it expects (SNI), ALPN. Cheap to clone.
#[derive(Clone)]
pub struct ClientTlsConfig {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for ClientTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTlsConfig")
            .field("server_name", &self.server_name)
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl ClientTlsConfig {
    /// A builder: [`ca_pem`](ClientTlsConfigBuilder::ca_pem) (or
    /// [`insecure_skip_verify`](ClientTlsConfigBuilder::insecure_skip_verify)) is required.
    pub fn builder() -> ClientTlsConfigBuilder {
        ClientTlsConfigBuilder::default()
    }

    /// Trusts the CA certificates in `ca` (PEM); no client certificate.
    pub fn from_ca_pem(ca: &[u8]) -> Result<ClientTlsConfig> {
        ClientTlsConfig::builder().ca_pem(ca)?.build()
    }

    /// Any rustls client configuration, as built by the caller; `server_name` overrides the
    /// host dialled as SNI and the name checked.
    pub fn from_rustls(
        config: Arc<rustls::ClientConfig>,
        server_name: Option<String>,
    ) -> ClientTlsConfig {
        ClientTlsConfig {
            config,
            server_name,
        }
    }

    /// The rustls configuration.
    pub fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }

    /// The name set with [`server_name`](ClientTlsConfigBuilder::server_name), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The name to send and check when dialling `host` (the host part of the address).
    pub(crate) fn name_for(&self, host: &str) -> io::Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS: {name:?} is not a valid server name"),
            )
        })
    }

    #[cfg(feature = "quic")]
    pub(crate) fn with_default_alpn(&self, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
        default_alpn(&self.config, alpn, |c| &mut c.alpn_protocols)
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }
}

/// Builds a [`ClientTlsConfig`].
#[derive(Default)]
pub struct ClientTlsConfigBuilder {
    roots: Option<RootCertStore>,
    insecure: bool,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name: Option<String>,
    alpn: Vec<Vec<u8>>,
}

impl fmt::Debug for ClientTlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTlsConfigBuilder")
            .field("roots", &self.roots.as_ref().map(|r| r.len()))
            .field("insecure", &self.insecure)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTlsConfigBuilder {
    /// Trusts the CA certificates in `ca` (PEM). May be called more than once.
    pub fn ca_pem(mut self, ca: &[u8]) -> Result<Self> {
        let more = roots_from_pem(ca)?;
        let roots = self.roots.get_or_insert_with(RootCertStore::empty);
        roots.roots.extend(more.roots);
        Ok(self)
    }

    /// [`ca_pem`](Self::ca_pem) from a file.
    pub fn ca_pem_file(self, ca: impl AsRef<Path>) -> Result<Self> {
        let c = read_file(ca.as_ref())?;
        self.ca_pem(&c)
    }

    /// The client's certificate chain and key (PEM), for servers that require mutual TLS.
    pub fn identity_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self> {
        self.identity = Some((
            certs_from_pem(cert_chain, "client certificate")?,
            key_from_pem(key)?,
        ));
        Ok(self)
    }

    /// [`identity_pem`](Self::identity_pem) from files.
    pub fn identity_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self> {
        let c = read_file(cert_chain.as_ref())?;
        let k = read_file(key.as_ref())?;
        self.identity_pem(&c, &k)
    }

    /// The name sent as SNI and checked against the server's certificate. Default: the host of
    /// the address dialled (Go's `ServerName`).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// ALPN protocols offered. Default: none (`quic@` dials offer `rpcx`).
    pub fn alpn(mut self, protocols: impl IntoIterator<Item = impl Into<Vec<u8>>>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts any server certificate (Go's `InsecureSkipVerify`): for tests and first contact
    /// only, as anyone on the path can read and change the traffic.
    pub fn insecure_skip_verify(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// The configuration, or why it is not one (no roots, a key that does not match).
    pub fn build(self) -> Result<ClientTlsConfig> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_err("protocol versions", e))?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
        } else {
            let roots = self.roots.ok_or_else(|| {
                Error::Config(
                    "TLS: a client needs CA certificates to trust (ca_pem) or \
                     insecure_skip_verify"
                        .into(),
                )
            })?;
            builder.with_root_certificates(roots)
        };
        let mut config = match self.identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| config_err("client certificate and key", e))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(ClientTlsConfig {
            config: Arc::new(config),
            server_name: self.server_name,
        })
    }
}

/// Go's `InsecureSkipVerify`: signatures are still checked, the chain and name are not.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Who is at the other end of a TLS (or QUIC) connection, as its handshake showed: the
/// certificate chain it presented (mutual TLS), the server name it asked for (SNI) and the ALPN
/// protocol agreed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    certificates: Vec<CertificateDer<'static>>,
    subject: Option<String>,
    common_name: Option<String>,
    dns_names: Vec<String>,
    server_name: Option<String>,
    alpn: Option<Vec<u8>>,
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerIdentity")
            .field("subject", &self.subject)
            .field("dns_names", &self.dns_names)
            .field("server_name", &self.server_name)
            .field("alpn", &self.alpn.as_deref().map(String::from_utf8_lossy))
            .finish()
    }
}

impl PeerIdentity {
    pub(crate) fn new(
        certificates: Vec<CertificateDer<'static>>,
        server_name: Option<String>,
        alpn: Option<Vec<u8>>,
    ) -> PeerIdentity {
        let mut id = PeerIdentity {
            certificates,
            server_name,
            alpn,
            ..PeerIdentity::default()
        };
        if let Some(leaf) = id.certificates.first() {
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
                id.subject = Some(cert.subject().to_string());
                id.common_name = cert
                    .subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_string);
                if let Ok(Some(san)) = cert.subject_alternative_name() {
                    for name in &san.value.general_names {
                        if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                            id.dns_names.push(n.to_string());
                        }
                    }
                }
            }
        }
        id
    }

    /// The identity a server saw on a TLS connection; `None` when the client presented nothing
    /// (no certificate, no SNI, no ALPN).
    pub(crate) fn from_server_conn(c: &rustls::ServerConnection) -> Option<PeerIdentity> {
        let certs: Vec<_> = c
            .peer_certificates()
            .map(|cs| cs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        let sni = c.server_name().map(str::to_string);
        let alpn = c.alpn_protocol().map(<[u8]>::to_vec);
        if certs.is_empty() && sni.is_none() && alpn.is_none() {
            return None;
        }
        Some(PeerIdentity::new(certs, sni, alpn))
    }

    /// The peer's certificate chain, DER, leaf first; empty when it showed none.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// The leaf certificate's subject, as `CN=client, O=Example`.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The leaf certificate's first common name (`CN`).
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The leaf certificate's DNS subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The server name the client asked for (SNI), server side.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The ALPN protocol agreed, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }
}

/// A TLS failure as a person can act on it: which check failed.
pub(crate) fn describe_tls_error(e: &io::Error) -> String {
    use rustls::CertificateError as C;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer => {
                "TLS: the peer's certificate is not trusted (unknown issuer; check the CA)".into()
            }
            C::Expired | C::ExpiredContext { .. } => {
                "TLS: the peer's certificate has expired".into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: the peer's certificate is not valid yet".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("TLS: the peer's certificate is not valid for the name dialled ({c:?})")
            }
            C::BadSignature => "TLS: the peer's certificate is not trusted (its signature does \
                                not verify against the trusted CAs)"
                .into(),
            C::BadEncoding => "TLS: the peer's certificate is malformed".into(),
            other => format!("TLS: invalid peer certificate: {other:?}"),
        },
        Some(rustls::Error::AlertReceived(a)) => match a {
            rustls::AlertDescription::CertificateRequired => {
                "TLS: the server requires a client certificate (mutual TLS)".into()
            }
            rustls::AlertDescription::UnknownCA | rustls::AlertDescription::BadCertificate => {
                format!("TLS: the server refused our client certificate ({a:?})")
            }
            rustls::AlertDescription::NoApplicationProtocol => {
                "TLS: no ALPN protocol in common with the server".into()
            }
            other => format!("TLS: the peer sent alert {other:?}"),
        },
        Some(rustls::Error::NoCertificatesPresented) => {
            "TLS: the client presented no certificate, and this server requires one".into()
        }
        Some(rustls::Error::InvalidMessage(m)) => {
            format!("TLS: the peer does not speak TLS ({m:?})")
        }
        Some(other) => format!("TLS: {other}"),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "TLS: the peer closed the connection during the handshake (a plain rpcx port, or \
             our certificate was refused)"
                .into()
        }
        None => format!("TLS: {e}"),
    }
}
