//! A local emulator of the Cloudauth API, for the demo pipeline and the tests.
//! (Placeholder API, replaced by the real emulator.)

pub mod authority;

/// The test key id.
pub const TEST_ACCESS_KEY_ID: &str = "sandbox-test-id";
/// The test key secret.
pub const TEST_ACCESS_KEY_SECRET: &str = "sandbox-test-secret";

/// Settings.
#[derive(Debug, Default)]
pub struct SandboxConfig {
    /// Authority.
    pub authority: authority::Authority,
    /// Share.
    pub review_share: f64,
    /// Delay.
    pub review_delay: std::time::Duration,
    /// Threshold.
    pub pass_threshold: f64,
    /// Seed.
    pub seed: u64,
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Starts.
    pub fn start(_config: SandboxConfig) -> Result<Sandbox, std::io::Error> {
        Err(std::io::Error::other("not yet"))
    }
    /// URL.
    pub fn url(&self) -> String {
        String::new()
    }
}
