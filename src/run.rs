//! The `run` command: loads the spec, opens the input and the ledger, connects to the
//! service (or starts the embedded sandbox), runs the engine, and writes the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use crate::cloudauth::chain;
use crate::cloudauth::client::Client;
use crate::cloudauth::credentials::Credentials;
use crate::engine::{Engine, Gate, Halt, RunOptions, row_key, row_number};
use crate::ledger::Ledger;
use crate::limiter::Limiter;
use crate::lock::{LockError, RunLock};
use crate::progress::Progress;
use crate::report::{self, Personal, Tally};
use crate::sandbox::{self, Sandbox, SandboxConfig};
use crate::shard::Shard;
use crate::source;
use crate::spec::{self, Endpoint, OnInvalid, Pipeline, ReportFormat};
use crate::summary::{Metrics, RunMetrics, SummaryBuilder};

/// What the user asked of one run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The spec file.
    pub spec: PathBuf,
    /// Overrides the spec's endpoint.
    pub endpoint: Option<String>,
    /// Overrides the report path.
    pub report: Option<PathBuf>,
    /// Overrides the ledger path.
    pub ledger: Option<PathBuf>,
    /// Process at most this many rows.
    pub limit: Option<u64>,
    /// Show a progress bar when stderr is a terminal.
    pub progress: bool,
    /// Stop taking rows after this long, then finish what is in flight.
    pub max_duration: Option<std::time::Duration>,
    /// Which finished rows to verify again.
    pub reverify: crate::engine::Reverify,
    /// The credentials profile, overriding `service.credentials.profile`.
    pub profile: Option<String>,
    /// Take only this shard's rows, under its share of the quotas.
    pub shard: Option<Shard>,
}

/// How a run ended, and so the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every row has a verdict (passed or failed).
    Verified = 0,
    /// 1: some rows ended without a verdict (error, skipped, pending).
    Incomplete = 1,
    /// 2: the spec, the arguments or an input file are unusable.
    Unusable = 2,
    /// 3: the service refused the credentials or permissions; the run stopped at once.
    Refused = 3,
    /// 4: the error-rate breaker stopped the run.
    Breaker = 4,
    /// 5: SIGINT, SIGTERM or `--max-duration` stopped the run; run again to continue.
    Interrupted = 5,
    /// 6: another run holds the ledger.
    Locked = 6,
}

impl Exit {
    /// The exit code of a run that ended with `halt` and the report's `tally`.
    pub fn of(halt: Option<&Halt>, tally: &Tally) -> Exit {
        match halt {
            Some(Halt::Auth(_)) => Exit::Refused,
            Some(Halt::Ledger(_)) => Exit::Unusable,
            Some(Halt::Breaker(_)) => Exit::Breaker,
            Some(Halt::Interrupted | Halt::Deadline) => Exit::Interrupted,
            None if tally.all_verified() => Exit::Verified,
            None => Exit::Incomplete,
        }
    }
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit code.
    pub exit: Exit,
    /// Outcome counts of the report.
    pub tally: Tally,
    /// The report file.
    pub report: PathBuf,
    /// Why the run stopped early.
    pub halted: Option<Halt>,
}

/// An error that makes the run unusable before it starts: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub anyhow::Error);

/// Another run holds the ledger: exit code 6.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Locked(pub crate::lock::LockError);

/// Runs a pipeline to its end.
pub fn run(request: &RunRequest) -> anyhow::Result<Finished> {
    let pipeline = prepare(request).map_err(Unusable)?;
    let rows = source::open(&pipeline.source).map_err(|e| Unusable(e.into()))?;
    pipeline
        .check_columns(rows.header.names())
        .map_err(|e| Unusable(e.into()))?;
    let _lock = match RunLock::acquire(&pipeline.ledger) {
        Ok(lock) => lock,
        Err(held @ LockError::Held { .. }) => return Err(Locked(held).into()),
        Err(other) => return Err(Unusable(other.into()).into()),
    };
    if pipeline.on_invalid == OnInvalid::Abort
        && let Some(reason) = crate::check::abort_reason(&pipeline).map_err(Unusable)?
    {
        return Err(Unusable(anyhow::anyhow!(reason)).into());
    }
    let ledger = Ledger::open(&pipeline.ledger, &pipeline.name).map_err(|e| Unusable(e.into()))?;
    let spec = std::fs::canonicalize(&pipeline.spec_path).unwrap_or(pipeline.spec_path.clone());
    ledger.set_meta("spec", &spec.display().to_string())?;
    ledger.set_meta(SPEC_DIGEST_META, &spec_digest(&pipeline))?;
    if let Some(shard) = request.shard {
        ledger.set_meta(SHARD_META, &shard.to_string())?;
    }

    let (_sandbox, client) = connect(&pipeline, request.profile.as_deref()).map_err(Unusable)?;
    tracing::info!(pipeline = %pipeline.name, endpoint = %client.endpoint(), "run starting");
    let limiter = Limiter::new(&pipeline.service.rates);
    let progress = Progress::new(request.progress);
    let (workers, gate) = workers(&pipeline);
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let options = RunOptions {
        limit: request.limit,
        interrupt: interrupt_flag()?,
        deadline: request.max_duration.map(|d| started + d),
        breaker: pipeline.service.breaker,
        reverify: request.reverify.clone(),
        metrics: Arc::clone(&metrics),
        shard: request.shard,
    };
    let engine = Engine::new(
        &pipeline, &client, &ledger, &limiter, &progress, options, gate,
    );
    let result = std::thread::scope(|threads| {
        if request.progress {
            threads.spawn(|| count_rows(&pipeline, request.shard, &progress));
        }
        engine.run(rows, workers)
    })?;
    progress.finish();
    tracing::info!(
        rows = result.rows_read,
        seconds = started.elapsed().as_secs_f64(),
        "run finished"
    );

    let metrics = record_metrics(&ledger, &metrics.snapshot())?;
    let tally = write_report(&pipeline, request.shard, &ledger, Some(&metrics))?;
    let exit = Exit::of(result.halted.as_ref(), &tally);
    Ok(Finished {
        exit,
        tally,
        report: pipeline.report.path.clone(),
        halted: result.halted,
    })
}

