//! The one integration test binary: end-to-end tests grouped by module.

mod check;
mod deploy;
mod operator;
mod pipeline;
mod shards;
mod signing;
mod support;
mod wire;
