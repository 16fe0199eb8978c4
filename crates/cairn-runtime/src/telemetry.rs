//! Logging: tracing to stderr, as text for people or JSON for log pipelines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSection};

/// Libraries whose own logs are internal detail at `info`: quiet unless a directive names them.
const QUIET: [&str; 1] = ["qdrant_edge=error"];

/// Installs the global subscriber. `RUST_LOG`, when the CLI passes it, wins over `log.level`.
pub fn init(log: &LogSection, rust_log: Option<&str>) {
    let directives = rust_log
        .filter(|directives| EnvFilter::try_new(directives).is_ok())
        .unwrap_or(&log.level);
    let mut directives = directives.to_owned();
    for quiet in QUIET {
        let target = quiet.split('=').next().unwrap_or(quiet);
        if !directives.contains(target) {
            directives.push(',');
            directives.push_str(quiet);
        }
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // Already installed (tests, or an embedding program): keep the existing one.
    let _ = result;
}
