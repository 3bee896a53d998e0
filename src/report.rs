//! The report table: one line per input row, in input order, built from the ledger.
//!
//! The input is read again and each row looked up in the ledger, so the report holds every
//! input row even when the run stopped early: a row the run never reached is reported as
//! pending. CSV, JSON Lines or Parquet, by the file's extension.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cloudauth::api::MaterialType;
use crate::ledger::{Entry, Ledger, LedgerError, Outcome, State};
use crate::pii;
use crate::source::{self, Row, RowResult};
use crate::spec::{MaterialSource, Pii, Pipeline, ReportFormat, SourceSpec};

/// The report's columns, in order.
pub const COLUMNS: [&str; 19] = [
    "row",
    "key",
    "name",
    "id_number",
    "mobile",
    "ticket_id",
    "outcome",
    "status_code",
    "similarity_score",
    "authority_comparison_score",
    "audit_conclusions",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "submitted_at",
    "completed_at",
    "latency_ms",
    "images",
];

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// 1-based input position.
    pub row: u64,
    /// The row key.
    pub key: String,
    /// The Name material, as `report.pii` says: masked, hashed or plain.
    pub name: Option<String>,
    /// The IdentificationNumber material, as `report.pii` says.
    pub id_number: Option<String>,
    /// The Mobile material, as `report.pii` says.
    pub mobile: Option<String>,
    /// The ticket id.
    pub ticket_id: String,
    /// passed, failed, pending, error or skipped.
    pub outcome: &'static str,
    /// The last StatusCode.
    pub status_code: Option<i32>,
    /// SimilarityScore.
    pub similarity_score: Option<f64>,
    /// AuthorityComparisonScore.
    pub authority_comparison_score: Option<f64>,
    /// AuditConclusions.
    pub audit_conclusions: Option<String>,
    /// The error code.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// The deciding RequestId.
    pub request_id: Option<String>,
    /// SubmitMaterials attempts.
    pub attempts: u32,
    /// When the first submission left.
    pub submitted_at: Option<String>,
    /// When the outcome was settled.
    pub completed_at: Option<String>,
    /// From the first submission to the outcome.
    pub latency_ms: Option<i64>,
    /// What was done to the row's images to make them fit: re-encoded, uploaded to OSS.
    pub images: Option<String>,
}

impl Line {
    /// The line of a ledger entry.
    pub fn from_entry(entry: Entry) -> Line {
        // A row without an outcome was read, and the run stopped while it was under way.
        let outcome = entry.outcome.unwrap_or(Outcome::Pending);
        let error_message = match (&entry.error_message, entry.outcome, entry.state) {
            (None, None, Some(State::New | State::Token)) => {
                Some("not finished; the next run continues it".to_string())
            }
            (None, None, Some(State::Sending)) => Some(
                "submission may have landed; the next run settles it with GetStatus".to_string(),
            ),
            _ => entry.error_message,
        };
        Line {
            row: entry.row,
            key: if entry.key.starts_with("#row-") {
                String::new()
            } else {
                entry.key
            },
            name: None,
            id_number: None,
            mobile: None,
            ticket_id: entry.ticket_id,
            outcome: outcome.as_str(),
            status_code: entry.status_code,
            similarity_score: entry.similarity_score,
            authority_comparison_score: entry.authority_comparison_score,
            audit_conclusions: entry.audit_conclusions,
            error_code: entry.error_code,
            error_message,
            request_id: entry.request_id,
            attempts: entry.attempts,
            submitted_at: entry.submitted_at,
            completed_at: entry.completed_at,
            latency_ms: entry.latency_ms,
            images: entry.images,
        }
    }

    fn not_reached(row: u64, key: String) -> Line {
        Line {
            row,
            key,
            name: None,
            id_number: None,
            mobile: None,
            ticket_id: String::new(),
            outcome: Outcome::Pending.as_str(),
            status_code: None,
            similarity_score: None,
            authority_comparison_score: None,
            audit_conclusions: None,
            error_code: None,
            error_message: Some("not reached by the run".to_string()),
            request_id: None,
            attempts: 0,
            submitted_at: None,
            completed_at: None,
            latency_ms: None,
            images: None,
        }
    }
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing the file failed.
    #[error("cannot write the report {path}: {reason}")]
    Write {
        /// The report file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Counts of the report's outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Rows that passed.
    pub passed: u64,
    /// Rows that failed.
    pub failed: u64,
    /// Rows still pending.
    pub pending: u64,
    /// Rows that ended in error.
    pub error: u64,
    /// Rows not submitted.
    pub skipped: u64,
}

impl Tally {
    fn add(&mut self, outcome: &str) {
        match outcome {
            "passed" => self.passed += 1,
            "failed" => self.failed += 1,
            "pending" => self.pending += 1,
            "error" => self.error += 1,
            _ => self.skipped += 1,
        }
    }

