//! The command line: argument definitions and dispatch. The only module that prints to
//! stdout.

// This is the layer that talks to the user; everywhere else output goes through tracing.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine::{Halt, Reverify};
use crate::ledger::Outcome;
use crate::run::{self, Exit, RunRequest};

/// Re-verifies identities in bulk through Alibaba Cloud Cloudauth (实人认证).
///
/// A YAML pipeline spec maps the columns of a CSV or Parquet file, and image files, to
/// Cloudauth materials. Every row gets a VerifyToken, its materials are submitted, rows in
/// review are polled, and the outcome of each row goes to a report table. Progress is kept
/// in a SQLite ledger, so an interrupted run resumes without paying twice.
#[derive(Debug, Parser)]
#[command(name = "cloudauth-batch", version, propagate_version = true)]
#[command(after_help = "\
Environment:
  RUST_LOG refines the diagnostics when neither -v nor -q is given (default: warn).

Example:
  cloudauth-batch check pipelines/demo.yaml && cloudauth-batch run pipelines/demo.yaml")]
pub struct Cli {
    /// More diagnostics on stderr: -v for info, -vv for debug, -vvv for trace (of this
    /// tool only; libraries stay at warn). Accepted before or after the subcommand.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// How diagnostics are written: `text` for people, `json` (one object per line) for
    /// schedulers and log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How diagnostics are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a pipeline: verify every row of the input and write the report.
    #[command(after_help = RUN_EXAMPLE)]
    Run(RunArgs),
    /// Checks a spec and its input before paying for a run, and prints the plan.
    #[command(after_help = CHECK_EXAMPLE)]
    Check(CheckArgs),
    /// Writes the report and summary of a ledger again, without calling the service.
    #[command(after_help = REPORT_EXAMPLE)]
    Report(ReportArgs),
    /// Merges the ledgers of a sharded run into one report and one summary.
    #[command(after_help = MERGE_EXAMPLE)]
    Merge(MergeArgs),
    /// Shows how far the run of a ledger has got, running or finished.
    #[command(after_help = "Example:\n  cloudauth-batch status out/demo-ledger.sqlite")]
    Status(StatusArgs),
    /// Prints shell completions for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Example:\n  cloudauth-batch completions bash > /etc/bash_completion.d/cloudauth-batch"
    )]
    Completions(CompletionsArgs),
    /// Runs a local emulator of the Cloudauth API until interrupted.
    #[command(after_help = "\
It answers GetVerifyToken, SubmitMaterials, GetStatus and GetMaterials with the service's
signature checks, limits and error codes, and accepts the test key sandbox-test-id /
sandbox-test-secret. Point a run at it with --endpoint http://127.0.0.1:PORT.

Example:
  cloudauth-batch sandbox --listen 127.0.0.1:8080 --authority samples/authority.csv")]
    Sandbox(crate::sandbox::cli::SandboxArgs),
    /// Writes a synthetic demo data set: accounts, photos, and the sandbox's authority data.
    #[command(
        after_help = "Example:\n  cloudauth-batch samples --out samples --accounts 240 --seed 7"
    )]
    Samples(SamplesArgs),
}

const CHECK_EXAMPLE: &str = "\
Checks made:
  spec     unknown keys, wrong types, malformed rates, durations and sizes, templates
           naming missing columns, unset environment variables, materials the Biz needs
  rows     ID numbers (18 characters, a real birth date, the GB 11643 check digit),
           mobiles (mainland, 11 digits), names (present and plausible), images
           (present, JPEG or PNG, decodable, at least images.min_side pixels),
           duplicate keys and ticket ids

Invalid rows are written to a rejects file (row, key, reasons, details) with personal data
masked: by default <report>.rejects.csv beside the spec's report.

Environment:
  Every variable a string value of the spec names as ${VAR} or ${VAR:-default}; an unset
  one without a default makes the spec unusable (exit code 2).

Exit codes:
  0  every row is valid
  1  some rows are invalid (counted, and listed in the rejects file)
  2  the spec or the input is unusable

Example:
  cloudauth-batch check pipelines/demo.yaml --rejects out/rejects.csv";

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pipeline spec (YAML).
    pub spec: PathBuf,
    /// Write the invalid rows here (CSV) instead of <report>.rejects.csv beside the report.
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<PathBuf>,
}

const REPORT_EXAMPLE: &str = "\
The personal columns (name, id_number, mobile) come from the input named by the spec the
ledger was run with, written as its report.pii says; when the spec or the input cannot be
read, they are left empty. summary.json and summary.html are written beside the report.