/// A flag that the first SIGINT or SIGTERM sets, asking the run to stop taking rows and
/// finish what is in flight. A second signal, with the flag already set, exits at once:
/// the ledger stays consistent, since every write is its own transaction.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;

    let interrupt = Arc::new(AtomicBool::new(false));
    for (signal, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        flag::register_conditional_shutdown(signal, code, Arc::clone(&interrupt))?;
        flag::register(signal, Arc::clone(&interrupt))?;
    }
    Ok(interrupt)
}

/// Loads the spec and applies the command line's overrides.
fn prepare(request: &RunRequest) -> anyhow::Result<Pipeline> {
    let mut pipeline = spec::load(&request.spec)?;
    if let Some(endpoint) = &request.endpoint {
        pipeline.service.endpoint = if endpoint == "sandbox" {
            Endpoint::Sandbox
        } else {
            crate::cloudauth::client::checked_endpoint(endpoint).context("--endpoint")?;
            Endpoint::Url(endpoint.clone())
        };
    }
    if let Some(path) = &request.report {
        let format = ReportFormat::from_path(path).with_context(|| {
            format!(
                "--report {}: use a .csv, .parquet or .jsonl file",
                path.display()
            )
        })?;
        pipeline.report.path = path.clone();
        pipeline.report.format = format;
    }
    if let Some(path) = &request.ledger {
        pipeline.ledger = path.clone();
    }
    if let Some(shard) = request.shard {
        apply_shard(&mut pipeline, shard);
    }
    Ok(pipeline)
}

/// The client for the pipeline's endpoint, starting the embedded sandbox if asked to.
fn connect(
    pipeline: &Pipeline,
    profile: Option<&str>,
) -> anyhow::Result<(Option<Sandbox>, Client)> {
    let service = &pipeline.service;
    match &service.endpoint {
        Endpoint::Sandbox => {
            let sandbox = Sandbox::start(embedded_config(pipeline)?)
                .context("cannot start the embedded sandbox")?;
            let credentials =
                Credentials::new(sandbox::TEST_ACCESS_KEY_ID, sandbox::TEST_ACCESS_KEY_SECRET);
            tracing::info!(source = "the embedded sandbox's test key", "credentials");
            let client = Client::new(
                &sandbox.url(),
                &service.region,
                credentials,
                service.timeouts,
            )?;
            Ok((Some(sandbox), client))
        }
        Endpoint::Url(url) => {
            let credentials = credentials(pipeline, profile)?;
            Ok((
                None,
                Client::new(url, &service.region, credentials, service.timeouts)?,
            ))
        }
    }
}

/// The credentials for a real endpoint: the spec's environment references, or else the
/// Alibaba Cloud default chain under the profile the command line or the spec names. The
/// log says where they came from, never what they are.
fn credentials(pipeline: &Pipeline, profile: Option<&str>) -> anyhow::Result<Credentials> {
    let settings = &pipeline.service.credentials;
    if let (Some(explicit), None) = (&settings.explicit, profile) {
        tracing::info!(source = "the spec's service.credentials", "credentials");
        return Ok(explicit.clone());
    }
    let profile = profile.or(settings.profile.as_deref());
    let (credentials, source) = chain::from_process(profile)?;
    tracing::info!(source = %source, "credentials");
    Ok(credentials)
}

/// The embedded sandbox's settings: its defaults, overridden by `service.sandbox`.
fn embedded_config(pipeline: &Pipeline) -> anyhow::Result<SandboxConfig> {
    let settings = &pipeline.service.sandbox;
    let mut config = SandboxConfig::default();
    if let Some(path) = &settings.authority {
        config.authority = sandbox::authority::Authority::load(path)?;
    }
    if let Some(share) = settings.review_share {
        config.review_share = share;
    }
    if let Some(delay) = settings.review_delay {
        config.review_delay = delay;
    }
    if let Some(threshold) = settings.pass_threshold {
        config.pass_threshold = threshold;
    }
    if let Some(seed) = settings.seed {
        config.seed = seed;
    }
    Ok(config)
}

