//! An OTLP (gRPC, tonic) exporter for the plugins' spans (feature `otlp`).

use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracerProvider, TracerProviderBuilder};

/// Why [`otlp_tracer_provider`] could not build a provider (re-export of
/// `opentelemetry_otlp::ExporterBuildError`).
pub use opentelemetry_otlp::ExporterBuildError;

/// An SDK tracer provider exporting spans in batches over OTLP/gRPC (tonic) to `endpoint`, a
/// collector's gRPC address such as `http://127.0.0.1:4317` (feature `otlp`). Give it to
/// [`ServerTracingPlugin::from_provider`](super::ServerTracingPlugin::from_provider) and
/// [`ClientTracingPlugin::from_provider`](super::ClientTracingPlugin::from_provider), and to
/// [`global::set_tracer_provider`](opentelemetry::global::set_tracer_provider) for the
/// program's own spans.
///
/// Must be called inside a Tokio runtime, which the gRPC channel runs on (an error otherwise);
/// the exporter connects lazily, so an unreachable collector is not an error here: its spans
/// are dropped, with a log from the SDK. The endpoint must be an `http://` or `https://` URI
/// (`https` needs one of opentelemetry-otlp's TLS features).
///
/// **Flush and shut down before exiting.** Spans are sent in the background, in batches (every
/// 5 s or 512 spans by default, `OTEL_BSP_*` variables): the ones still queued are lost unless
/// the program calls [`force_flush`](SdkTracerProvider::force_flush) (send what is queued now)
/// or [`shutdown`](SdkTracerProvider::shutdown) (flush, then stop; later spans are no-ops)
/// before it exits. Both block the calling thread until the export finished or timed out, and
/// the export needs the runtime's worker threads: call them from a multi-threaded runtime, from
/// [`spawn_blocking`](tokio::task::spawn_blocking), or after leaving the runtime's `block_on`
/// but before dropping it, never from a current-thread runtime's only thread.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use sextant_plugins::otel::{otlp_tracer_provider, ServerTracingPlugin};
///
/// let provider = otlp_tracer_provider("http://127.0.0.1:4317")?;
/// let server = sextant::Server::builder()
///     .plugin(ServerTracingPlugin::from_provider(&provider))
///     .build();
/// // … serve …
/// let p = provider.clone();
/// tokio::task::spawn_blocking(move || p.shutdown()).await??;
/// # drop(server);
/// # Ok(())
/// # }
/// ```
pub fn otlp_tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, ExporterBuildError> {
    Ok(otlp_tracer_provider_builder(endpoint)?.build())
}

/// The builder behind [`otlp_tracer_provider`], with the OTLP batch exporter already added:
/// to set a resource (`service.name`), a sampler or span limits before building (feature
/// `otlp`).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use opentelemetry_sdk::trace::Sampler;
/// use opentelemetry_sdk::Resource;
///
/// let provider = sextant_plugins::otel::otlp_tracer_provider_builder("http://127.0.0.1:4317")?
///     .with_resource(Resource::builder().with_service_name("arith").build())
///     .with_sampler(Sampler::TraceIdRatioBased(0.1))
///     .build();
/// # drop(provider);
/// # Ok(())
/// # }
/// ```
pub fn otlp_tracer_provider_builder(
    endpoint: &str,
) -> Result<TracerProviderBuilder, ExporterBuildError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(ExporterBuildError::InvalidConfiguration(
            "the OTLP gRPC exporter must be built inside a Tokio runtime".to_owned(),
        ));
    }
    check_endpoint(endpoint)?;
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter))
}

/// An `http` or `https` URI with a host: what the gRPC channel can dial.
fn check_endpoint(endpoint: &str) -> Result<(), ExporterBuildError> {
    let bad = |why: &str| {
        Err(ExporterBuildError::InvalidConfiguration(format!(
            "OTLP endpoint {endpoint:?}: {why}"
        )))
    };
    let uri: http::Uri = match endpoint.parse() {
        Ok(u) => u,
        Err(e) => return bad(&e.to_string()),
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return bad("expected an http:// or https:// URI such as http://127.0.0.1:4317"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return bad("no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_endpoints_and_a_missing_runtime() {
        assert!(
            otlp_tracer_provider("http://127.0.0.1:4317").is_err(),
            "no runtime"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            for bad in [
                "",
                "127.0.0.1:4317",
                "ftp://h:1",
                "http://",
                "not a uri",
                "http://[::1",
            ] {
                let e = otlp_tracer_provider(bad).err();
                assert!(
                    matches!(e, Some(ExporterBuildError::InvalidConfiguration(_))),
                    "{bad:?}: {e:?}"
                );
            }
            let provider = otlp_tracer_provider("http://127.0.0.1:4317").unwrap();
            drop(provider);
        });
    }
}