Environment:
  The variables the spec names as ${VAR}, among them the key of report.pii: hash (its
  report.hash_key). When one is unset the spec cannot be loaded, and the personal columns
  are left empty.

Example:
  cloudauth-batch report out/demo-ledger.sqlite --format parquet --out out/audit.parquet";

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The SQLite ledger of a run.
    pub ledger: PathBuf,
    /// The report's format (default: from --out's extension, else csv).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormatArg>,
    /// Where to write the report (default: the spec's report.path, else report.<format>
    /// beside the ledger).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// A report format named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormatArg {
    /// CSV with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Jsonl,
}

const MERGE_EXAMPLE: &str = "\
The ledgers must come from one spec (same pipeline name and spec text) and the same shard
count, each shard at most once; a missing shard is reported and its rows left out. The
summary (summary.json, summary.html) is written beside the report.

Environment:
  As for report: the variables the spec names, among them the key of report.pii: hash.

Example:
  cloudauth-batch merge out/ledger.shard-*-of-4.sqlite --out out/report.parquet";

/// Arguments of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard ledgers.
    #[arg(required = true)]
    pub ledgers: Vec<PathBuf>,
    /// The merged report (.csv, .parquet or .jsonl).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// The report's format (default: from --out's extension).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormatArg>,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The SQLite ledger of a run.
    pub ledger: PathBuf,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// The folder to write into; its generated images are replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How many accounts.
    #[arg(long, default_value_t = 240)]
    pub accounts: usize,
    /// The seed; the same seed writes the same bytes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Side of every picture in pixels.
    #[arg(long, default_value_t = 112)]
    pub image_size: u32,
    /// How `id_front` cells that name a file begin: the card folder as seen from the
    /// pipeline spec that will read the data.
    #[arg(long, default_value = "../samples/images/id_front")]
    pub id_front_prefix: String,
}

const RUN_EXAMPLE: &str = "\
Exit codes:
  0  every row has a verdict (passed or failed)
  1  some rows ended without one (error, skipped, pending)
  2  the spec, the arguments, an input file or the ledger are unusable
  3  the service refused the credentials or permissions; the run stopped at once
  4  the error-rate breaker stopped the run
  5  SIGINT, SIGTERM or --max-duration stopped the run; run again to continue
  6  another run holds the ledger

Credentials (for a real endpoint; the embedded sandbox uses its own test keys), the first
that yields a key:
  1. ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, with the optional
     ALIBABA_CLOUD_SECURITY_TOKEN
  2. a profile of ~/.aliyun/config.json (ALIBABA_CLOUD_CONFIG_FILE), modes AK and StsToken
  3. a section of ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE)
  The profile is --profile, else service.credentials.profile, else ALIBABA_CLOUD_PROFILE,
  else the CLI's current profile, else default. The log names the source, never the secret.

Outputs: the report (spec's report.path), summary.json and summary.html beside it, and the
ledger (spec's ledger.path) that makes the next run resume.

Example:
  cloudauth-batch run pipelines/demo.yaml --report out/demo.parquet";

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline spec (YAML).
    pub spec: PathBuf,
    /// Send requests here instead of the spec's endpoint: an https URL, http on a loopback
    /// address, or `sandbox` for the embedded emulator.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Write the report here instead of the spec's report.path (.csv, .parquet or .jsonl).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Keep progress in this SQLite file instead of the spec's ledger.path.
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// Process at most N input rows (default: all).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Stop taking new rows after this long (e.g. 50m, 2h), finish what is in flight,
    /// write the report and exit with code 5; the next run continues. Default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<std::time::Duration>,
    /// Verify again the finished rows with these outcomes (error, failed, pending,
    /// skipped, passed), each under a new ticket id `<ticket>-r2`, `-r3`, ...
    #[arg(long, value_name = "OUTCOMES", value_delimiter = ',', value_parser = parse_outcome)]
    pub retry_outcomes: Vec<Outcome>,
    /// Verify again the rows whose verdict is older than this (e.g. 90d), each under a
    /// new ticket id.
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    pub reverify_older_than: Option<std::time::Duration>,
    /// The credentials profile to use (default: service.credentials.profile, then
    /// ALIBABA_CLOUD_PROFILE, then the CLI's current profile, then `default`).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Take only shard I of N (I from 0, like a Kubernetes completion index): the rows
    /// whose key hashes to I, under 1/N of every quota (or service.shard_rate), with a
    /// ledger and report of its own named `<name>.shard-I-of-N.<ext>`. Default: all rows.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
}

impl From<ReportFormatArg> for crate::spec::ReportFormat {
    fn from(format: ReportFormatArg) -> Self {
        match format {
            ReportFormatArg::Csv => crate::spec::ReportFormat::Csv,
            ReportFormatArg::Parquet => crate::spec::ReportFormat::Parquet,
            ReportFormatArg::Jsonl => crate::spec::ReportFormat::Jsonl,
        }
    }
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    Outcome::parse(text.trim()).ok_or_else(|| {
        format!("{text:?} is not an outcome; use error, failed, pending, skipped or passed")
    })
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::spec::units::parse_duration(text)
}

/// Runs the parsed command and returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run_command(args, cli.quiet),
        Command::Check(args) => check_command(args),
        Command::Report(args) => crate::tools::report(
            &args.ledger,
            args.format.map(ReportFormatArg::into),
            args.out.as_deref(),
        )
        .map(|done| {
            println!("{done}");
            0
        }),
        Command::Merge(args) => crate::merge::merge(
            &args.ledgers,
            &args.out,
            args.format.map(ReportFormatArg::into),
        )
        .map(|merged| {
            println!("{merged}");
            0
        }),
        Command::Status(args) => crate::tools::status(&args.ledger).map(|status| {
            print!("{status}");
            0
        }),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "cloudauth-batch",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Sandbox(args) => crate::sandbox::cli::run(args).map(|()| 0),
        Command::Samples(args) => samples_command(args),
    }
}

