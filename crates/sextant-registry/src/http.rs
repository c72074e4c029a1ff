//! A small HTTP/1.1 JSON client for registries with an HTTP API (the embedded registry, Consul).
//!
//! Backend crates use it so that every HTTP registry pools connections, times out and reports
//! errors the same way.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{RegistryError, Result};

/// The largest response body read (16 MiB): a registry listing is far smaller.
const MAX_BODY: usize = 16 << 20;

/// An HTTP/1.1 client bound to one base URL (`http://127.0.0.1:8500`), with pooled
/// connections.
#[derive(Clone)]
pub struct HttpClient {
    engine: &'static str,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("engine", &self.engine)
            .field("base", &self.base)
            .finish()
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl HttpClient {
    /// A client for `base_url`: `http://host:port`, or `host:port` (`http://` is assumed).
    /// `engine` names the registry in errors. Only plain HTTP is supported.
    pub fn new(engine: &'static str, base_url: &str) -> Result<HttpClient> {
        let base = if base_url.contains("://") {
            base_url.to_string()
        } else {
            format!("http://{base_url}")
        };
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = base.parse().map_err(|e| {
            RegistryError::Config(format!("{engine} address {base_url:?} is not a URL: {e}"))
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(RegistryError::Config(format!(
                "{engine} address {base_url:?}: only http:// is supported"
            )));
        }
        if uri.host().is_none() || uri.path() != "/" && !uri.path().is_empty() {
            return Err(RegistryError::Config(format!(
                "{engine} address {base_url:?} must be http://host:port with no path"
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HttpClient {
            engine,
            base,
            client,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request to `path_and_query` (starting with `/`) and reads the whole response,
    /// giving up after `timeout`. A JSON body is sent with `Content-Type: application/json`.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<HttpResponse> {
        self.request_with_headers(method, path_and_query, body, timeout, &[])
            .await
    }

    /// Like [`request`](Self::request), with extra headers (an API token).
    pub async fn request_with_headers(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
        timeout: Duration,
        headers: &[(&'static str, String)],
    ) -> Result<HttpResponse> {
        let operation = || format!("{method} {path_and_query}");
        let uri = format!("{}{}", self.base, path_and_query);
        let mut req = Request::builder().method(method.clone()).uri(&uri);
        if body.is_some() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| RegistryError::backend(self.engine, operation(), e))?;
        let fut = async {
            let resp =
                self.client.request(req).await.map_err(|e| {
                    RegistryError::backend(self.engine, operation(), error_chain(&e))
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| RegistryError::backend(self.engine, operation(), e))?
                .to_bytes();
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Timeout {
                engine: self.engine,
                operation: operation(),
                timeout,
            }),
        }
    }

    /// An error for an unexpected response.
    pub fn unexpected(&self, operation: &str, resp: &HttpResponse) -> RegistryError {
        let mut text = resp.text();
        text.truncate(300);
        RegistryError::backend(
            self.engine,
            operation,
            format!("HTTP {}: {}", resp.status, text.trim()),
        )
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: Connection
/// refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-escapes a registry key for use in a URL path: letters, digits, `-._~` and the
/// separators `/`, `@`, `:` stay; everything else becomes `%XX`.
pub fn escape_path(s: &str) -> String {
    escape(s, b"-._~/@:")
}

/// Percent-escapes a value for use in a URL query.
pub fn escape_query(s: &str) -> String {
    escape(s, b"-._~")
}

fn escape(s: &str, keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || keep.contains(&c) {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        }
    }
    out
}

/// Decodes `%XX` escapes (not `+`), as for a URL path. `None` if an escape is invalid or the
/// result is not UTF-8.
pub fn unescape_path(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = (*b.get(i + 1)? as char).to_digit(16)?;
            let l = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        let k = "/rpcx_test/Arith/tcp@127.0.0.1:8972";
        assert_eq!(escape_path(k), k);
        let odd = "/a b/ü?&#%";
        let e = escape_path(odd);
        assert_eq!(e, "/a%20b/%C3%BC%3F%26%23%25");
        assert_eq!(unescape_path(&e).unwrap(), odd);
        assert!(unescape_path("%zz").is_none());
        assert_eq!(escape_query("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            HttpClient::new("x", "127.0.0.1:8500").unwrap().base_url(),
            "http://127.0.0.1:8500"
        );
        assert_eq!(
            HttpClient::new("x", "http://127.0.0.1:8500/")
                .unwrap()
                .base_url(),
            "http://127.0.0.1:8500"
        );
        assert!(HttpClient::new("x", "https://127.0.0.1:8500").is_err());
        assert!(HttpClient::new("x", "http://127.0.0.1:8500/v1").is_err());
        assert!(HttpClient::new("x", "not a url").is_err());
    }
}