    /// All rows.
    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.pending + self.error + self.skipped
    }

    /// Whether every row has a verdict.
    pub fn all_verified(&self) -> bool {
        self.pending + self.error + self.skipped == 0
    }
}

/// The report's personal columns (name, ID number, mobile), taken from the input row and
/// written as `report.pii` says. The ledger never holds them, so they exist only when the
/// input can be read again.
#[derive(Debug, Clone, Default)]
pub struct Personal {
    columns: Vec<(MaterialType, String)>,
    pii: Pii,
}

impl Personal {
    /// The personal columns of `pipeline`: its text materials taken from a column.
    pub fn of(pipeline: &Pipeline) -> Personal {
        let columns = pipeline
            .materials
            .iter()
            .filter(|m| !m.kind.is_image())
            .filter_map(|m| match &m.source {
                MaterialSource::Column(column) => Some((m.kind, column.clone())),
                MaterialSource::File(_) => None,
            })
            .collect();
        Personal {
            columns,
            pii: pipeline.report.pii.clone(),
        }
    }

    fn fill(&self, row: &Row, line: &mut Line) {
        for (kind, column) in &self.columns {
            let value = row.get(column).map(str::trim).filter(|v| !v.is_empty());
            let shown = value.map(|v| match &self.pii {
                Pii::Mask => pii::mask(*kind, v),
                Pii::Hash { key } => pii::keyed_hash(key.as_bytes(), v),
                Pii::Plain => v.to_string(),
            });
            match kind {
                MaterialType::Name => line.name = shown,
                MaterialType::IdentificationNumber => line.id_number = shown,
                MaterialType::Mobile => line.mobile = shown,
                _ => {}
            }
        }
    }
}

/// The report's lines, in input order: the input read again and joined with the ledger,
/// or the ledger alone when the input can no longer be read. Only rows whose key `keep`
/// accepts are reported.
pub fn lines<'a>(
    source: Option<&SourceSpec>,
    personal: Personal,
    keep: impl Fn(&str, u64) -> bool + 'a,
    ledger: &'a Ledger,
) -> Result<Box<dyn Iterator<Item = Result<Line, ReportError>> + 'a>, ReportError> {
    let Some((rows, source)) = source.and_then(|s| Some((source::open(s).ok()?, s))) else {
        let entries = ledger.entries()?;
        return Ok(Box::new(
            entries
                .into_iter()
                .filter(move |e| {
                    let key = if e.key.starts_with("#row-") {
                        ""
                    } else {
                        &e.key
                    };
                    keep(key, e.row)
                })
                .map(|e| Ok(Line::from_entry(e))),
        ));
    };
    let key_column = source.key.value.clone();
    let joined = rows.iter.map_while(Result::ok).filter_map(move |row| {
        let key = crate::engine::row_key(&row, &key_column);
        if !keep(&key, crate::engine::row_number(&row)) {
            return None;
        }
        Some(line_of(row, &key_column, &personal, ledger).map_err(ReportError::from))
    });
    Ok(Box::new(joined))
}

/// The report line of an input row: what `ledger` holds for it, with its personal columns.
pub fn line_of(
    row: RowResult,
    key_column: &str,
    personal: &Personal,
    ledger: &Ledger,
) -> Result<Line, LedgerError> {
    let (number, key) = match &row {
        Ok(row) => (
            row.number,
            row.get(key_column).unwrap_or("").trim().to_string(),
        ),
        Err(error) => (error.number, String::new()),
    };
    let mut line = None;
    for candidate in [key.clone(), format!("#row-{number}")] {
        if candidate.is_empty() {
            continue;
        }
        if let Some(entry) = ledger.get(&candidate)?.filter(|e| e.row == number) {
            line = Some(Line::from_entry(entry));
            break;
        }
    }
    let mut line = line.unwrap_or_else(|| Line::not_reached(number, key));
    if let Ok(row) = &row {
        personal.fill(row, &mut line);
    }
    Ok(line)
}

/// Writes `lines` to `path` in `format`, streaming, and counts the outcomes.
pub fn write(
    path: &Path,
    format: ReportFormat,
    lines: impl Iterator<Item = Result<Line, ReportError>>,
) -> Result<Tally, ReportError> {
    let fail = |reason: String| ReportError::Write {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| fail(e.to_string()))?;
    }
    // Write beside the target and rename, so a reader never sees half a report.
    let partial = path.with_extension("partial");
    let mut tally = Tally::default();
    let counted = lines.inspect(|line| {
        if let Ok(line) = line {
            tally.add(line.outcome);
        }
    });
    match format {
        ReportFormat::Csv => write_csv(&partial, counted),
        ReportFormat::Jsonl => write_jsonl(&partial, counted),
        ReportFormat::Parquet => parquet::write(&partial, counted),
    }
    .map_err(|e| match e {
        Sink::Io(reason) => fail(reason),
        Sink::Input(error) => error,
    })?;
    std::fs::rename(&partial, path).map_err(|e| fail(e.to_string()))?;
    Ok(tally)
}

