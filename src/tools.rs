//! The ledger tools: `report`, which writes a ledger's report and summary again without
//! calling the service, and `status`, which shows how far a run has got.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::engine::{row_key, row_number};
use crate::ledger::Ledger;
use crate::lock::{LockError, RunLock};
use crate::report::{self, Personal, Tally};
use crate::run;
use crate::shard::Shard;
use crate::spec::{self, Pipeline, ReportFormat};

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The report file.
    pub report: PathBuf,
    /// Its outcome counts.
    pub tally: Tally,
    /// Whether the personal columns could be filled from the input.
    pub with_input: bool,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "{} rows: {} passed, {} failed, {} pending, {} error, {} skipped; report: {}",
            t.total(),
            t.passed,
            t.failed,
            t.pending,
            t.error,
            t.skipped,
            self.report.display()
        )?;
        if !self.with_input {
            write!(
                f,
                " (the input could not be read: personal columns left empty)"
            )?;
        }
        Ok(())
    }
}

/// Writes the report of `ledger` again, with its summary beside it.
pub fn report(
    ledger: &Path,
    format: Option<ReportFormat>,
    out: Option<&Path>,
) -> anyhow::Result<Exported> {
    let opened = open(ledger)?;
    let pipeline = spec_of(&opened);
    let shard = shard_of(&opened)?;
    let path = match (out, &pipeline) {
        (Some(out), _) => out.to_path_buf(),
        (None, Some(pipeline)) => match shard {
            Some(shard) => shard.suffixed(&pipeline.report.path),
            None => pipeline.report.path.clone(),
        },
        (None, None) => ledger.with_file_name(format!(
            "report.{}",
            extension(format.unwrap_or(ReportFormat::Csv))
        )),
    };
    let format = format
        .or_else(|| ReportFormat::from_path(&path))
        .with_context(|| {
            format!(
                "{}: give --format, or a .csv, .parquet or .jsonl path",
                path.display()
            )
        })?;
    let with_input = pipeline
        .as_ref()
        .is_some_and(|p| crate::source::open(&p.source).is_ok());
    let lines = report::lines(
        pipeline.as_ref().map(|p| &p.source),
        pipeline.as_ref().map(Personal::of).unwrap_or_default(),
        move |key, row| shard.is_none_or(|s| s.owns(key, row)),
        &opened,
    )?;
    let metrics = run::earlier_metrics(&opened)?;
    let summary = match (out, shard) {
        (None, Some(shard)) => {
            let (json, html) = crate::summary::paths_beside(&path);
            (shard.suffixed(&json), shard.suffixed(&html))
        }
        _ => crate::summary::paths_beside(&path),
    };
    let tally = run::write_with_summary(&path, format, &summary, lines, metrics.as_ref())?;
    Ok(Exported {
        report: path,
        tally,
        with_input,
    })
}

fn extension(format: ReportFormat) -> &'static str {
    match format {
        ReportFormat::Csv => "csv",
        ReportFormat::Parquet => "parquet",
        ReportFormat::Jsonl => "jsonl",
    }
}

fn open(ledger: &Path) -> anyhow::Result<Ledger> {
    if !ledger.is_file() {
        bail!("no ledger at {}", ledger.display());
    }
    Ok(Ledger::open_existing(ledger)?)
}

/// The shard a ledger belongs to, if its run was one.
fn shard_of(ledger: &Ledger) -> anyhow::Result<Option<Shard>> {
    let Some(text) = ledger.meta(run::SHARD_META)? else {
        return Ok(None);
    };
    let shard = text.parse().map_err(|e| {
        anyhow::anyhow!(
            "ledger {}: unreadable shard {text:?}: {e}",
            ledger.path().display()
        )
    })?;
    Ok(Some(shard))
}

/// The spec a ledger was run with, when it can still be loaded.
fn spec_of(ledger: &Ledger) -> Option<Pipeline> {
    let path = ledger.meta("spec").ok()??;
    match spec::load(Path::new(&path)) {
        Ok(pipeline) => Some(pipeline),
        Err(error) => {
            tracing::warn!(%error, "the spec of the ledger cannot be loaded; reporting from the ledger alone");
            None
        }
    }
}

