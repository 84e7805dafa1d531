//! The library's progress calls drawn on stderr: a bar (sized stages) or a spinner (detection
//! stages) on a terminal; one line per milestone when stderr is a log file, where bars are not
//! drawn. Notes are lines either way. Nothing here goes to stdout.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use distillguard::progress::Progress;

pub struct Terminal {
    bar: Mutex<Option<ProgressBar>>,
    /// Whether stderr is a terminal (bars) rather than a log (milestone lines).
    terminal: bool,
}

impl Terminal {
    pub fn new() -> Self {
        Terminal {
            bar: Mutex::new(None),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        f(&mut self.bar.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A line on stderr that does not tear a bar being drawn.
    fn line(&self, message: &str) {
        self.with_bar(|bar| match bar {
            Some(pb) => pb.suspend(|| eprintln!("distillguard: {message}")),
            None => eprintln!("distillguard: {message}"),
        });
    }
}

impl Progress for Terminal {
    fn stage(&self, name: &str, total: Option<u64>) {
        self.with_bar(|bar| {
            if let Some(pb) = bar.take() {
                pb.finish_and_clear();
            }
            let pb = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = match total {
                Some(_) => format!(
                    "{{spinner}} {name} [{{elapsed_precise}}] {{bar:30}} {{bytes}}/{{total_bytes}} ({{eta}}) {{msg}}"
                ),
                None => format!("{{spinner}} {name} [{{elapsed_precise}}]"),
            };
            pb.set_style(ProgressStyle::with_template(&template).expect("valid template"));
            if total.is_none() {
                pb.enable_steady_tick(Duration::from_millis(200));
            }
            *bar = Some(pb);
        });
    }

    fn advance(&self, done: u64) {
        self.with_bar(|bar| {
            if let Some(pb) = bar {
                pb.set_position(done);
            }
        });
    }

    fn milestone(&self, message: &str) {
        if !self.terminal {
            self.line(message);
        }
    }

    fn note(&self, message: &str) {
        self.line(message);
    }

    fn done(&self) {
        self.with_bar(|bar| {
            if let Some(pb) = bar.take() {
                pb.finish_and_clear();
            }
        });
    }
}
