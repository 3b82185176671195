//! Logs (text or JSON lines on stderr) and, when an OTLP endpoint is configured, traces exported
//! over OTLP HTTP/protobuf.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    Layer as _, filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Holds the tracer provider; dropping it flushes the spans still queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("switchboard: flushing traces failed: {error}");
        }
    }
}

/// Where traces go: `--otlp-endpoint`, else the standard `OTEL_EXPORTER_OTLP_*` variables.
fn otlp_enabled(endpoint: Option<&str>) -> bool {
    endpoint.is_some()
        || [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Logs go to stderr, so that stdout carries only the command's output. `RUST_LOG` sets the level
/// of logs; spans of Switchboard's own crates are traced at info whatever it says.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    let provider = otlp_enabled(otlp_endpoint)
        .then(|| tracer_provider(otlp_endpoint))
        .and_then(|built| match built {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!("switchboard: traces are off: {error}");
                None
            }
        });
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    subscriber(format, provider.as_ref()).init();
    Telemetry { provider }
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// The registry with the layers in use, each behind its own filter. A layer not in use is left
/// out rather than passed as `None`: tracing-subscriber's absent layer declares an interest in
/// every span, so the registry built every span on the hot path (two per proxied call, entered
/// and left at each poll) even with no exporter and the default log filter.
fn subscriber(
    format: LogFormat,
    provider: Option<&SdkTracerProvider>,
) -> tracing_subscriber::layer::Layered<Vec<BoxedLayer>, tracing_subscriber::Registry> {
    use tracing_subscriber::filter::FilterExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,switchboard_api=info"))
        .and(chatty_crates_capped());
    let logs = tracing_subscriber::fmt::layer().with_writer(|| Redacting(std::io::stderr()));
    let mut layers: Vec<BoxedLayer> = vec![match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs.json().with_filter(filter).boxed(),
    }];
    if let Some(provider) = provider {
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("switchboard"))
                .with_filter(Targets::new().with_target("switchboard", tracing::Level::INFO))
                .boxed(),
        );
    }
    tracing_subscriber::registry().with(layers)
}

/// Crates whose debug and trace logs carry whole messages or headers (a tool's arguments, an
/// admin call's header values): capped at info whatever `RUST_LOG` says, so that no level logs a
/// secret. Other targets keep the level `RUST_LOG` gives them.
fn chatty_crates_capped() -> Targets {
    ["rmcp", "hyper", "hyper_util", "reqwest", "h2"]
        .into_iter()
        .fold(
            Targets::new().with_default(tracing::Level::TRACE),
            |targets, name| targets.with_target(name, tracing::Level::INFO),
        )
}

/// Standard error with URL credentials masked in every line: a lower layer's error text may
/// carry an upstream's URL whole, with its user, password or query (`?api_key=`).
struct Redacting(std::io::Stderr);

impl std::io::Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The fmt layer writes each event's line with one `write_all`.
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact_urls(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Masks the credentials of every URL in `line` (see `masked_url`); other text is left as it is.
fn redact_urls(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains("://") {
        return std::borrow::Cow::Borrowed(line);
    }
    // Brackets stay inside a URL: they enclose IPv6 hosts.
    let separator = |c: char| c.is_whitespace() || "\"'()<>,\\`".contains(c);
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let start = rest[..at].rfind(separator).map_or(0, |i| i + 1);
        let end = rest[at..].find(separator).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        let secret = url::Url::parse(token).is_ok_and(|url| {
            !url.username().is_empty() || url.password().is_some() || url.query().is_some()
        });
        if secret {
            out.push_str(&switchboard_gateway::model::masked_url(token));
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn tracer_provider(endpoint: Option<&str>) -> Result<SdkTracerProvider, String> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(endpoint) = endpoint {
        let endpoint = endpoint.trim_end_matches('/');
        let url = if endpoint.ends_with("/v1/traces") {
            endpoint.to_string()
        } else {
            format!("{endpoint}/v1/traces")
        };
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter.build().map_err(|error| error.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("switchboard")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_credentials_are_masked_in_log_lines() {
        let line = r#"error sending request for url (http://user:pw@10.0.0.1:8080/mcp?api_key=k3y&x=1) then "https://t0k3n@h.test/a""#;
        let masked = super::redact_urls(line);
        for secret in ["user", "pw@", "k3y", "x=1", "t0k3n"] {
            assert!(!masked.contains(secret), "{secret}: {masked}");
        }
        assert!(
            masked.contains("10.0.0.1:8080/mcp?api_key=********"),
            "{masked}"
        );
        assert!(
            masked.starts_with("error sending request for url (http://"),
            "{masked}"
        );
        let plain = "no url here, or one without secrets: http://[::1]:80/mcp";
        assert_eq!(super::redact_urls(plain), plain);
    }

    use super::*;

    #[test]
    fn with_default_logs_and_no_exporter_the_hot_paths_spans_are_not_built() {
        let subscriber = subscriber(LogFormat::Json, None);
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(target: "switchboard::http", "http.request");
            let call = tracing::info_span!(target: "switchboard_gateway::proxy", "mcp.request");
            assert!(request.is_disabled());
            assert!(call.is_disabled());
            // What the default filter logs still is.
            assert!(tracing::enabled!(target: "switchboard_api", tracing::Level::INFO));
        });
    }
}