/// A failure while writing: of the file, or of the lines fed to it.
enum Sink {
    Io(String),
    Input(ReportError),
}

fn io(error: impl std::fmt::Display) -> Sink {
    Sink::Io(error.to_string())
}

fn write_csv(
    path: &Path,
    lines: impl Iterator<Item = Result<Line, ReportError>>,
) -> Result<(), Sink> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)
        .map_err(io)?;
    writer.write_record(COLUMNS).map_err(io)?;
    for line in lines {
        let line = line.map_err(Sink::Input)?;
        writer.serialize(line).map_err(io)?;
    }
    writer.flush().map_err(io)
}

fn write_jsonl(
    path: &Path,
    lines: impl Iterator<Item = Result<Line, ReportError>>,
) -> Result<(), Sink> {
    let mut out = BufWriter::new(File::create(path).map_err(io)?);
    for line in lines {
        let line = line.map_err(Sink::Input)?;
        serde_json::to_writer(&mut out, &line).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)
}

mod parquet {
    //! Parquet in row groups of a fixed number of lines, so a long report never sits
    //! whole in memory.

    use super::*;
    use polars::prelude::*;

    const GROUP_LINES: usize = 64 * 1024;

    pub(super) fn write(
        path: &Path,
        lines: impl Iterator<Item = Result<Line, ReportError>>,
    ) -> Result<(), Sink> {
        let file = File::create(path).map_err(io)?;
        let mut group = Vec::with_capacity(GROUP_LINES);
        let mut writer: Option<polars::io::parquet::write::BatchedWriter<File>> = None;
        let mut file = Some(file);
        let mut flush = |group: &mut Vec<Line>, writer: &mut Option<_>| -> Result<(), Sink> {
            let frame = frame(group).map_err(io)?;
            if writer.is_none() {
                let target = file.take().ok_or_else(|| Sink::Io("writer lost".into()))?;
                *writer = Some(
                    ParquetWriter::new(target)
                        .batched(frame.schema())
                        .map_err(io)?,
                );
            }
            if let Some(w) = writer.as_mut() {
                w.write_batch(&frame).map_err(io)?;
            }
            group.clear();
            Ok(())
        };
        for line in lines {
            group.push(line.map_err(Sink::Input)?);
            if group.len() == GROUP_LINES {
                flush(&mut group, &mut writer)?;
            }
        }
        if !group.is_empty() || writer.is_none() {
            flush(&mut group, &mut writer)?;
        }
        match writer {
            Some(w) => w.finish().map(drop).map_err(io),
            None => Ok(()),
        }
    }

    fn frame(lines: &[Line]) -> PolarsResult<DataFrame> {
        let text = |f: fn(&Line) -> Option<&str>| lines.iter().map(f).collect::<Vec<_>>();
        let columns = vec![
            Column::new(
                "row".into(),
                lines.iter().map(|l| l.row).collect::<Vec<_>>(),
            ),
            Column::new("key".into(), text(|l| Some(l.key.as_str()))),
            Column::new("name".into(), text(|l| l.name.as_deref())),
            Column::new("id_number".into(), text(|l| l.id_number.as_deref())),
            Column::new("mobile".into(), text(|l| l.mobile.as_deref())),
            Column::new("ticket_id".into(), text(|l| Some(l.ticket_id.as_str()))),
            Column::new("outcome".into(), text(|l| Some(l.outcome))),
            Column::new(
                "status_code".into(),
                lines.iter().map(|l| l.status_code).collect::<Vec<_>>(),
            ),
            Column::new(
                "similarity_score".into(),
                lines.iter().map(|l| l.similarity_score).collect::<Vec<_>>(),
            ),
            Column::new(
                "authority_comparison_score".into(),
                lines
                    .iter()
                    .map(|l| l.authority_comparison_score)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "audit_conclusions".into(),
                text(|l| l.audit_conclusions.as_deref()),
            ),
            Column::new("error_code".into(), text(|l| l.error_code.as_deref())),
            Column::new("error_message".into(), text(|l| l.error_message.as_deref())),
            Column::new("request_id".into(), text(|l| l.request_id.as_deref())),
            Column::new(
                "attempts".into(),
                lines.iter().map(|l| l.attempts).collect::<Vec<_>>(),
            ),
            Column::new("submitted_at".into(), text(|l| l.submitted_at.as_deref())),
            Column::new("completed_at".into(), text(|l| l.completed_at.as_deref())),
            Column::new(
                "latency_ms".into(),
                lines.iter().map(|l| l.latency_ms).collect::<Vec<_>>(),
            ),
            Column::new("images".into(), text(|l| l.images.as_deref())),
        ];
        DataFrame::new(lines.len(), columns)
    }
}
