//! The `merge` command: the ledgers of a sharded run joined into one report and one
//! summary.
//!
//! Ledgers are merged only when they belong together: the same pipeline, the same spec
//! (by a digest of its text), the same number of shards, and each shard at most once. A
//! row is taken from the ledger of the shard it belongs to, so a row can never appear
//! twice; a key found in two ledgers means they were not cut from one partition, and the
//! merge is refused.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::ledger::Ledger;
use crate::report::{self, Line, Personal, ReportError, Tally};
use crate::run::{self, SHARD_META, SPEC_DIGEST_META};
use crate::shard::{Shard, shard_of};
use crate::spec::{self, Pipeline, ReportFormat};
use crate::summary::RunMetrics;

/// What `merge` wrote.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The report.
    pub report: PathBuf,
    /// Its outcome counts.
    pub tally: Tally,
    /// How many shards the run has.
    pub shards: u32,
    /// The shards merged.
    pub merged: Vec<u32>,
}

impl fmt::Display for Merged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        write!(
            f,
            "merged {} of {} shards: {} rows: {} passed, {} failed, {} pending, {} error, {} skipped; report: {}",
            self.merged.len(),
            self.shards,
            t.total(),
            t.passed,
            t.failed,
            t.pending,
            t.error,
            t.skipped,
            self.report.display()
        )?;
        let missing: Vec<String> = (0..self.shards)
            .filter(|i| !self.merged.contains(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            write!(
                f,
                "; shards {} are missing and their rows left out",
                missing.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One shard's ledger and what it says about itself.
struct Part {
    path: PathBuf,
    ledger: Ledger,
    shard: Shard,
}

/// Merges the shard ledgers at `paths` into one report at `out`, with its summary beside it.
pub fn merge(
    paths: &[PathBuf],
    out: &Path,
    format: Option<ReportFormat>,
) -> anyhow::Result<Merged> {
    let format = format
        .or_else(|| ReportFormat::from_path(out))
        .with_context(|| {
            format!(
                "{}: give --format, or a .csv, .parquet or .jsonl path",
                out.display()
            )
        })?;
    let parts = open_parts(paths)?;
    refuse_overlaps(&parts)?;
    let shards = parts[0].shard.count;
    let pipeline = spec_of(&parts[0]);
    let mut metrics = RunMetrics::default();
    for part in &parts {
        if let Some(m) = run::earlier_metrics(&part.ledger)? {
            metrics.merge(&m);
        }
    }
    let by_index: HashMap<u32, &Ledger> =
        parts.iter().map(|p| (p.shard.index, &p.ledger)).collect();
    let lines = lines(pipeline.as_ref(), &by_index, shards)?;
    let summary = crate::summary::paths_beside(out);
    let tally = run::write_with_summary(out, format, &summary, lines, Some(&metrics))?;
    let mut merged: Vec<u32> = by_index.keys().copied().collect();
    merged.sort();
    Ok(Merged {
        report: out.to_path_buf(),
        tally,
        shards,
        merged,
    })
}

fn open_parts(paths: &[PathBuf]) -> anyhow::Result<Vec<Part>> {
    if paths.is_empty() {
        bail!("give the ledgers of the shards to merge");
    }
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        if !path.is_file() {
            bail!("no ledger at {}", path.display());
        }
        let ledger = Ledger::open_existing(path)?;
        let shard = ledger
            .meta(SHARD_META)?
            .with_context(|| {
                format!(
                    "{} is not the ledger of a shard (run --shard I/N)",
                    path.display()
                )
            })?
            .parse::<Shard>()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        parts.push(Part {
            path: path.clone(),
            ledger,
            shard,
        });
    }
    let first = &parts[0];
    let identity = |part: &Part| -> anyhow::Result<(Option<String>, Option<String>)> {
        Ok((
            part.ledger.meta("pipeline")?,
            part.ledger.meta(SPEC_DIGEST_META)?,
        ))
    };
    let expected = identity(first)?;
    for part in &parts[1..] {
        if identity(part)? != expected {
            bail!(
                "{} belongs to a different spec than {}: ledgers of one run share its pipeline and spec",
                part.path.display(),
                first.path.display()
            );
        }
        if part.shard.count != first.shard.count {
            bail!(
                "{} is shard {} but {} is shard {}: the shards of one run share their count",
                part.path.display(),
                part.shard,
                first.path.display(),
                first.shard
            );
        }
        if let Some(twin) = parts
            .iter()
            .find(|p| p.shard == part.shard && p.path != part.path)
        {
            bail!(
                "{} and {} are both shard {}: they overlap",
                twin.path.display(),
                part.path.display(),
                part.shard
            );
        }
    }
    Ok(parts)
}

/// Refuses ledgers that hold the same row: every key must live in the ledger of its shard.
/// Keys are remembered by a 64-bit hash, and a hash seen twice is confirmed by looking the
/// key up in the other ledger.
fn refuse_overlaps(parts: &[Part]) -> anyhow::Result<()> {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (index, part) in parts.iter().enumerate() {
        let mut clash = None;
        part.ledger.each_key(|key, row| {
            let previous = seen.insert(hash(key), index);
            if let Some(other) = previous.filter(|&other| other != index)
                && clash.is_none()
            {
                clash = Some((other, key.to_string(), row));
            }
        })?;
        if let Some((other, key, row)) = clash
            && parts[other].ledger.get(&key)?.is_some()
        {
            bail!(
                "{} and {} both hold row {row}: their shards overlap, so they cannot be merged",
                parts[other].path.display(),
                part.path.display(),
            );
        }
    }
    Ok(())
}

fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn spec_of(part: &Part) -> Option<Pipeline> {
    let path = part.ledger.meta("spec").ok()??;
    spec::load(Path::new(&path)).ok()
}

/// The merged lines in input order: the input read again, each row looked up in its
/// shard's ledger; or, without the input, every ledger's rows sorted by position.
fn lines<'a>(
    pipeline: Option<&'a Pipeline>,
    by_index: &'a HashMap<u32, &'a Ledger>,
    shards: u32,
) -> anyhow::Result<Box<dyn Iterator<Item = Result<Line, ReportError>> + 'a>> {
    let rows = pipeline.and_then(|p| crate::source::open(&p.source).ok());
    let (Some(pipeline), Some(rows)) = (pipeline, rows) else {
        let mut entries = Vec::new();
        for ledger in by_index.values() {
            entries.extend(ledger.entries()?);
        }
        entries.sort_by_key(|e| e.row);
        return Ok(Box::new(
            entries.into_iter().map(|e| Ok(Line::from_entry(e))),
        ));
    };
    let personal = Personal::of(pipeline);
    let key_column = &pipeline.source.key.value;
    Ok(Box::new(rows.iter.map_while(Result::ok).filter_map(
        move |row| {
            let key = crate::engine::row_key(&row, key_column);
            let shard = shard_of(&key, crate::engine::row_number(&row), shards);
            let ledger = by_index.get(&shard)?;
            Some(report::line_of(row, key_column, &personal, ledger).map_err(ReportError::from))
        },
    )))
}
