//! Certificates made on the spot (rcgen) for TLS, mutual TLS, `wss@` and `quic@` in tests,
//! examples and benchmarks: a CA, a server certificate for `localhost`, `127.0.0.1` and `::1`,
//! and a client certificate. Nothing here is meant for production; no private key is ever
//! committed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM.
#[derive(Clone, Debug)]
pub struct CertPem {
    /// The certificate chain, leaf first (PEM).
    pub cert: String,
    /// The private key, PKCS#8 (PEM).
    pub key: String,
}

/// A CA and the certificates it signed.
#[derive(Debug)]
pub struct TestPki {
    /// The CA certificate (PEM), to trust.
    pub ca: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub server: CertPem,
    /// A client certificate with common name `client`.
    pub client: CertPem,
}

fn err(e: rcgen::Error) -> String {
    format!("rcgen: {e}")
}

impl TestPki {
    /// A new CA with a server certificate and a client certificate.
    pub fn new() -> Result<TestPki, String> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sextant test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca = ca_params.clone().self_signed(&ca_key).map_err(err)?.pem();
        let mut pki = TestPki {
            ca,
            ca_params,
            ca_key,
            server: CertPem {
                cert: String::new(),
                key: String::new(),
            },
            client: CertPem {
                cert: String::new(),
                key: String::new(),
            },
        };
        pki.server = pki.leaf(
            "localhost",
            &["localhost", "127.0.0.1", "::1"],
            false,
            false,
        )?;
        pki.client = pki.leaf("client", &[], true, false)?;
        Ok(pki)
    }

    /// A certificate signed by this CA with common name `cn` and the names `sans` (host names
    /// or IP addresses); a client certificate when `client`; one that expired in 2021 when
    /// `expired`.
    pub fn leaf(
        &self,
        cn: &str,
        sans: &[&str],
        client: bool,
        expired: bool,
    ) -> Result<CertPem, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        for s in sans {
            params.subject_alt_names.push(match s.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*s).try_into().map_err(err)?),
            });
        }
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().map_err(err)?;
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).map_err(err)?;
        Ok(CertPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Writes `ca.crt`, `server.crt`, `server.key`, `client.crt` and `client.key` into `dir`
    /// (created if missing) and returns their paths in that order.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<[PathBuf; 5]> {
        std::fs::create_dir_all(dir)?;
        let files = [
            ("ca.crt", &self.ca),
            ("server.crt", &self.server.cert),
            ("server.key", &self.server.key),
            ("client.crt", &self.client.cert),
            ("client.key", &self.client.key),
        ];
        let mut out: [PathBuf; 5] = Default::default();
        for (i, (name, pem)) in files.iter().enumerate() {
            let p = dir.join(name);
            std::fs::write(&p, pem.as_bytes())?;
            out[i] = p;
        }
        Ok(out)
    }
}
