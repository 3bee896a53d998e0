//! The pipeline spec: a YAML file that says where the accounts are, how their columns and
//! image files map to Cloudauth materials, and how to call the service.
//!
//! Parsing happens in two stages. [`raw`] reads what the user typed, refusing unknown keys
//! and wrong types; [`load`] then turns it into a validated [`Pipeline`], and every
//! "your spec is wrong" message comes from that step, naming file, line, column and key.

pub mod env;
pub mod error;
pub mod raw;
pub mod template;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::breaker::BreakerRule;
use crate::cloudauth::api::{Action, DEFAULT_REGION, MaterialType};
use crate::cloudauth::client::Timeouts;
pub use error::{Origin, SpecError};
use raw::RawSpec;
pub use template::Template;
pub use units::Rate;

/// The quota an action gets when the spec names none: conservative, since the account's
/// real quota is unknown and exceeding it only earns throttling.
pub const DEFAULT_RATE_PER_SECOND: f64 = 10.0;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The spec file.
    pub spec_path: PathBuf,
    /// The folder relative paths are resolved against.
    pub base_dir: PathBuf,
    /// The spec's text, for quoting it in later errors.
    pub spec_text: String,
    /// The campaign's name.
    pub name: String,
    /// How to reach the service.
    pub service: Service,
    /// The input table.
    pub source: SourceSpec,
    /// The ticket id template.
    pub ticket_id: Located<Template>,
    /// The materials, in the order the spec lists them.
    pub materials: Vec<MaterialSpec>,
    /// GetStatus polling.
    pub polling: Polling,
    /// The report table.
    pub report: ReportSpec,
    /// The SQLite ledger.
    pub ledger: PathBuf,
    /// Image limits.
    pub images: ImagePolicy,
    /// What a run does with rows that fail the checks.
    pub on_invalid: OnInvalid,
}

/// `images:`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagePolicy {
    /// The most bytes one image may have.
    pub max_bytes: usize,
    /// What to do with an image over that.
    pub fit: Fit,
    /// The shortest side, in pixels, an image may have.
    pub min_side: u32,
    /// The most image bytes the rows in flight may hold at once: photos as read and
    /// encoded bodies.
    pub in_flight: usize,
}

/// The default of `images.in_flight`: enough for 200 SubmitMaterials a second at 300 ms
/// with three 200 KB photos a row, with room to spare, in a process that stays under
/// 200 MB.
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 64 * 1024 * 1024;

impl Default for ImagePolicy {
    fn default() -> Self {
        ImagePolicy {
            max_bytes: crate::cloudauth::api::MAX_IMAGE_BYTES,
            fit: Fit::Recompress,
            min_side: crate::images::MIN_SIDE,
            in_flight: DEFAULT_IN_FLIGHT_BYTES,
        }
    }
}

/// What to do with an image over `images.max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Re-encode it as JPEG at decreasing quality, then downscale it, until it fits.
    Recompress,
    /// Upload it unchanged to the service's OSS bucket and send its `oss://` address.
    Upload,
    /// Skip the row.
    Reject,
}

/// What a run does with a row that fails the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnInvalid {
    /// Record it as skipped with its reasons and go on.
    #[default]
    Skip,
    /// Check every row first, and stop before the first call if any is invalid.
    Abort,
}

/// The price of one SubmitMaterials call.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// The amount.
    pub amount: f64,
    /// The currency, such as `CNY`.
    pub currency: String,
}

/// How the report writes its personal columns (name, ID number, mobile).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Pii {
    /// Masked: `张*`, `6305**********0099`, `139****2930`.
    #[default]
    Mask,
    /// A keyed SHA-256, hex, so reports can be joined without showing the values.
    Hash {
        /// The key.
        key: String,
    },
    /// As they are.
    Plain,
}

/// `service.credentials:`, validated.
#[derive(Debug, Clone, Default)]
pub struct CredentialSettings {
    /// The profile to take from the CLI config or the credentials file.
    pub profile: Option<String>,
    /// Credentials given in the spec through environment references.
    pub explicit: Option<crate::cloudauth::credentials::Credentials>,
}

