//! The debug page (GeeRPC's `/debug/geerpc`): an HTML view of a server's services, their
//! methods with calls, errors and latency, and its open connections, served on the service
//! port's HTTP side at [`DebugPage::PATH`] (`/debug/rpcx`) or any path of one's choosing.
//!
//! The figures come from a [`MetricsPlugin`] installed on the server; the page adds no hook of
//! its own. Every value on it (service and method names, peer addresses) is HTML-escaped: they
//! come from whoever registers services and whoever connects.
//!
//! ```
//! use sextant::Server;
//! use sextant_plugins::debug::DebugPage;
//! use sextant_plugins::metrics::MetricsPlugin;
//!
//! let metrics = MetricsPlugin::new();
//! let server = Server::builder()
//!     .plugin(metrics.clone())
//!     .http_route(DebugPage::PATH, DebugPage::new(&metrics))
//!     .build();
//! # drop(server);
//! ```
//!
//! The page holds the metrics handle, not the server: the connection list is read from the
//! server the plugin holds while it listens (see [the plugin and the server's
//! lifetime](crate::metrics#the-plugin-and-the-servers-lifetime)).
//! Once the server has shut down the page shows its last figures and no connections.

use std::fmt::Write as _;
use std::time::Duration;

use futures::future::BoxFuture;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use sextant::http::{full, text_response, HttpBody};
use sextant::server::{HttpHandler, HttpRequest};
use sextant::PeerAddr;

use crate::metrics::{MethodSnapshot, MetricsPlugin};

/// The debug page, an [`HttpHandler`] for
/// [`ServerBuilder::http_route`](sextant::ServerBuilder::http_route) or
/// [`Server::http_route`](sextant::Server::http_route). Answers `GET` (and `HEAD`) with
/// `text/html`; other methods get `405`.
#[derive(Clone, Debug)]
pub struct DebugPage {
    metrics: MetricsPlugin,
}

impl DebugPage {
    /// The default path, `/debug/rpcx` (GeeRPC serves its page at `/debug/geerpc`).
    pub const PATH: &'static str = "/debug/rpcx";

    /// A page showing the figures of `metrics`, which must be installed on the server
    /// ([`ServerBuilder::plugin`](sextant::ServerBuilder::plugin)).
    pub fn new(metrics: &MetricsPlugin) -> DebugPage {
        DebugPage {
            metrics: metrics.clone(),
        }
    }

    /// The page's HTML.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = self.write_page(&mut out);
        out
    }

    fn write_page(&self, out: &mut String) -> std::fmt::Result {
        out.push_str(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rpcx services</title>\n\
             <style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}\
             th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}td.n{text-align:right}</style>\n\
             </head><body>\n<h1>rpcx services</h1>\n",
        );
        let server = self.metrics.server();
        match self.metrics.server_stats() {
            Some(s) => writeln!(
                out,
                "<p>{} connections open, {} accepted; {} calls; {} bytes in, {} bytes out; {} pushes{}.</p>",
                s.connections,
                s.total_connections,
                s.calls,
                s.bytes_in,
                s.bytes_out,
                s.pushes,
                if server.is_none() { "; the server has shut down" } else { "" },
            )?,
            None => out.push_str("<p>The server is not listening.</p>\n"),
        }
        let methods = self.metrics.snapshot();
        if methods.is_empty() {
            out.push_str("<p>No services: is the MetricsPlugin installed on this server?</p>\n");
        } else {
            out.push_str("<h2>Services</h2>\n");
            write_methods(out, &methods, true)?;
        }
        let client = self.metrics.client_snapshot();
        if !client.is_empty() {
            out.push_str("<h2>Client calls</h2>\n");
            write_methods(out, &client, false)?;
        }
        if let Some(server) = server {
            let mut conns = server.active_connections();
            conns.sort_by_key(|c| c.id());
            writeln!(out, "<h2>Connections ({})</h2>", conns.len())?;
            out.push_str(
                "<table>\n<tr><th>id</th><th>peer</th><th>bytes in</th><th>bytes out</th>\
                 <th>pushes</th></tr>\n",
            );
            for c in &conns {
                writeln!(
                    out,
                    "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    c.id(),
                    Escaped(&c.peer_addr().to_string()),
                    c.bytes_in(),
                    c.bytes_out(),
                    c.pushes(),
                )?;
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body></html>\n");
        Ok(())
    }
}

/// The services table: the rows of one service are grouped under its name.
fn write_methods(
    out: &mut String,
    methods: &[MethodSnapshot],
    in_flight: bool,
) -> std::fmt::Result {
    out.push_str("<table>\n<tr><th>service</th><th>method</th><th>calls</th><th>errors</th>");
    if in_flight {
        out.push_str("<th>in flight</th>");
    }
    out.push_str("<th>p50</th><th>p90</th><th>p99</th></tr>\n");
    let mut last_service: Option<&str> = None;
    for m in methods {
        let service = if last_service == Some(m.service.as_str()) {
            ""
        } else {
            m.service.as_str()
        };
        last_service = Some(&m.service);
        write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            Escaped(service),
            Escaped(&m.method),
            m.calls,
            m.errors,
        )?;
        if in_flight {
            write!(out, "<td class=\"n\">{}</td>", m.in_flight)?;
        }
        writeln!(
            out,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            Latency(m.latency.p50()),
            Latency(m.latency.p90()),
            Latency(m.latency.p99()),
        )?;
    }
    out.push_str("</table>\n");
    Ok(())
}

impl HttpHandler for DebugPage {
    fn call(&self, req: HttpRequest, _peer: PeerAddr) -> BoxFuture<'static, Response<HttpBody>> {
        let res = if req.method() == Method::GET || req.method() == Method::HEAD {
            let mut res = Response::new(full(self.render()));
            let headers = res.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        } else {
            let mut res = text_response(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            res
        };
        Box::pin(async move { res })
    }
}

/// Text with `&`, `<`, `>`, `"` and `'` HTML-escaped.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A latency estimate for the page: `-` before the first call.
struct Latency(Option<Duration>);

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(d) if d < Duration::from_millis(1) => write!(f, "{} µs", d.as_micros()),
            Some(d) if d < Duration::from_secs(1) => {
                write!(f, "{:.2} ms", d.as_secs_f64() * 1e3)
            }
            Some(d) => write!(f, "{:.2} s", d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            Escaped("<script>alert('x' & \"y\")</script>").to_string(),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(Escaped("plain").to_string(), "plain");
        assert_eq!(Escaped("").to_string(), "");
        assert_eq!(Escaped("ü<").to_string(), "ü&lt;");
    }

    #[test]
    fn latencies_read_well() {
        assert_eq!(Latency(None).to_string(), "-");
        assert_eq!(
            Latency(Some(Duration::from_micros(250))).to_string(),
            "250 µs"
        );
        assert_eq!(
            Latency(Some(Duration::from_micros(1500))).to_string(),
            "1.50 ms"
        );
        assert_eq!(
            Latency(Some(Duration::from_secs(10))).to_string(),
            "10.00 s"
        );
    }

    #[test]
    fn a_page_without_a_server_says_so() {
        let page = DebugPage::new(&MetricsPlugin::new()).render();
        assert!(page.contains("The server is not listening."), "{page}");
        assert!(page.contains("No services"));
    }
}
