//! The one integration test binary: end-to-end tests grouped by module.

mod pipeline;
mod support;
mod wire;