/// A value with where the spec wrote it.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub origin: Origin,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// The embedded emulator, started for the run.
    Sandbox,
    /// A URL: https, or http on a loopback address.
    Url(String),
}

/// `service:`, validated.
#[derive(Debug, Clone)]
pub struct Service {
    /// Where requests go.
    pub endpoint: Endpoint,
    /// The region id.
    pub region: String,
    /// The scenario code.
    pub biz: String,
    /// The quota of every action.
    pub rates: BTreeMap<Action, Rate>,
    /// The quota of one shard, for the actions the spec names; the others take their
    /// quota divided by the number of shards.
    pub shard_rates: BTreeMap<Action, Rate>,
    /// Requests in flight: `None` for auto.
    pub concurrency: Option<u32>,
    /// Timeouts by phase.
    pub timeouts: Timeouts,
    /// Settings of the embedded sandbox.
    pub sandbox: SandboxSettings,
    /// When to stop a run whose rows keep failing.
    pub breaker: BreakerRule,
    /// The price of one SubmitMaterials call.
    pub unit_price: Option<Price>,
    /// Where the credentials come from.
    pub credentials: CredentialSettings,
}

/// `service.sandbox:`, validated; unset values keep the sandbox's defaults.
#[derive(Debug, Clone, Default)]
pub struct SandboxSettings {
    /// The authority data set.
    pub authority: Option<PathBuf>,
    /// Share of submissions that go to review first.
    pub review_share: Option<f64>,
    /// How long a review takes.
    pub review_delay: Option<Duration>,
    /// AuthorityComparisonScore needed to pass.
    pub pass_threshold: Option<f64>,
    /// Seed of the sandbox's random choices.
    pub seed: Option<u64>,
}

/// The input file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// Comma-separated, with a header row.
    Csv,
    /// Tab-separated, with a header row.
    Tsv,
    /// Apache Parquet.
    Parquet,
}

/// `source:`, validated.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The input file.
    pub path: PathBuf,
    /// Its format, from the extension.
    pub format: SourceFormat,
    /// The unique key column.
    pub key: Located<String>,
}

/// Where a material's value comes from.
#[derive(Debug, Clone)]
pub enum MaterialSource {
    /// A column: text, or for images a URL, `oss://`, `base64://`, `data:` URI or file path.
    Column(String),
    /// An image file named by a template over the columns.
    File(Template),
}

/// One material, validated.
#[derive(Debug, Clone)]
pub struct MaterialSpec {
    /// The material type.
    pub kind: MaterialType,
    /// Where its value comes from.
    pub source: MaterialSource,
    /// Whether a row without it is skipped.
    pub required: bool,
    /// Where the spec declares it.
    pub origin: Origin,
}

/// `polling:`, validated.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    /// Time between two GetStatus calls for one row.
    pub interval: Duration,
    /// How long a row may stay in review.
    pub timeout: Duration,
}

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// CSV with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// One JSON object per line.
    Jsonl,
}

/// `report:`, validated.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    /// The report file.
    pub path: PathBuf,
    /// Its format.
    pub format: ReportFormat,
    /// How personal columns are written.
    pub pii: Pii,
}

impl ReportFormat {
    /// The format a file extension implies.
    pub fn from_path(path: &Path) -> Option<ReportFormat> {
        match extension(path).as_deref() {
            Some("csv") => Some(ReportFormat::Csv),
            Some("parquet") => Some(ReportFormat::Parquet),
            Some("jsonl") | Some("ndjson") => Some(ReportFormat::Jsonl),
            _ => None,
        }
    }
}

