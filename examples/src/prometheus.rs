//! The chat's `/metrics`: Prometheus text of what Outer records (every metric is listed in
//! `outer_http::metrics`). Installs `metrics-exporter-prometheus`'s recorder as the process's
//! `metrics` recorder and renders its text on request; it opens no listener of its own, the
//! chat serves the text on its port.
//!
//! ```
//! // A recorder of its own, not the process's, so that this example runs anywhere.
//! let prometheus = outer_examples::prometheus::Prometheus::unregistered();
//! metrics::with_local_recorder(prometheus.recorder(), || {
//!     metrics::counter!(outer_http::metrics::RESUMES_TOTAL, "protocol" => "orpc").increment(1);
//! });
//! assert!(prometheus.render().contains(r#"outer_resumes_total{protocol="orpc"} 1"#));
//! ```

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use outer_http::Pages;

/// Where the chat answers with the metrics.
pub const PATH: &str = "/metrics";

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The buckets of `outer_publish_to_write_seconds`, from 50 µs to 1 s: a publish reaches a
/// waiting client's connection in well under a millisecond when the server keeps up.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

/// How often histograms are drained when nobody scrapes (the exporter leaves it to its user).
const UPKEEP: Duration = Duration::from_secs(5);

/// Prometheus's recorder and the handle that renders its text.
#[derive(Clone, Debug)]
pub struct Prometheus {
    handle: PrometheusHandle,
    recorder: Option<Arc<PrometheusRecorder>>,
}

impl Prometheus {
    /// Installs Prometheus's recorder as the process's `metrics` recorder (there is one per
    /// process: a second install fails), and keeps its histograms drained. [`installed`] gives
    /// it back.
    pub fn install() -> Result<Self, BuildError> {
        let handle = builder()?.install_recorder()?;
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            })
            .map_err(|err| {
                BuildError::FailedToCreateRuntime(format!("the upkeep thread: {err}"))
            })?;
        let installed = Self {
            handle,
            recorder: None,
        };
        let _ = INSTALLED.set(installed.clone());
        Ok(installed)
    }

    /// A recorder that is not installed: for [`metrics::with_local_recorder`] in tests and
    /// examples, where the process's recorder may already be taken.
    pub fn unregistered() -> Self {
        // The builder fails only on an empty bucket list.
        let recorder = builder()
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        Self {
            handle: recorder.handle(),
            recorder: Some(Arc::new(recorder)),
        }
    }

    /// The recorder of [`unregistered`](Self::unregistered), to record into locally; an
    /// installed one records everything already.
    pub fn recorder(&self) -> &dyn metrics::Recorder {
        match &self.recorder {
            Some(recorder) => &**recorder,
            None => &metrics::NoopRecorder,
        }
    }

    /// The metrics now, in Prometheus's text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// `pages` with one more: `GET /metrics` answered with [`render`](Self::render).
    pub fn page(&self, pages: Pages) -> Pages {
        let handle = self.handle.clone();
        pages.render(PATH, CONTENT_TYPE, move || handle.render().into())
    }
}

/// The recorder [`Prometheus::install`] installed, if it did.
static INSTALLED: std::sync::OnceLock<Prometheus> = std::sync::OnceLock::new();

/// The recorder [`Prometheus::install`] installed, if it did: the chat serves it at
/// [`PATH`] then.
pub fn installed() -> Option<&'static Prometheus> {
    INSTALLED.get()
}

fn builder() -> Result<PrometheusBuilder, BuildError> {
    let latency = Matcher::Full(outer_http::metrics::PUBLISH_TO_WRITE_SECONDS.to_owned());
    PrometheusBuilder::new().set_buckets_for_metric(latency, LATENCY_BUCKETS)
}
