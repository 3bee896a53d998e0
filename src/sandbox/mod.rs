//! A local emulator of the Cloudauth API, for the demo pipeline and the tests.
//!
//! [`Sandbox::start`] listens on a loopback address and serves, on its own tokio runtime,
//! everything the client talks to:
//!
//! - the POP gateway (`gateway.rs`): parameters, signature, timestamp, nonce, API lookup;
//! - the four actions (`actions.rs`, `submit.rs`) over per-ticket state (`state.rs`),
//!   with verdicts from the authority data set (`verdict.rs`, `authority.rs`) and image
//!   materials fetched by `materials.rs`, their perceptual hashes remembered by content
//!   (`faces.rs`);
//! - an OSS bucket for uploads with the issued STS credentials (`oss.rs`);
//! - quotas (`quota.rs`) and deterministic faults (`faults.rs`);
//! - stats of what it saw and decided (`stats.rs`), also at `GET /_sandbox/stats`, and
//!   `POST /_sandbox/faults` to change faults from another process.
//!
//! It signs and reads with the same code as the client (`crate::cloudauth`), so the two
//! ends agree with the known-answer vectors byte for byte. Log lines carry codes and
//! statuses only, never names, ID numbers, images or secrets.

pub mod authority;
pub mod cli;
pub mod config;
pub mod error;
pub mod faults;
pub mod idnumber;
pub mod stats;
pub mod synthetic;

mod actions;
mod faces;
mod gateway;
mod materials;
mod oss;
mod quota;
mod reply;
mod server;
mod state;
mod submit;
mod verdict;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

pub use config::{
    AccessKey, KeyState, SandboxConfig, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, UnknownIds,
};
pub use faults::Faults;
pub use gateway::STRING_TO_SIGN_MARKER;
pub use stats::{ActionStats, Stats, VerdictRecord};
pub use verdict::{FACE_MISMATCH, goes_to_review};

use state::Shared;

/// A failure to start a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listen address is not a loopback address.
    #[error("the sandbox listens on loopback only, not on {0}")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime could not be built.
    #[error("could not start the sandbox's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running sandbox. It stops when shut down or dropped.
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Sandbox {
    /// Binds `config.listen` and serves in the background; returns once listening.
    pub fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let listen = config.listen;
        if !listen.ip().is_loopback() {
            return Err(SandboxError::NotLoopback(listen));
        }
        let bind_error = |source| SandboxError::Bind {
            addr: listen,
            source,
        };
        let listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(SandboxError::Runtime)?;

        let shared = Arc::new(Shared::new(
            config,
            format!("http://{addr}"),
            addr.to_string(),
        ));
        let listener = {
            let _inside = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_error)?
        };
        let (shutdown, stopped) = watch::channel(false);
        let router = server::router(Arc::clone(&shared));
        runtime.spawn(server::serve_connections(listener, router, stopped));
        tracing::info!(%addr, "sandbox listening");
        Ok(Sandbox {
            shared,
            addr,
            shutdown,
            runtime: Some(runtime),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has seen and decided so far.
    pub fn stats(&self) -> Stats {
        self.shared.recorder().snapshot()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Stops serving.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Receivers may already be gone; that is a stopped server too.
        let _ = self.shutdown.send(true);
        if let Some(runtime) = self.runtime.take() {
            // Not `shutdown_timeout`: a sandbox may be dropped inside another runtime.
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

#[cfg(test)]
mod tests;
