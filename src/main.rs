//! The `cloudauth-batch` command: parses arguments, sets up diagnostics, runs the command
//! and turns its result into an exit code.

use std::process::ExitCode;

use clap::Parser as _;
use cloudauth_batch::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet, cli.log_format);
    match cli::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            #[allow(clippy::print_stderr)] // the one place errors reach the user
            {
                eprintln!("cloudauth-batch: error: {error:#}");
            }
            ExitCode::from(cli::error_exit(&error))
        }
    }
}

/// Diagnostics go to stderr; `RUST_LOG` refines them unless -v or -q is given. The levels
/// that -v raises are this tool's only, and the HTTP libraries never go past warn: their
/// own traces could show request URLs, which carry an STS SecurityToken.
fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "warn,cloudauth_batch=info",
        (false, 2) => "warn,cloudauth_batch=debug",
        (false, _) => "warn,cloudauth_batch=trace",
    };
    let filter = if verbose == 0 && !quiet {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level))
    } else {
        EnvFilter::new(level)
    };
    // Whatever RUST_LOG asks, the HTTP libraries stay at warn: at debug they print
    // request URLs, and a GET's URL carries the STS SecurityToken.
    let filter = ["reqwest=warn", "hyper=warn", "hyper_util=warn"]
        .into_iter()
        .filter_map(|directive| directive.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
