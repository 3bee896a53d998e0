//! The `check` command: everything that can be known about a run before paying for it.
//!
//! The spec is loaded as `run` loads it, the input's columns are matched against it, and
//! every row goes through the checks `run` applies before its first call, with images
//! decoded in full. The result is a [`Plan`]: how many rows are valid, why the others are
//! not (each listed in a rejects file with personal data masked), the calls a run would
//! make, how long it would take at the configured quotas, and what it would cost.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rayon::prelude::*;

use crate::checks::{self, Problem, Reason};
use crate::cloudauth::api::Action;
use crate::images::Depth;
use crate::ledger::{Ledger, State};
use crate::materials::{self, Footprint};
use crate::pii;
use crate::source::{self, RowResult};
use crate::spec::{self, Endpoint, MaterialSource, Pipeline};

/// How many rows are checked together; images of a batch are decoded in parallel.
const BATCH: usize = 256;

/// How many invalid rows the plan lists by itself; the rejects file has them all.
const LISTED: usize = 10;

/// What the user asked `check` to do.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// The spec file.
    pub spec: PathBuf,
    /// Where to write the rejects; by default beside the report.
    pub rejects: Option<PathBuf>,
}

/// What a run of the spec would do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spec.
    pub spec: PathBuf,
    /// The input file.
    pub input: PathBuf,
    /// The scenario.
    pub biz: String,
    /// Whether the Biz's required materials are known and were checked.
    pub biz_known: bool,
    /// Rows in the input.
    pub rows: u64,
    /// Rows that pass every check.
    pub valid: u64,
    /// Rows that fail some check, by reason; a row with several reasons counts once per reason.
    pub by_reason: BTreeMap<Reason, u64>,
    /// Rows that fail some check.
    pub invalid: u64,
    /// The first invalid rows, with their masked reasons.
    pub listed: Vec<(u64, String)>,
    /// The rejects file, when some row is invalid.
    pub rejects: Option<PathBuf>,
    /// Valid rows the ledger has already finished, which a run does not send again.
    pub finished: u64,
    /// Images to re-encode and to upload, over the rows to send.
    pub images: Footprint,
    /// The calls a run would make, by action; GetStatus is an estimate.
    pub calls: BTreeMap<Action, u64>,
    /// Whether the GetStatus count is an estimate from the sandbox's review share.
    pub polls_estimated: bool,
    /// PutObject calls to the OSS bucket.
    pub uploads: u64,
    /// The shortest time the calls take at the configured quotas.
    pub duration: Duration,
    /// The action whose quota sets that duration.
    pub bottleneck: Action,
    /// The expected cost, when the spec gives a unit price.
    pub cost: Option<(f64, String)>,
}

impl Plan {
    /// Whether every row is valid.
    pub fn all_valid(&self) -> bool {
        self.invalid == 0
    }
}

/// The checks of one row.
struct RowCheck {
    number: u64,
    key: String,
    ticket: Option<String>,
    problems: Vec<Problem>,
    footprint: Footprint,
}

/// Checks the spec and every row of its input, writes the rejects file, and returns the plan.
pub fn check(request: &CheckRequest) -> anyhow::Result<Plan> {
    let pipeline = spec::load(&request.spec)?;
    let rejects_path = request
        .rejects
        .clone()
        .unwrap_or_else(|| default_rejects(&pipeline.report.path));
    let mut rejects = Rejects::new(rejects_path);
    let finished = FinishedRows::open(&pipeline.ledger)?;
    let mut plan = Plan {
        spec: pipeline.spec_path.clone(),
        input: pipeline.source.path.clone(),
        biz: pipeline.service.biz.clone(),
        biz_known: crate::cloudauth::api::required_materials(&pipeline.service.biz).is_some(),
        rows: 0,
        valid: 0,
        by_reason: BTreeMap::new(),
        invalid: 0,
        listed: Vec::new(),
        rejects: None,
        finished: 0,
        images: Footprint::default(),
        calls: BTreeMap::new(),
        polls_estimated: false,
        uploads: 0,
        duration: Duration::ZERO,
        bottleneck: Action::SubmitMaterials,
        cost: None,
    };
    let mut to_send = 0;
    scan(&pipeline, Depth::Full, |row| {
        plan.rows += 1;
        if row.problems.is_empty() {
            plan.valid += 1;
            if finished.contains(row.key)? {
                plan.finished += 1;
            } else {
                to_send += 1;
                plan.images.reencoded += row.footprint.reencoded;
                plan.images.uploaded += row.footprint.uploaded;
            }
            return Ok(());
        }
        plan.invalid += 1;
        let mut reasons: Vec<Reason> = row.problems.iter().map(|p| p.reason).collect();
        reasons.dedup();
        for reason in reasons {
            *plan.by_reason.entry(reason).or_default() += 1;
        }
        let masked_key = mask_key(&pipeline, row.key);
        if plan.listed.len() < LISTED {
            let text = format!("key {masked_key}: {}", Problem::join(row.problems));
            plan.listed.push((row.number, text));
        }
        rejects.write(row.number, &masked_key, row.problems)
    })?;
    plan.rejects = rejects.finish()?;
    fill_calls(&mut plan, &pipeline, to_send);
    Ok(plan)
}

