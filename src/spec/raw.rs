//! The pipeline spec as the user typed it: the first of the two parsing stages.
//!
//! Everything here mirrors the YAML one to one, with unknown keys refused. Values that need
//! checking (templates, rates, durations, paths) are kept as located strings so the second
//! stage can point at the exact line and column when it rejects them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string value with where it was written.
pub type Located = Spanned<String>;

/// The whole spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// The schema version; only 1 exists.
    pub version: Spanned<u32>,
    /// The campaign's name, used in logs and the ledger.
    pub name: Located,
    /// How to reach the service.
    pub service: RawService,
    /// The input table.
    pub source: RawSource,
    /// The ticket id template.
    pub ticket_id: Located,
    /// Material type → where its value comes from.
    pub materials: BTreeMap<String, Spanned<RawMaterial>>,
    /// GetStatus polling while a row is in review.
    #[serde(default)]
    pub polling: RawPolling,
    /// The report table.
    pub report: RawReport,
    /// The durable progress database.
    pub ledger: RawLedger,
    /// Limits of images and what to do with those over them.
    #[serde(default)]
    pub images: RawImages,
    /// `skip` or `abort`: what a run does with rows that fail the checks.
    #[serde(default)]
    pub on_invalid: Option<Located>,
}

/// `images:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImages {
    /// The most bytes one image may have, such as `2MiB`.
    pub max_bytes: Option<Located>,
    /// `recompress`, `upload` or `reject`.
    pub fit: Option<Located>,
    /// The shortest side, in pixels, an image may have.
    pub min_side: Option<Spanned<u32>>,
    /// The most image bytes the rows in flight may hold at once, such as `96MiB`.
    pub in_flight: Option<Located>,
}

/// `service:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// `sandbox` or an https URL.
    #[serde(default)]
    pub endpoint: Option<Located>,
    /// The region id.
    #[serde(default)]
    pub region: Option<Located>,
    /// The scenario code.
    pub biz: Located,
    /// Per-action quotas such as `10/s`.
    #[serde(default)]
    pub rate: BTreeMap<String, Located>,
    /// Per-action quotas of one shard, when not the quota divided by the shards.
    #[serde(default)]
    pub shard_rate: BTreeMap<String, Located>,
    /// `auto` or a number of requests in flight.
    #[serde(default)]
    pub concurrency: Option<Spanned<Concurrency>>,
    /// Per-phase timeouts.
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// Settings of the embedded sandbox, used with `endpoint: sandbox`.
    #[serde(default)]
    pub sandbox: RawSandbox,
    /// The error-rate breaker.
    #[serde(default)]
    pub breaker: Option<Spanned<RawBreaker>>,
    /// The price of one SubmitMaterials call, such as `0.50 CNY`, for the plan's cost.
    #[serde(default)]
    pub unit_price: Option<Located>,
    /// Where the credentials come from.
    #[serde(default)]
    pub credentials: Option<Spanned<RawCredentials>>,
}

/// `service.credentials:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// A profile of the Alibaba Cloud CLI config or the credentials file.
    pub profile: Option<Located>,
    /// An AccessKeyId, literal or from the environment.
    pub access_key_id: Option<Located>,
    /// An AccessKeySecret: only as an environment reference such as `${VAR}`.
    pub access_key_secret: Option<Located>,
    /// An STS SecurityToken: only as an environment reference.
    pub security_token: Option<Located>,
}

/// `service.breaker:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// How many of the latest rows are looked at; 0 turns the breaker off.
    pub window: Option<usize>,
    /// The share of them that may fail for infrastructure reasons.
    pub max_error_rate: Option<f64>,
}

/// `auto` or a number, as typed.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Concurrency {
    /// A fixed number of requests in flight.
    Fixed(u32),
    /// A word, which must be `auto`.
    Word(String),
}

/// `service.timeouts:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// Opening a connection.
    pub connect: Option<Located>,
    /// A call other than SubmitMaterials.
    pub read: Option<Located>,
    /// A SubmitMaterials call.
    pub submit: Option<Located>,
}

/// `service.sandbox:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    /// The authority data set, a CSV file.
    pub authority: Option<Located>,
    /// Share of submissions that go to review first.
    pub review_share: Option<Spanned<f64>>,
    /// How long a review takes.
    pub review_delay: Option<Located>,
    /// AuthorityComparisonScore needed to pass.
    pub pass_threshold: Option<Spanned<f64>>,
    /// Seed of the sandbox's random choices.
    pub seed: Option<u64>,
}

/// `source:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The input file, relative to the spec.
    pub path: Located,
    /// The unique row key column.
    pub key: Located,
}

/// One entry of `materials:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaterial {
    /// A column holding the value.
    pub column: Option<Located>,
    /// A file path template.
    pub file: Option<Located>,
    /// Whether a row without this material is skipped. Default true.
    pub required: Option<bool>,
}

/// `polling:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolling {
    /// Time between two GetStatus calls for one row.
    pub interval: Option<Located>,
    /// How long a row may stay in review before it is reported as pending.
    pub timeout: Option<Located>,
}

/// `report:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// The report file; its extension picks the format.
    pub path: Located,
    /// `mask`, `hash` or `plain`: how the personal columns are written.
    pub pii: Option<Located>,
    /// The key of `pii: hash`, as an environment reference such as `${REPORT_HASH_KEY}`.
    pub hash_key: Option<Located>,
}

/// `ledger:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// The SQLite file.
    pub path: Located,
}