/// `relative` joined to `base`, with `.` and `..` folded away where the path allows, so
/// that messages show `out/report.csv` rather than `pipelines/../out/report.csv`.
pub fn resolve(base: &Path, relative: &str) -> PathBuf {
    use std::path::Component;

    let mut out = PathBuf::new();
    for component in base.join(relative).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Reads and validates the spec at `path`.
pub fn load(path: &Path) -> Result<Pipeline, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut raw: RawSpec = serde_saphyr::from_str(&text).map_err(|e| SpecError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let validator = Validator {
        path,
        text: &text,
        base_dir: &base_dir,
    };
    let references = validator.expand_all(&mut raw, &|name| std::env::var(name).ok())?;
    validator.pipeline(raw, &references)
}

/// The second stage: checks every value and resolves paths.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
    base_dir: &'a Path,
}

fn origin<T>(spanned: &Spanned<T>) -> Origin {
    Origin {
        line: spanned.referenced.line(),
        column: spanned.referenced.column(),
    }
}

/// Where the spec wrote values as a single environment reference, such as `${SECRET}`.
#[derive(Debug, Default)]
struct References(Vec<Origin>);

impl References {
    fn is_reference(&self, raw: &raw::Located) -> bool {
        self.0.contains(&origin(raw))
    }
}

