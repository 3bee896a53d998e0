//! cloudauth-batch: re-verifies identities in bulk through Alibaba Cloud Cloudauth.
//!
//! The modules follow the data as it flows through a run:
//!
//! - [`spec`]: the YAML pipeline spec, parsed as typed, then validated into a [`spec::Pipeline`].
//! - [`source`]: streams the rows of the CSV, TSV or Parquet input.
//! - [`images`]: checks that a photo is a whole JPEG or PNG of a usable size, and fits one
//!   over the per-image limit by re-encoding it.
//! - [`materials`]: picks each row's materials from its columns and image files, makes the
//!   photos fit, and encodes them into a SubmitMaterials body.
//! - [`checks`]: the rules a row must pass before it is paid for (ID numbers, mobiles, names,
//!   photos); [`pii`] masks or hashes the personal values wherever they are shown.
//! - [`cloudauth`]: the wire. RPC signature v1, the typed API model of version 2018-09-16, a
//!   blocking client, and OSS uploads with the StsToken.
//! - [`limiter`] and [`retry`]: quotas per action, and what to do when a call fails;
//!   [`breaker`] stops a run whose rows keep failing.
//! - [`engine`]: drives each row through GetVerifyToken, SubmitMaterials and GetStatus on a
//!   pool of workers.
//! - [`ledger`]: the durable SQLite record of every row, written before the run moves on;
//!   [`lock`] keeps a second run off it.
//! - [`report`]: the report table, built from the ledger, with personal columns masked or
//!   hashed; [`summary`] counts and charts it in `summary.json` and `summary.html`, and
//!   [`tools`] re-exports a ledger's report or shows how far its run has got.
//! - [`run`], [`check`] and [`cli`]: the commands that tie these together; `check` plans a
//!   run and lists its invalid rows without calling the service. [`shard`] splits a run
//!   across processes under one quota, and [`merge`] joins the shards' ledgers again.
//!
//! Beside the client sits [`sandbox`], a local emulator of the service (gateway checks,
//! verdicts, review delays, quotas, faults) for the demo and the tests. It shares the wire
//! code with the client.

pub mod breaker;
pub mod check;
pub mod checks;
pub mod cli;
pub mod cloudauth;
pub mod engine;
pub mod images;
pub mod ledger;
pub mod limiter;
pub mod lock;
pub mod materials;
pub mod merge;
pub mod pii;
pub mod progress;
pub mod report;
pub mod retry;
pub mod run;
pub mod sandbox;
pub mod shard;
pub mod source;
pub mod spec;
pub mod summary;
pub mod tools;
