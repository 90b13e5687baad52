//! Progress bars on standard error for downloads and long scans. They draw only when stderr is a
//! terminal (indicatif hides them otherwise), so CI logs and redirected output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

fn target(disabled: bool) -> ProgressDrawTarget {
    if disabled {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A byte-count bar; the length is set once known (a spinner-like bar until then).
pub fn bytes_bar(disabled: bool, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(disabled));
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner with a message, for steps whose size is unknown.
pub fn spinner(disabled: bool, message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(disabled));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Progress of an image or directory scan, fed by the layer walk: it is shown every file (it is a
/// visitor that never asks for content) and redraws every few hundred files.
pub struct ScanProgress {
    bar: ProgressBar,
    files: std::cell::Cell<u64>,
    bytes: std::cell::Cell<u64>,
    layer: std::cell::Cell<usize>,
}

impl ScanProgress {
    pub fn new(disabled: bool, target: &str) -> Self {
        let bar = spinner(disabled, target);
        ScanProgress {
            bar,
            files: Default::default(),
            bytes: Default::default(),
            layer: Default::default(),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl palisade_image::FileVisitor for ScanProgress {
    fn wants(&self, file: &palisade_image::FileRef<'_>) -> bool {
        let files = self.files.get() + 1;
        self.files.set(files);
        self.bytes.set(self.bytes.get() + file.size);
        if files % 512 == 1 || self.layer.get() != file.layer {
            self.layer.set(file.layer);
            self.bar.set_message(format!(
                "layer {}: {} files, {} MiB",
                file.layer + 1,
                files,
                self.bytes.get() >> 20
            ));
        }
        false
    }

    fn visit(&mut self, _file: &palisade_image::FileRef<'_>, _content: &[u8]) {}
}
