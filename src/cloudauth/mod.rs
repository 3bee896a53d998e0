//! The Cloudauth client side of the wire: signing, the typed API model, and a blocking
//! client. The sandbox (`crate::sandbox`) is the other side and reuses the signing and the
//! model, so that both ends agree byte for byte with the known-answer vectors.

pub mod api;
pub mod chain;
pub mod client;
pub mod credentials;
pub mod error;
pub mod oss;
pub mod percent;
pub mod signature;

pub use api::{Action, MaterialType, VerifyStatus};
pub use client::{Client, Reply, SubmitBody, SubmitBodyBuilder, Timeouts};
pub use credentials::Credentials;
pub use error::{CallError, ConfigError};