impl Validator<'_> {
    /// Replaces the environment references in every string value of `raw`.
    fn expand_all(
        &self,
        raw: &mut RawSpec,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<References, SpecError> {
        let mut references = References::default();
        for (value, key) in string_values(raw) {
            let expanded = env::expand(&value.value, lookup)
                .map_err(|m| self.error(origin(value), &key, m))?;
            if expanded.is_reference {
                references.0.push(origin(value));
            }
            value.value = expanded.value;
        }
        Ok(references)
    }

    fn error(&self, at: Origin, key: &str, message: impl Into<String>) -> SpecError {
        SpecError::invalid(self.path, self.text, at, key, message)
    }

    fn pipeline(&self, raw: RawSpec, references: &References) -> Result<Pipeline, SpecError> {
        if raw.version.value != 1 {
            let message = format!(
                "version {} is not supported; this tool reads version 1",
                raw.version.value
            );
            return Err(self.error(origin(&raw.version), "version", message));
        }
        let service = self.service(raw.service, references)?;
        let source = self.source(raw.source)?;
        let ticket_id = self.template(&raw.ticket_id, "ticket_id")?;
        let materials = self.materials(raw.materials)?;
        self.required_materials(&service.biz, &materials)?;
        let polling = self.polling(raw.polling)?;
        let report = self.report(raw.report, references)?;
        let ledger = resolve(self.base_dir, &raw.ledger.path.value);
        let images = self.images(raw.images)?;
        let on_invalid = self.on_invalid(raw.on_invalid.as_ref())?;
        Ok(Pipeline {
            spec_path: self.path.to_path_buf(),
            base_dir: self.base_dir.to_path_buf(),
            spec_text: self.text.to_string(),
            name: raw.name.value,
            service,
            source,
            ticket_id,
            materials,
            polling,
            report,
            ledger,
            images,
            on_invalid,
        })
    }

    fn service(&self, raw: raw::RawService, references: &References) -> Result<Service, SpecError> {
        let endpoint = match raw.endpoint {
            None => Endpoint::Sandbox,
            Some(e) if e.value == "sandbox" => Endpoint::Sandbox,
            Some(e) => {
                crate::cloudauth::client::checked_endpoint(&e.value)
                    .map_err(|err| self.error(origin(&e), "service.endpoint", err.to_string()))?;
                Endpoint::Url(e.value)
            }
        };
        if raw.biz.value.trim().is_empty() {
            return Err(self.error(
                origin(&raw.biz),
                "service.biz",
                "the scenario code (Biz) must not be empty",
            ));
        }
        Ok(Service {
            endpoint,
            region: raw
                .region
                .map_or_else(|| DEFAULT_REGION.to_string(), |r| r.value),
            biz: raw.biz.value,
            rates: self.rates(raw.rate, "service.rate", true)?,
            shard_rates: self.rates(raw.shard_rate, "service.shard_rate", false)?,
            concurrency: self.concurrency(raw.concurrency)?,
            timeouts: self.timeouts(raw.timeouts)?,
            sandbox: self.sandbox(raw.sandbox)?,
            breaker: self.breaker(raw.breaker)?,
            unit_price: raw.unit_price.as_ref().map(|p| self.price(p)).transpose()?,
            credentials: self.credentials(raw.credentials, references)?,
        })
    }

    fn rates(
        &self,
        raw: BTreeMap<String, raw::Located>,
        section: &str,
        with_defaults: bool,
    ) -> Result<BTreeMap<Action, Rate>, SpecError> {
        let default = Rate::per_second(DEFAULT_RATE_PER_SECOND).unwrap_or_else(|| unreachable!());
        let mut rates: BTreeMap<Action, Rate> = if with_defaults {
            Action::ALL.iter().map(|&a| (a, default)).collect()
        } else {
            BTreeMap::new()
        };
        for (name, value) in raw {
            let key = format!("{section}.{name}");
            let action: Action = name.parse().map_err(|_| {
                let known: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
                self.error(
                    origin(&value),
                    &key,
                    format!(
                        "unknown action {name:?}; the actions are {}",
                        known.join(", ")
                    ),
                )
            })?;
            let rate =
                units::parse_rate(&value.value).map_err(|m| self.error(origin(&value), &key, m))?;
            rates.insert(action, rate);
        }
        Ok(rates)
    }

    fn concurrency(
        &self,
        raw: Option<Spanned<raw::Concurrency>>,
    ) -> Result<Option<u32>, SpecError> {
        let Some(raw) = raw else { return Ok(None) };
        let at = origin(&raw);
        match raw.value {
            raw::Concurrency::Word(word) if word == "auto" => Ok(None),
            raw::Concurrency::Fixed(n) if (1..=1024).contains(&n) => Ok(Some(n)),
            raw::Concurrency::Fixed(n) => Err(self.error(
                at,
                "service.concurrency",
                format!("{n} is out of range; use 1 to 1024, or auto"),
            )),
            raw::Concurrency::Word(word) => Err(self.error(
                at,
                "service.concurrency",
                format!("{word:?} is neither auto nor a number"),
            )),
        }
    }

    fn timeouts(&self, raw: raw::RawTimeouts) -> Result<Timeouts, SpecError> {
        let defaults = Timeouts::default();
        Ok(Timeouts {
            connect: self.duration_or(
                raw.connect.as_ref(),
                "service.timeouts.connect",
                defaults.connect,
            )?,
            read: self.duration_or(raw.read.as_ref(), "service.timeouts.read", defaults.read)?,
            submit: self.duration_or(
                raw.submit.as_ref(),
                "service.timeouts.submit",
                defaults.submit,
            )?,
        })
    }

    fn breaker(&self, raw: Option<Spanned<raw::RawBreaker>>) -> Result<BreakerRule, SpecError> {
        let defaults = BreakerRule::default();
        let Some(raw) = raw else { return Ok(defaults) };
        let rule = BreakerRule {
            window: raw.value.window.unwrap_or(defaults.window),
            max_error_rate: raw.value.max_error_rate.unwrap_or(defaults.max_error_rate),
        };
        if !(0.0..=1.0).contains(&rule.max_error_rate) {
            return Err(self.error(
                origin(&raw),
                "service.breaker.max_error_rate",
                "a rate lies between 0 and 1",
            ));
        }
        Ok(rule)
    }

    fn sandbox(&self, raw: raw::RawSandbox) -> Result<SandboxSettings, SpecError> {
        if let Some(share) = &raw.review_share
            && !(0.0..=1.0).contains(&share.value)
        {
            return Err(self.error(
                origin(share),
                "service.sandbox.review_share",
                "a share lies between 0 and 1",
            ));
        }
        let review_delay = match &raw.review_delay {
            Some(d) => Some(self.duration(d, "service.sandbox.review_delay")?),
            None => None,
        };
        Ok(SandboxSettings {
            authority: raw.authority.map(|a| resolve(self.base_dir, &a.value)),
            review_share: raw.review_share.map(|s| s.value),
            review_delay,
            pass_threshold: raw.pass_threshold.map(|t| t.value),
            seed: raw.seed,
        })
    }

    fn source(&self, raw: raw::RawSource) -> Result<SourceSpec, SpecError> {
        let path = resolve(self.base_dir, &raw.path.value);
        let format = match extension(&path).as_deref() {
            Some("csv") => SourceFormat::Csv,
            Some("tsv") => SourceFormat::Tsv,
            Some("parquet") => SourceFormat::Parquet,
            _ => {
                let message = format!("{:?} is not a .csv, .tsv or .parquet file", raw.path.value);
                return Err(self.error(origin(&raw.path), "source.path", message));
            }
        };
        let key = Located {
            value: raw.key.value.clone(),
            origin: origin(&raw.key),
        };
        Ok(SourceSpec { path, format, key })
    }

    fn template(&self, raw: &raw::Located, key: &str) -> Result<Located<Template>, SpecError> {
        let value = Template::parse(&raw.value).map_err(|m| self.error(origin(raw), key, m))?;
        Ok(Located {
            value,
            origin: origin(raw),
        })
    }

    fn materials(
        &self,
        raw: BTreeMap<String, Spanned<raw::RawMaterial>>,
    ) -> Result<Vec<MaterialSpec>, SpecError> {
        let mut materials = Vec::with_capacity(raw.len());
        for (name, entry) in raw {
            materials.push(self.material(&name, entry)?);
        }
        if materials.is_empty() {
            return Err(self.error(
                Origin { line: 1, column: 1 },
                "materials",
                "at least one material is needed",
            ));
        }
        // Keep the order the user wrote, which the maps above lose.
        materials.sort_by_key(|m| (m.origin.line, m.origin.column));
        Ok(materials)
    }

    fn material(
        &self,
        name: &str,
        entry: Spanned<raw::RawMaterial>,
    ) -> Result<MaterialSpec, SpecError> {
        let at = origin(&entry);
        let key = format!("materials.{name}");
        let kind: MaterialType = name.parse().map_err(|_| {
            let known: Vec<_> = MaterialType::ALL.iter().map(|k| k.as_str()).collect();
            self.error(
                at,
                &key,
                format!(
                    "unknown material type {name:?}; the types are {}",
                    known.join(", ")
                ),
            )
        })?;
        let source = match (entry.value.column, entry.value.file) {
            (Some(column), None) => MaterialSource::Column(column.value),
            (None, Some(file)) if kind.is_image() => {
                MaterialSource::File(self.template(&file, &format!("{key}.file"))?.value)
            }
            (None, Some(file)) => {
                return Err(self.error(
                    origin(&file),
                    &format!("{key}.file"),
                    format!("{name} is text, not an image; take it from a column"),
                ));
            }
            _ => return Err(self.error(at, &key, "give exactly one of column: or file:")),
        };
        let required = entry.value.required.unwrap_or(true);
        Ok(MaterialSpec {
            kind,
            source,
            required,
            origin: at,
        })
    }

    fn polling(&self, raw: raw::RawPolling) -> Result<Polling, SpecError> {
        let interval = self.duration_or(
            raw.interval.as_ref(),
            "polling.interval",
            Duration::from_secs(2),
        )?;
        let timeout = self.duration_or(
            raw.timeout.as_ref(),
            "polling.timeout",
            Duration::from_secs(600),
        )?;
        if interval.is_zero() {
            let at = raw.interval.as_ref().map(origin).unwrap_or_default();
            return Err(self.error(
                at,
                "polling.interval",
                "the interval must be more than zero",
            ));
        }
        Ok(Polling { interval, timeout })
    }

    fn report(
        &self,
        raw: raw::RawReport,
        references: &References,
    ) -> Result<ReportSpec, SpecError> {
        let path = resolve(self.base_dir, &raw.path.value);
        let format = ReportFormat::from_path(&path).ok_or_else(|| {
            self.error(
                origin(&raw.path),
                "report.path",
                format!(
                    "{:?} is not a .csv, .parquet or .jsonl file",
                    raw.path.value
                ),
            )
        })?;
        let pii = self.pii(raw.pii.as_ref(), raw.hash_key.as_ref(), references)?;
        Ok(ReportSpec { path, format, pii })
    }

    fn pii(
        &self,
        pii: Option<&raw::Located>,
        hash_key: Option<&raw::Located>,
        references: &References,
    ) -> Result<Pii, SpecError> {
        let word = pii.map_or("mask", |p| p.value.as_str());
        match (word, hash_key) {
            ("mask", None) => Ok(Pii::Mask),
            ("plain", None) => Ok(Pii::Plain),
            ("hash", Some(key)) => {
                self.secret(key, "report.hash_key", references)?;
                Ok(Pii::Hash {
                    key: key.value.clone(),
                })
            }
            ("hash", None) => Err(self.error(
                pii.map(origin).unwrap_or_default(),
                "report.pii",
                "pii: hash needs report.hash_key, e.g. hash_key: ${REPORT_HASH_KEY}",
            )),
            ("mask" | "plain", Some(key)) => Err(self.error(
                origin(key),
                "report.hash_key",
                "a hash key is only used with pii: hash",
            )),
            (other, _) => Err(self.error(
                pii.map(origin).unwrap_or_default(),
                "report.pii",
                format!("{other:?} is not mask, hash or plain"),
            )),
        }
    }

    /// Refuses a secret written into the spec: it would end up in version control, in
    /// backups and in every copy of the file. An environment reference is fine.
    fn secret(
        &self,
        raw: &raw::Located,
        key: &str,
        references: &References,
    ) -> Result<(), SpecError> {
        if references.is_reference(raw) {
            return Ok(());
        }
        Err(SpecError::invalid(
            self.path,
            "",
            origin(raw),
            key,
            format!(
                "a secret must not be written into the spec, where it would be kept in version \
                 control and copied with the file; name an environment variable instead, e.g. \
                 ${{{}}}",
                key.rsplit('.').next().unwrap_or(key).to_ascii_uppercase()
            ),
        ))
    }

    fn credentials(
        &self,
        raw: Option<Spanned<raw::RawCredentials>>,
        references: &References,
    ) -> Result<CredentialSettings, SpecError> {
        let Some(raw) = raw else {
            return Ok(CredentialSettings::default());
        };
        let at = origin(&raw);
        let raw = raw.value;
        for (value, key) in [
            (
                &raw.access_key_secret,
                "service.credentials.access_key_secret",
            ),
            (&raw.security_token, "service.credentials.security_token"),
        ] {
            if let Some(value) = value {
                self.secret(value, key, references)?;
            }
        }
        let explicit = match (raw.access_key_id, raw.access_key_secret) {
            (Some(id), Some(secret)) => {
                let credentials =
                    crate::cloudauth::credentials::Credentials::new(id.value, secret.value);
                Some(match raw.security_token {
                    Some(token) => credentials.with_security_token(token.value),
                    None => credentials,
                })
            }
            (None, None) => None,
            _ => {
                return Err(self.error(
                    at,
                    "service.credentials",
                    "give both access_key_id and access_key_secret, or neither",
                ));
            }
        };
        if explicit.is_some() && raw.profile.is_some() {
            return Err(self.error(
                at,
                "service.credentials",
                "give either a profile or access keys, not both",
            ));
        }
        Ok(CredentialSettings {
            profile: raw.profile.map(|p| p.value),
            explicit,
        })
    }

    fn price(&self, raw: &raw::Located) -> Result<Price, SpecError> {
        let bad = || {
            self.error(
                origin(raw),
                "service.unit_price",
                format!(
                    "{:?} is not a price; write an amount and a currency, e.g. 0.50 CNY",
                    raw.value
                ),
            )
        };
        let mut words = raw.value.split_whitespace();
        let amount: f64 = words.next().and_then(|a| a.parse().ok()).ok_or_else(bad)?;
        let currency = words.next().unwrap_or("CNY").to_string();
        if words.next().is_some() || !amount.is_finite() || amount < 0.0 {
            return Err(bad());
        }
        Ok(Price { amount, currency })
    }

    fn images(&self, raw: raw::RawImages) -> Result<ImagePolicy, SpecError> {
        let defaults = ImagePolicy::default();
        let max_bytes = match &raw.max_bytes {
            Some(size) => units::parse_bytes(&size.value)
                .map_err(|m| self.error(origin(size), "images.max_bytes", m))?,
            None => defaults.max_bytes,
        };
        let fit = match raw.fit.as_ref().map(|f| (f, f.value.as_str())) {
            None => defaults.fit,
            Some((_, "recompress")) => Fit::Recompress,
            Some((_, "upload")) => Fit::Upload,
            Some((_, "reject")) => Fit::Reject,
            Some((at, other)) => {
                return Err(self.error(
                    origin(at),
                    "images.fit",
                    format!("{other:?} is not recompress, upload or reject"),
                ));
            }
        };
        let min_side = raw.min_side.map_or(defaults.min_side, |m| m.value);
        let in_flight = match &raw.in_flight {
            Some(size) => units::parse_bytes(&size.value)
                .and_then(|n| match n {
                    0 => Err("must be more than 0 bytes".to_string()),
                    n => Ok(n),
                })
                .map_err(|m| self.error(origin(size), "images.in_flight", m))?,
            None => defaults.in_flight,
        };
        Ok(ImagePolicy {
            max_bytes,
            fit,
            min_side,
            in_flight,
        })
    }

    fn on_invalid(&self, raw: Option<&raw::Located>) -> Result<OnInvalid, SpecError> {
        match raw.map(|r| (r, r.value.as_str())) {
            None | Some((_, "skip")) => Ok(OnInvalid::Skip),
            Some((_, "abort")) => Ok(OnInvalid::Abort),
            Some((at, other)) => Err(self.error(
                origin(at),
                "on_invalid",
                format!("{other:?} is not skip or abort"),
            )),
        }
    }

    /// Refuses a spec that leaves out a material its Biz scenario needs: every row would
    /// be paid for and fail.
    fn required_materials(&self, biz: &str, materials: &[MaterialSpec]) -> Result<(), SpecError> {
        let Some(required) = crate::cloudauth::api::required_materials(biz) else {
            return Ok(());
        };
        let missing: Vec<&str> = required
            .iter()
            .filter(|kind| !materials.iter().any(|m| m.kind == **kind && m.required))
            .map(|kind| kind.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let at = materials.first().map(|m| m.origin).unwrap_or_default();
        Err(self.error(
            at,
            "materials",
            format!(
                "Biz {biz} needs {}, which the spec does not map as required",
                missing.join(", ")
            ),
        ))
    }

    fn duration(&self, raw: &raw::Located, key: &str) -> Result<Duration, SpecError> {
        units::parse_duration(&raw.value).map_err(|m| self.error(origin(raw), key, m))
    }

    fn duration_or(
        &self,
        raw: Option<&raw::Located>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, SpecError> {
        raw.map_or(Ok(default), |d| self.duration(d, key))
    }
}

/// Every string value of a spec with its key path, for environment interpolation.
fn string_values(raw: &mut RawSpec) -> Vec<(&mut raw::Located, String)> {
    fn one<'a>(
        values: &mut Vec<(&'a mut raw::Located, String)>,
        value: Option<&'a mut raw::Located>,
        key: &str,
    ) {
        if let Some(value) = value {
            values.push((value, key.to_string()));
        }
    }
    let mut values = Vec::new();
    one(&mut values, Some(&mut raw.name), "name");
    one(&mut values, Some(&mut raw.ticket_id), "ticket_id");
    one(&mut values, Some(&mut raw.source.path), "source.path");
    one(&mut values, Some(&mut raw.source.key), "source.key");
    one(&mut values, Some(&mut raw.report.path), "report.path");
    one(&mut values, raw.report.pii.as_mut(), "report.pii");
    one(&mut values, raw.report.hash_key.as_mut(), "report.hash_key");
    one(&mut values, Some(&mut raw.ledger.path), "ledger.path");
    one(
        &mut values,
        raw.images.max_bytes.as_mut(),
        "images.max_bytes",
    );
    one(&mut values, raw.images.fit.as_mut(), "images.fit");
    one(
        &mut values,
        raw.images.in_flight.as_mut(),
        "images.in_flight",
    );
    one(&mut values, raw.on_invalid.as_mut(), "on_invalid");
    one(
        &mut values,
        raw.polling.interval.as_mut(),
        "polling.interval",
    );
    one(&mut values, raw.polling.timeout.as_mut(), "polling.timeout");
    let service = &mut raw.service;
    one(&mut values, service.endpoint.as_mut(), "service.endpoint");
    one(&mut values, service.region.as_mut(), "service.region");
    one(&mut values, Some(&mut service.biz), "service.biz");
    one(
        &mut values,
        service.unit_price.as_mut(),
        "service.unit_price",
    );
    one(
        &mut values,
        service.timeouts.connect.as_mut(),
        "service.timeouts.connect",
    );
    one(
        &mut values,
        service.timeouts.read.as_mut(),
        "service.timeouts.read",
    );
    one(
        &mut values,
        service.timeouts.submit.as_mut(),
        "service.timeouts.submit",
    );
    one(
        &mut values,
        service.sandbox.authority.as_mut(),
        "service.sandbox.authority",
    );
    one(
        &mut values,
        service.sandbox.review_delay.as_mut(),
        "service.sandbox.review_delay",
    );
    if let Some(credentials) = service.credentials.as_mut() {
        let credentials = &mut credentials.value;
        one(
            &mut values,
            credentials.profile.as_mut(),
            "service.credentials.profile",
        );
        one(
            &mut values,
            credentials.access_key_id.as_mut(),
            "service.credentials.access_key_id",
        );
        one(
            &mut values,
            credentials.access_key_secret.as_mut(),
            "service.credentials.access_key_secret",
        );
        one(
            &mut values,
            credentials.security_token.as_mut(),
            "service.credentials.security_token",
        );
    }
    for (action, rate) in service.rate.iter_mut() {
        one(&mut values, Some(rate), &format!("service.rate.{action}"));
    }
    for (action, rate) in service.shard_rate.iter_mut() {
        one(
            &mut values,
            Some(rate),
            &format!("service.shard_rate.{action}"),
        );
    }
    for (kind, material) in raw.materials.iter_mut() {
        one(
            &mut values,
            material.value.column.as_mut(),
            &format!("materials.{kind}.column"),
        );
        one(
            &mut values,
            material.value.file.as_mut(),
            &format!("materials.{kind}.file"),
        );
    }
    values
}

impl Pipeline {
    /// Checks that every column the spec names exists in the input's `header`.
    pub fn check_columns(&self, header: &[String]) -> Result<(), SpecError> {
        let has = |name: &str| header.iter().any(|h| h == name);
        let known = || header.join(", ");
        let missing = |at: Origin, key: &str, name: &str| {
            let message = format!(
                "column {name:?} is not in {}; its columns are: {}",
                self.source.path.display(),
                known()
            );
            SpecError::invalid(&self.spec_path, &self.spec_text, at, key, message)
        };
        if !has(&self.source.key.value) {
            return Err(missing(
                self.source.key.origin,
                "source.key",
                &self.source.key.value,
            ));
        }
        if let Some(name) = self.ticket_id.value.columns().find(|c| !has(c)) {
            return Err(missing(self.ticket_id.origin, "ticket_id", name));
        }
        for material in &self.materials {
            let key = format!("materials.{}", material.kind);
            let columns: Vec<&str> = match &material.source {
                MaterialSource::Column(name) => vec![name.as_str()],
                MaterialSource::File(template) => template.columns().collect(),
            };
            if let Some(name) = columns.into_iter().find(|c| !has(c)) {
                return Err(missing(material.origin, &key, name));
            }
        }
        Ok(())
    }
}