/// The workers and their admission gate: the spec's number, or with `auto` a gate sized
/// from the SubmitMaterials quota and the latency the run observes, over enough workers
/// for ten seconds per row at that quota.
fn workers(pipeline: &Pipeline) -> (usize, Gate) {
    if let Some(fixed) = pipeline.service.concurrency {
        return (fixed as usize, Gate::fixed(fixed as usize));
    }
    let submit = pipeline
        .service
        .rates
        .get(&crate::cloudauth::api::Action::SubmitMaterials)
        .map_or(spec::DEFAULT_RATE_PER_SECOND, |r| r.get());
    let most = ((submit * 10.0).ceil() as usize).clamp(8, 512);
    (most, Gate::auto(submit, most))
}

/// Counts the input's rows for the progress bar, beside the run rather than before it, so
/// that the first request does not wait for a scan of the whole file.
fn count_rows(pipeline: &Pipeline, shard: Option<Shard>, progress: &Progress) {
    if !progress.visible() {
        return;
    }
    let Ok(rows) = source::open(&pipeline.source) else {
        return;
    };
    let key = &pipeline.source.key.value;
    let total = rows
        .iter
        .filter_map(Result::ok)
        .filter(|row| shard.is_none_or(|s| s.owns(&row_key(row, key), row_number(row))))
        .count();
    progress.set_total(total as u64);
}

/// Gives a shard its own ledger and report, named with its suffix, and its share of
/// every quota: the spec's `service.shard_rate`, or else the quota divided by the shards.
fn apply_shard(pipeline: &mut Pipeline, shard: Shard) {
    pipeline.ledger = shard.suffixed(&pipeline.ledger);
    pipeline.report.path = shard.suffixed(&pipeline.report.path);
    let service = &mut pipeline.service;
    for (action, rate) in service.rates.iter_mut() {
        *rate = service
            .shard_rates
            .get(action)
            .copied()
            .unwrap_or_else(|| rate.divided(shard.count));
    }
    tracing::info!(%shard, "running one shard");
}

/// The meta entry holding a digest of the spec a ledger was run with.
pub const SPEC_DIGEST_META: &str = "spec_digest";

/// The meta entry holding the shard a ledger belongs to, as `I/N`.
pub const SHARD_META: &str = "shard";

/// A digest of the spec's text, so that ledgers of different specs are not merged.
pub fn spec_digest(pipeline: &Pipeline) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(pipeline.spec_text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds this run's counters to those of earlier runs on the ledger, so that the summary
/// of a resumed campaign covers all of it.
fn record_metrics(ledger: &Ledger, this_run: &RunMetrics) -> anyhow::Result<RunMetrics> {
    let mut total = earlier_metrics(ledger)?.unwrap_or_default();
    total.merge(this_run);
    ledger.set_meta(METRICS_META, &serde_json::to_string(&total)?)?;
    Ok(total)
}

/// The meta entry holding the counters of every run on a ledger.
pub const METRICS_META: &str = "metrics";

/// The counters of the runs recorded in `ledger`, if any.
pub fn earlier_metrics(ledger: &Ledger) -> anyhow::Result<Option<RunMetrics>> {
    let Some(text) = ledger.meta(METRICS_META)? else {
        return Ok(None);
    };
    let metrics = serde_json::from_str(&text)
        .with_context(|| format!("ledger {}: unreadable run metrics", ledger.path().display()))?;
    Ok(Some(metrics))
}

/// Writes the report from the ledger, and the summary beside it: `summary.json` and
/// `summary.html`, or for a shard `summary.shard-I-of-N.json` and `.html`.
fn write_report(
    pipeline: &Pipeline,
    shard: Option<Shard>,
    ledger: &Ledger,
    metrics: Option<&RunMetrics>,
) -> anyhow::Result<Tally> {
    let keep = move |key: &str, row: u64| shard.is_none_or(|s| s.owns(key, row));
    let lines = report::lines(Some(&pipeline.source), Personal::of(pipeline), keep, ledger)?;
    let (json, html) = crate::summary::paths_beside(&pipeline.report.path);
    let summary = match shard {
        Some(shard) => (shard.suffixed(&json), shard.suffixed(&html)),
        None => (json, html),
    };
    let report = &pipeline.report;
    write_with_summary(&report.path, report.format, &summary, lines, metrics)
}

/// Writes `lines` as a report at `path`, and the summary at `summary_paths` (JSON, HTML).
pub fn write_with_summary(
    path: &std::path::Path,
    format: ReportFormat,
    summary_paths: &(PathBuf, PathBuf),
    lines: impl Iterator<Item = Result<report::Line, report::ReportError>>,
    metrics: Option<&RunMetrics>,
) -> anyhow::Result<Tally> {
    let mut summary = SummaryBuilder::new();
    let lines = lines.inspect(|line| {
        if let Ok(line) = line {
            summary.add(line);
        }
    });
    let tally = report::write(path, format, lines)?;
    let summary = summary.finish(metrics);
    summary.write_json(&summary_paths.0)?;
    summary.write_html(&summary_paths.1)?;
    Ok(tally)
}