/// The rejects file beside the report: `out/report.csv` gives `out/report.rejects.csv`.
fn default_rejects(report: &Path) -> PathBuf {
    let stem = report
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    report.with_file_name(format!("{stem}.rejects.csv"))
}

/// The row key as it may be shown: masked too when the key column also holds a name, an
/// ID number or a mobile.
pub fn mask_key(pipeline: &Pipeline, key: &str) -> String {
    let personal = pipeline.materials.iter().find(|m| {
        !m.kind.is_image()
            && matches!(&m.source, MaterialSource::Column(c) if *c == pipeline.source.key.value)
    });
    match personal {
        Some(material) => pii::mask(material.kind, key),
        None => key.to_string(),
    }
}

/// Runs every row of the pipeline's input through the checks, in input order, handing each
/// to `each`. Duplicate keys and ticket ids are found here, across the whole input.
pub fn scan(
    pipeline: &Pipeline,
    depth: Depth,
    mut each: impl FnMut(&RowCheckView<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let rows = source::open(&pipeline.source)?;
    pipeline.check_columns(rows.header.names())?;
    let mut seen = Seen::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut rows = rows.iter;
    loop {
        batch.clear();
        for item in rows.by_ref().take(BATCH) {
            batch.push(item.with_context(|| {
                format!("cannot read the input {}", pipeline.source.path.display())
            })?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let checked: Vec<RowCheck> = batch
            .par_iter()
            .map(|row| check_row(pipeline, row, depth))
            .collect();
        for mut row in checked {
            seen.duplicates(&mut row);
            each(&RowCheckView {
                number: row.number,
                key: &row.key,
                problems: &row.problems,
                footprint: row.footprint,
            })?;
        }
    }
}

/// One checked row, as [`scan`] hands it out.
pub struct RowCheckView<'a> {
    /// 1-based input position.
    pub number: u64,
    /// The row key, unmasked.
    pub key: &'a str,
    /// Everything wrong with it.
    pub problems: &'a [Problem],
    /// What sending it takes.
    pub footprint: Footprint,
}

fn check_row(pipeline: &Pipeline, row: &RowResult, depth: Depth) -> RowCheck {
    let row = match row {
        Ok(row) => row,
        Err(error) => {
            return RowCheck {
                number: error.number,
                key: String::new(),
                ticket: None,
                problems: vec![Problem::new(Reason::RowUnreadable, error.message.clone())],
                footprint: Footprint::default(),
            };
        }
    };
    let key = row
        .get(&pipeline.source.key.value)
        .unwrap_or("")
        .trim()
        .to_string();
    let mut problems = Vec::new();
    if key.is_empty() {
        let detail = format!("the key column {} is empty", pipeline.source.key.value);
        problems.push(Problem::new(Reason::KeyEmpty, detail));
    }
    let ticket = match pipeline.ticket_id.value.render(|c| row.get(c)) {
        Ok(ticket) if !ticket.trim().is_empty() => Some(ticket),
        Ok(_) => {
            let detail = "the ticket id template gives an empty ticket id";
            problems.push(Problem::new(Reason::TicketMissing, detail));
            None
        }
        Err(reason) => {
            problems.push(Problem::new(
                Reason::TicketMissing,
                format!("no ticket id: {reason}"),
            ));
            None
        }
    };
    let (found, missing) = materials::resolve(pipeline, row);
    problems.extend(missing);
    problems.extend(checks::materials(&found, &pipeline.images, depth));
    RowCheck {
        number: row.number,
        key,
        ticket,
        footprint: materials::footprint(&found, &pipeline.images),
        problems,
    }
}

/// The keys and ticket ids seen so far, by a 64-bit hash, with the row that had them
/// first: a million rows take about 32 MB rather than their full text.
#[derive(Default)]
struct Seen {
    keys: HashMap<u64, u64>,
    tickets: HashMap<u64, u64>,
}

impl Seen {
    fn duplicates(&mut self, row: &mut RowCheck) {
        if !row.key.is_empty() {
            let first = *self.keys.entry(hash(&row.key)).or_insert(row.number);
            if first != row.number {
                let detail = format!("row {first} has the same key");
                row.problems
                    .push(Problem::new(Reason::KeyDuplicate, detail));
            }
        }
        if let Some(ticket) = &row.ticket {
            let first = *self.tickets.entry(hash(ticket)).or_insert(row.number);
            if first != row.number {
                let detail = format!("row {first} has the same ticket id");
                row.problems
                    .push(Problem::new(Reason::TicketDuplicate, detail));
            }
        }
    }
}

fn hash(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The rows the ledger has finished, when there is a ledger.
struct FinishedRows(Option<Ledger>);

impl FinishedRows {
    fn open(path: &Path) -> anyhow::Result<FinishedRows> {
        if !path.exists() {
            return Ok(FinishedRows(None));
        }
        Ok(FinishedRows(Some(Ledger::open_existing(path)?)))
    }

    fn contains(&self, key: &str) -> anyhow::Result<bool> {
        let Some(ledger) = &self.0 else {
            return Ok(false);
        };
        let entry = ledger.get(key)?;
        Ok(entry.is_some_and(|e| {
            e.state == Some(State::Done) && e.outcome.is_some_and(|o| o.is_verdict())
        }))
    }
}

/// The rejects file: created at the first invalid row, and only then.
struct Rejects {
    path: PathBuf,
    writer: Option<csv::Writer<std::fs::File>>,
}

impl Rejects {
    fn new(path: PathBuf) -> Rejects {
        Rejects { path, writer: None }
    }

    fn write(&mut self, row: u64, key: &str, problems: &[Problem]) -> anyhow::Result<()> {
        let path = &self.path;
        let context = || format!("cannot write the rejects file {}", path.display());
        if self.writer.is_none() {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).with_context(context)?;
            }
            let mut writer = csv::Writer::from_path(path).with_context(context)?;
            writer
                .write_record(["row", "key", "reasons", "details"])
                .with_context(context)?;
            self.writer = Some(writer);
        }
        let mut codes: Vec<&str> = problems.iter().map(|p| p.reason.code()).collect();
        codes.dedup();
        let details: Vec<&str> = problems.iter().map(|p| p.detail.as_str()).collect();
        if let Some(writer) = self.writer.as_mut() {
            writer
                .write_record([&row.to_string(), key, &codes.join(","), &details.join("; ")])
                .with_context(context)?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<Option<PathBuf>> {
        match self.writer {
            Some(mut writer) => {
                writer
                    .flush()
                    .with_context(|| format!("cannot write {}", self.path.display()))?;
                Ok(Some(self.path))
            }
            None => {
                // A rejects file from an earlier check would list rows that are now fine.
                let _ = std::fs::remove_file(&self.path);
                Ok(None)
            }
        }
    }
}

/// Counts the calls of `to_send` rows, and how long and how much they take.
fn fill_calls(plan: &mut Plan, pipeline: &Pipeline, to_send: u64) {
    let service = &pipeline.service;
    plan.calls.insert(Action::GetVerifyToken, to_send);
    plan.calls.insert(Action::SubmitMaterials, to_send);
    let polls = match service.endpoint {
        Endpoint::Sandbox => {
            plan.polls_estimated = true;
            let share = service.sandbox.review_share.unwrap_or(0.0);
            let delay = service
                .sandbox
                .review_delay
                .unwrap_or(Duration::from_secs(3));
            let per_row =
                (delay.as_secs_f64() / pipeline.polling.interval.as_secs_f64()).ceil() + 1.0;
            (to_send as f64 * share * per_row).round() as u64
        }
        Endpoint::Url(_) => 0,
    };
    plan.calls.insert(Action::GetStatus, polls);
    plan.uploads = plan.images.uploaded as u64;
    let seconds = |action: Action| {
        let calls = plan.calls.get(&action).copied().unwrap_or(0) as f64;
        let rate = service
            .rates
            .get(&action)
            .map_or(spec::DEFAULT_RATE_PER_SECOND, |r| r.get());
        calls / rate
    };
    let (bottleneck, slowest) = [
        Action::SubmitMaterials,
        Action::GetVerifyToken,
        Action::GetStatus,
    ]
    .into_iter()
    .map(|a| (a, seconds(a)))
    .fold((Action::SubmitMaterials, 0.0), |best, next| {
        if next.1 > best.1 { next } else { best }
    });
    plan.bottleneck = bottleneck;
    plan.duration = Duration::from_secs_f64(slowest);
    plan.cost = service
        .unit_price
        .as_ref()
        .map(|price| (price.amount * to_send as f64, price.currency.clone()));
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Plan for {} (Biz {})", self.spec.display(), self.biz)?;
        writeln!(
            f,
            "  input      {}: {} rows",
            self.input.display(),
            self.rows
        )?;
        writeln!(f, "  valid      {} rows", self.valid)?;
        if self.invalid > 0 {
            let place = self.rejects.as_ref().map_or(String::new(), |p| {
                format!(", all listed in {}", p.display())
            });
            writeln!(f, "  invalid    {} rows{place}", self.invalid)?;
            for (reason, count) in &self.by_reason {
                writeln!(f, "               {:<24} {count}", reason.code())?;
            }
        }
        if self.finished > 0 {
            writeln!(
                f,
                "  finished   {} valid rows already have a verdict in the ledger and are not sent again",
                self.finished
            )?;
        }
        writeln!(
            f,
            "  images     {} to re-encode, {} to upload to OSS",
            self.images.reencoded, self.images.uploaded
        )?;
        let count = |a: Action| self.calls.get(&a).copied().unwrap_or(0);
        let polls = if self.polls_estimated {
            format!(
                "about {} (from the sandbox's review share)",
                count(Action::GetStatus)
            )
        } else {
            "one per polling interval for each row in review".to_string()
        };
        writeln!(
            f,
            "  calls      GetVerifyToken {}, SubmitMaterials {}, GetStatus {polls}, PutObject {}",
            count(Action::GetVerifyToken),
            count(Action::SubmitMaterials),
            self.uploads
        )?;
        writeln!(
            f,
            "  duration   at least {} at the configured quotas ({} sets the pace)",
            human_duration(self.duration),
            self.bottleneck
        )?;
        if let Some((amount, currency)) = &self.cost {
            writeln!(
                f,
                "  cost       {amount:.2} {currency} for {} SubmitMaterials calls",
                count(Action::SubmitMaterials)
            )?;
        }
        if !self.biz_known {
            writeln!(
                f,
                "  note       the materials Biz {} needs are not known to this tool and were not checked",
                self.biz
            )?;
        }
        if !self.listed.is_empty() {
            writeln!(f, "First invalid rows:")?;
            for (row, text) in &self.listed {
                writeln!(f, "  row {row}: {text}")?;
            }
        }
        Ok(())
    }
}

/// `1h 02m`, `4m 10s`, `12.5 s`.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = duration.as_secs();
    if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// The reason a run with `on_invalid: abort` refuses to start, or `None` when every row
/// is valid. The rows are checked as `run` checks them, reading only image headers.
pub fn abort_reason(pipeline: &Pipeline) -> anyhow::Result<Option<String>> {
    let mut invalid = 0u64;
    let mut first = None;
    scan(pipeline, Depth::Header, |row| {
        if !row.problems.is_empty() {
            invalid += 1;
            first.get_or_insert_with(|| {
                format!("row {}: {}", row.number, Problem::join(row.problems))
            });
        }
        Ok(())
    })?;
    Ok(first.map(|first| {
        format!(
            "{invalid} rows fail the checks and on_invalid is abort, so nothing was sent; \
             the first is {first}; `cloudauth-batch check {}` lists them all",
            pipeline.spec_path.display()
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_go_beside_the_report() {
        assert_eq!(
            default_rejects(Path::new("out/demo-report.csv")),
            PathBuf::from("out/demo-report.rejects.csv")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(4_800)), "4.8 s");
        assert_eq!(human_duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(human_duration(Duration::from_secs(3_720)), "1h 02m");
    }
}
