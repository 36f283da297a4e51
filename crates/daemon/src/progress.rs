//! Progress of a sync: a bar on a terminal, periodic structured log lines otherwise, and
//! the systemd STATUS= line under the service.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sync_engine::{ProgressEvent, ProgressSink};

use crate::service::StatusReporter;

/// `1.5 GB`, `320 kB`: decimal units, as disks are sold.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Counters shared by every kind of progress display.
#[derive(Default)]
struct Counts {
    listed: AtomicU64,
    planned: AtomicU64,
    downloaded: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn apply(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Listed { count, .. } => self.listed.store(*count, Ordering::Relaxed),
            ProgressEvent::DownloadsPlanned { count, .. } => {
                self.planned.fetch_add(*count, Ordering::Relaxed);
            }
            ProgressEvent::Downloaded { bytes, .. } => {
                self.downloaded.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(*bytes, Ordering::Relaxed);
            }
            ProgressEvent::ItemFailed { .. } => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            ProgressEvent::ListingStarted { .. } | ProgressEvent::Finished { .. } => {}
        }
    }

    fn line(&self, phase: &str) -> String {
        format!(
            "{phase}: {} listed, {}/{} downloaded ({}), {} failed",
            self.listed.load(Ordering::Relaxed),
            self.downloaded.load(Ordering::Relaxed),
            self.planned.load(Ordering::Relaxed),
            human_bytes(self.bytes.load(Ordering::Relaxed)),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// An indicatif bar for interactive use (`--run-now` and `demo` on a terminal).
pub struct BarProgress {
    bar: ProgressBar,
    counts: Counts,
}

impl BarProgress {
    pub fn new() -> Arc<BarProgress> {
        let bar = ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("listing");
        Arc::new(BarProgress {
            bar,
            counts: Counts::default(),
        })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl ProgressSink for BarProgress {
    fn on_event(&self, event: &ProgressEvent) {
        self.counts.apply(event);
        match event {
            ProgressEvent::Listed { count, source } => {
                self.bar
                    .set_message(format!("listing {source}: {count} items"));
            }
            ProgressEvent::DownloadsPlanned { .. } => {
                let planned = self.counts.planned.load(Ordering::Relaxed);
                if self.bar.length().is_none() {
                    self.bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                self.bar.set_length(planned);
            }
            ProgressEvent::Downloaded { .. } | ProgressEvent::ItemFailed { .. } => {
                self.bar.inc(1);
                self.bar.set_message(format!(
                    "{} ({} failed)",
                    human_bytes(self.counts.bytes.load(Ordering::Relaxed)),
                    self.counts.failed.load(Ordering::Relaxed)
                ));
            }
            ProgressEvent::ListingStarted { source, full } => self.bar.set_message(format!(
                "listing {source}{}",
                if *full { " (full)" } else { "" }
            )),
            ProgressEvent::Finished { .. } => self.bar.finish_and_clear(),
        }
    }
}

/// Log lines every [`LogProgress::INTERVAL`] (no terminal: cron, systemd, docker logs),
/// and the systemd STATUS= line when running as the service.
pub struct LogProgress {
    counts: Counts,
    last_line: Mutex<Instant>,
    status: Option<StatusReporter>,
}

impl LogProgress {
    pub const INTERVAL: Duration = Duration::from_secs(30);

    pub fn new(status: Option<StatusReporter>) -> Arc<LogProgress> {
        Arc::new(LogProgress {
            counts: Counts::default(),
            last_line: Mutex::new(Instant::now()),
            status,
        })
    }
}

impl ProgressSink for LogProgress {
    fn on_event(&self, event: &ProgressEvent) {
        self.counts.apply(event);
        let phase = match event {
            ProgressEvent::ListingStarted { .. } | ProgressEvent::Listed { .. } => "listing",
            ProgressEvent::Finished { .. } => "finished",
            _ => "downloading",
        };
        if let Some(status) = &self.status {
            status.set(self.counts.line(phase));
        }
        let due = match self.last_line.lock() {
            Ok(mut last) if last.elapsed() >= Self::INTERVAL => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            tracing::info!(
                listed = self.counts.listed.load(Ordering::Relaxed),
                planned = self.counts.planned.load(Ordering::Relaxed),
                downloaded = self.counts.downloaded.load(Ordering::Relaxed),
                bytes = self.counts.bytes.load(Ordering::Relaxed),
                failed = self.counts.failed.load(Ordering::Relaxed),
                "progress"
            );
        }
    }
}

/// The sink the daemon's scheduled cycles use.
pub fn for_service(status: StatusReporter) -> Arc<dyn ProgressSink> {
    LogProgress::new(Some(status))
}
