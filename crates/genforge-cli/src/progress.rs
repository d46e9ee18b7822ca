//! Progress on the terminal: bars on a terminal, periodic log lines otherwise.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use genforge::train::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// A bar on a terminal, periodic log lines otherwise.
pub struct CliProgress {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: Instant,
    started: Instant,
    start_step: u64,
}

impl CliProgress {
    pub fn new() -> Self {
        CliProgress {
            bar: None,
            total: 0,
            last_line: Instant::now(),
            started: Instant::now(),
            start_step: 0,
        }
    }
}

impl Progress for CliProgress {
    fn start(&mut self, run_dir: &Path, done: u64, total: u64) {
        tracing::info!("run directory: {}", run_dir.display());
        self.total = total;
        self.start_step = done;
        self.started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_position(done);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
                )
                .expect("valid template"),
            );
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, step: u64, values: &[(&'static str, f64)], img_per_s: f64) {
        let mut msg = format!("{img_per_s:.1} img/s");
        for (k, v) in values.iter().take(3) {
            msg.push_str(&format!("  {k} {v:.4}"));
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(msg);
            }
            None => {
                if self.last_line.elapsed().as_secs() >= 10 || step == self.total {
                    let done = (step - self.start_step) as f64;
                    let rate = done / self.started.elapsed().as_secs_f64().max(1e-9);
                    let eta = (self.total - step) as f64 / rate.max(1e-9);
                    tracing::info!("step {step}/{}  {msg}  eta {eta:.0}s", self.total);
                    self.last_line = Instant::now();
                }
            }
        }
    }

    fn message(&mut self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => tracing::info!("{msg}"),
        }
    }

    fn warn(&mut self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("warning: {msg}")),
            None => tracing::warn!("{msg}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// One progress bar per image set of an evaluation (plain log lines when not on a terminal).
#[derive(Default)]
pub struct EvalBars {
    set: String,
    bar: Option<ProgressBar>,
    last_log: Option<Instant>,
}

impl EvalBars {
    pub fn update(&mut self, set: &str, done: usize, total: usize) {
        if self.set != set {
            self.finish();
            self.set = set.to_string();
            if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(total as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_message(format!("{set} images"));
                self.bar = Some(bar);
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(done as u64),
            None => {
                if done == total || self.last_log.is_none_or(|t| t.elapsed().as_secs() >= 10) {
                    tracing::info!("features of {set} images: {done}/{total}");
                    self.last_log = Some(Instant::now());
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
