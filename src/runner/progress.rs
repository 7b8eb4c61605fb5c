//! The progress display of `sluice run`: a spinner on stderr naming the current step and the
//! running counts (hidden when stderr is not a terminal).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    files_done: AtomicU64,
    rows_written: AtomicU64,
}

impl Progress {
    pub fn new(visible: bool) -> Progress {
        let bar = if visible {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            counts: Arc::new(Counts::default()),
        }
    }

    pub fn step(&self, message: impl Into<String>) {
        let files = self.counts.files_done.load(Ordering::Relaxed);
        let rows = self.counts.rows_written.load(Ordering::Relaxed);
        self.bar
            .set_message(format!("{} [{files} files, {rows} rows written]", message.into()));
    }

    pub fn file_ingested(&self, rows_written: u64) {
        self.counts.files_done.fetch_add(1, Ordering::Relaxed);
        self.counts.rows_written.fetch_add(rows_written, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