fn samples_command(args: SamplesArgs) -> anyhow::Result<u8> {
    use crate::sandbox::synthetic::{AccountKind, DemoOptions, write_demo};

    let options = DemoOptions {
        accounts: args.accounts,
        seed: args.seed,
        image_size: args.image_size,
        id_front_prefix: args.id_front_prefix,
        ..DemoOptions::default()
    };
    let manifest = write_demo(&args.out, &options)?;
    let counts: Vec<String> = AccountKind::ALL
        .iter()
        .map(|&kind| format!("{} {}", kind.as_str(), manifest.count(kind)))
        .collect();
    println!(
        "wrote {} accounts to {}: {}",
        manifest.accounts.len(),
        args.out.display(),
        counts.join(", ")
    );
    Ok(0)
}

fn check_command(args: CheckArgs) -> anyhow::Result<u8> {
    let request = crate::check::CheckRequest {
        spec: args.spec,
        rejects: args.rejects,
    };
    let plan = crate::check::check(&request)?;
    print!("{plan}");
    Ok(if plan.all_valid() { 0 } else { 1 })
}

fn run_command(args: RunArgs, quiet: bool) -> anyhow::Result<u8> {
    let request = RunRequest {
        spec: args.spec,
        endpoint: args.endpoint,
        report: args.report,
        ledger: args.ledger,
        limit: args.limit,
        progress: !args.no_progress && !quiet,
        max_duration: args.max_duration,
        reverify: Reverify {
            outcomes: args.retry_outcomes,
            older_than: args.reverify_older_than,
        },
        profile: args.profile,
        shard: args.shard,
    };
    let finished = run::run(&request)?;
    let t = finished.tally;
    if !quiet {
        eprintln!(
            "{} rows: {} passed, {} failed, {} pending, {} error, {} skipped; report: {}",
            t.total(),
            t.passed,
            t.failed,
            t.pending,
            t.error,
            t.skipped,
            finished.report.display()
        );
    }
    if let Some(halt) = &finished.halted {
        eprintln!("cloudauth-batch: the run stopped early: {}", describe(halt));
    }
    Ok(finished.exit as u8)
}

fn describe(halt: &Halt) -> String {
    match halt {
        Halt::Auth(reason) => {
            format!("the service refused the credentials or permissions: {reason}")
        }
        Halt::Ledger(reason) => format!("the ledger or the input failed: {reason}"),
        Halt::Breaker(reason) => format!("the error-rate breaker tripped: {reason}"),
        Halt::Interrupted => "interrupted; run the same command again to continue".to_string(),
        Halt::Deadline => {
            "--max-duration reached; run the same command again to continue".to_string()
        }
    }
}

/// The exit code of an error that ended the program: a ledger held by another run, or
/// else whatever stops a command from starting or finishing (a spec, argument, input,
/// ledger or report file), which is "unusable".
pub fn error_exit(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<run::Locked>().is_some() {
        Exit::Locked as u8
    } else {
        Exit::Unusable as u8
    }
}
