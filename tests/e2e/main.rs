//! The one integration test binary: end-to-end tests grouped by module.

mod pipeline;
mod signing;
mod support;
mod wire;