/// How far the run of a ledger has got.
#[derive(Debug, Clone)]
pub struct Status {
    /// The ledger.
    pub ledger: PathBuf,
    /// The pipeline's name.
    pub pipeline: Option<String>,
    /// The spec it was run with.
    pub spec: Option<String>,
    /// The run holding the ledger now, if one does.
    pub running: Option<String>,
    /// Rows in the input, when it can be read.
    pub input_rows: Option<u64>,
    /// Rows by state and outcome.
    pub counts: Vec<(String, Option<String>, u64)>,
    /// When a row was last written.
    pub last_update: Option<String>,
    /// Calls made by the finished runs.
    pub calls: Option<u64>,
}

/// Reads how far the run of `ledger` has got; works while a run holds it.
pub fn status(ledger: &Path) -> anyhow::Result<Status> {
    let opened = open(ledger)?;
    let running = match RunLock::acquire(ledger) {
        Ok(_free) => None,
        Err(LockError::Held { holder, .. }) => Some(holder),
        Err(other) => Some(format!("unknown: {other}")),
    };
    let shard = shard_of(&opened)?;
    let input_rows = spec_of(&opened).and_then(|pipeline| {
        let rows = crate::source::open(&pipeline.source).ok()?;
        let key = &pipeline.source.key.value;
        let owned = rows
            .iter
            .filter_map(Result::ok)
            .filter(|row| shard.is_none_or(|s| s.owns(&row_key(row, key), row_number(row))));
        Some(owned.count() as u64)
    });
    Ok(Status {
        ledger: ledger.to_path_buf(),
        pipeline: opened.meta("pipeline")?,
        spec: opened.meta("spec")?,
        running,
        input_rows,
        counts: opened.counts()?,
        last_update: opened.last_update()?,
        calls: run::earlier_metrics(&opened)?.map(|m| m.calls()),
    })
}

impl Status {
    fn count(&self, wanted: impl Fn(&str, Option<&str>) -> bool) -> u64 {
        self.counts
            .iter()
            .filter(|(state, outcome, _)| wanted(state, outcome.as_deref()))
            .map(|(_, _, n)| n)
            .sum()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unknown = "unknown".to_string();
        writeln!(f, "ledger     {}", self.ledger.display())?;
        writeln!(
            f,
            "pipeline   {}",
            self.pipeline.as_ref().unwrap_or(&unknown)
        )?;
        writeln!(f, "spec       {}", self.spec.as_ref().unwrap_or(&unknown))?;
        match &self.running {
            Some(holder) => writeln!(f, "run        in progress ({holder})")?,
            None => writeln!(f, "run        not running")?,
        }
        let known = self.count(|_, _| true);
        let done = self.count(|state, outcome| state == "done" || outcome == Some("pending"));
        match self.input_rows {
            Some(total) => {
                let share = if total == 0 {
                    100.0
                } else {
                    done as f64 * 100.0 / total as f64
                };
                writeln!(
                    f,
                    "progress   {done} of {total} input rows have an outcome ({share:.1} %)"
                )?
            }
            None => writeln!(f, "progress   {done} of {known} rows read have an outcome")?,
        }
        for outcome in ["passed", "failed", "pending", "error", "skipped"] {
            let n = self.count(|_, o| o == Some(outcome));
            writeln!(f, "  {outcome:<9}{n}")?;
        }
        let under_way = self.count(|state, outcome| state != "done" && outcome.is_none());
        writeln!(f, "  {:<9}{under_way}", "under way")?;
        let in_review = self.count(|state, _| state == "review");
        if in_review > 0 {
            writeln!(
                f,
                "in review  {in_review} rows wait for a verdict; the next run polls them"
            )?;
        }
        if let Some(calls) = self.calls {
            writeln!(f, "calls      {calls} by the runs that finished")?;
        }
        if let Some(at) = &self.last_update {
            writeln!(f, "last write {at}")?;
        }
        Ok(())
    }
}
