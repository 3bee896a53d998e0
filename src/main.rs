//! The `cloudauth-batch` command.
//!
//! Only the `sandbox` subcommand is wired here so far; the full command line is built
//! elsewhere and replaces this file.

use std::process::ExitCode;

use clap::Parser as _;
use cloudauth_batch::sandbox::cli::{self, SandboxArgs};

/// Declarative batch re-verification of identities through Alibaba Cloud Cloudauth.
#[derive(Debug, clap::Parser)]
#[command(version)]
enum Command {
    /// Runs a local emulator of the Cloudauth API.
    Sandbox(SandboxArgs),
}

// The error chain is the command's last word to the user.
#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    let result = match Command::parse() {
        Command::Sandbox(args) => cli::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cloudauth-batch: {error:#}");
            ExitCode::FAILURE
        }
    }
}
