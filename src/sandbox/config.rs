//! Everything a sandbox can be told at start: keys, scenarios, the authority data set,
//! verdict rules, quotas and faults.
//!
//! Where PROTOCOL.md calls a behaviour "unconfirmed", the choice made here is the most
//! plausible one and sits in a field, so a test or a demo can pick the other reading.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::cloudauth::api::required_materials;
use crate::cloudauth::{Action, MaterialType};

use super::authority::Authority;
use super::faults::Faults;

/// The AccessKeyId of the key every default sandbox accepts.
pub const TEST_ACCESS_KEY_ID: &str = "sandbox-test-id";

/// The secret of [`TEST_ACCESS_KEY_ID`]. It protects nothing: the sandbox only listens on
/// loopback and holds generated data.
pub const TEST_ACCESS_KEY_SECRET: &str = "sandbox-test-secret";

/// What the gateway thinks of an AccessKey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs requests that succeed.
    Active,
    /// Disabled in the console: `InvalidAccessKeyId.Inactive`.
    Inactive,
    /// Valid, but the account has not activated Cloudauth: `Error.NoPermissionAccess`.
    NoPermission,
    /// A RAM user without the policy for the action: `Forbidden.RAM`.
    RamDenied,
}

/// An AccessKey the sandbox knows.
#[derive(Clone)]
pub struct AccessKey {
    /// The AccessKeyId.
    pub id: String,
    /// The AccessKeySecret.
    pub secret: String,
    /// How the gateway treats it.
    pub state: KeyState,
}

impl AccessKey {
    /// An active key.
    pub fn active(id: impl Into<String>, secret: impl Into<String>) -> Self {
        AccessKey {
            id: id.into(),
            secret: secret.into(),
            state: KeyState::Active,
        }
    }
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("state", &self.state)
            .finish()
    }
}

/// What to do with an ID number the authority data set does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownIds {
    /// Fail the real-name check, as the real service does for a number with no record.
    Reject,
    /// Skip the name check and score the face against the ID card portrait if there is
    /// one, else give [`SandboxConfig::unknown_id_score`]. Benchmarks on generated people
    /// need this.
    Accept,
}

/// The whole configuration of a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where to listen; only loopback addresses are accepted. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The keys the gateway accepts. Default: the test key alone.
    pub access_keys: Vec<AccessKey>,
    /// Registered names and portraits, by ID number.
    pub authority: Authority,
    /// The configured scenarios and the material types each one requires. A Biz that is
    /// not a key here answers `Error.NoPermissionAccess`.
    pub biz_requirements: BTreeMap<String, Vec<MaterialType>>,
    /// How long a VerifyToken stays valid (`DurationSeconds`). Unconfirmed; default 1800 s.
    pub token_lifetime: Duration,
    /// How long the StsToken stays valid. Unconfirmed; default 3600 s.
    pub sts_lifetime: Duration,
    /// The emulated OSS bucket named in every StsToken.
    pub bucket_name: String,
    /// Share of submissions, from 0 to 1, that answer StatusCode 0 and are decided later.
    pub review_share: f64,
    /// How long a submission in review stays at StatusCode 0. Default 3 s.
    pub review_delay: Duration,
    /// The authority comparison score a submission needs to pass. Default 80 (0.1% FAR).
    pub pass_threshold: f64,
    /// What to do with ID numbers the authority data set does not hold. Default reject.
    pub unknown_ids: UnknownIds,
    /// The score given under [`UnknownIds::Accept`] when no ID card portrait was sent.
    pub unknown_id_score: f64,
    /// Calls per second admitted per action, over any sliding one-second window. An
    /// action not listed is unlimited. Cloudauth's real limits are unknown.
    pub quotas: BTreeMap<Action, u32>,
    /// Whether a throttled answer carries `x-acs-retry-after` (milliseconds). Whether the
    /// real gateway sends it is unconfirmed; default on.
    pub retry_after_header: bool,
    /// Seeds every random decision (faults, review), so that runs repeat.
    pub seed: u64,
    /// Faults injected from the start; change them later with `Sandbox::set_faults`.
    pub faults: Faults,
    /// Whether `http(s)://` materials may be fetched from hosts other than loopback.
    pub allow_remote_fetch: bool,
    /// How long fetching one `http(s)://` material may take. Default 3 s.
    pub fetch_timeout: Duration,
    /// The largest request body accepted. The reference says "8M"; the larger reading,
    /// 8,388,608 bytes, is the default. The real error for a larger body is unconfirmed;
    /// the sandbox answers 413 `RequestEntityTooLarge`.
    pub max_body_bytes: usize,
    /// The largest decoded image accepted. Default 2 MiB.
    pub max_image_bytes: usize,
    /// Size limit of one image fetched from the emulated OSS bucket. The reference's 2 MB
    /// advice is about the service's fetch timing out, which its own bucket in the same
    /// region is least likely to do; whether it is enforced for OSS objects at all is
    /// unconfirmed. Default 10 MiB, so that uploading is a way to send large photos unchanged.
    pub max_oss_image_bytes: usize,
    /// The largest accepted difference between a request's Timestamp and the clock.
    pub max_clock_skew: Duration,
    /// How long a SignatureNonce stays used. Unconfirmed; default 15 min.
    pub nonce_window: Duration,
    /// Whether a VerifyToken that carried a failed submission (StatusCode 2) may carry
    /// another one. Unconfirmed; default yes, while the token is valid.
    pub reuse_token_after_failure: bool,
    /// HTTP status of `InvalidAccessKeyId.NotFound`; the docs say 404 or 400. Default 404.
    pub unknown_key_status: u16,
    /// HTTP status of `SignatureDoesNotMatch`; the docs say 400 or 403. Default 400, which
    /// the Python SDK relies on.
    pub signature_mismatch_status: u16,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_keys: vec![AccessKey::active(
                TEST_ACCESS_KEY_ID,
                TEST_ACCESS_KEY_SECRET,
            )],
            authority: Authority::default(),
            biz_requirements: default_biz_requirements(),
            token_lifetime: Duration::from_secs(1800),
            sts_lifetime: Duration::from_secs(3600),
            bucket_name: "cloudauth-sandbox".to_string(),
            review_share: 0.0,
            review_delay: Duration::from_secs(3),
            pass_threshold: 80.0,
            unknown_ids: UnknownIds::Reject,
            unknown_id_score: 90.0,
            quotas: BTreeMap::new(),
            retry_after_header: true,
            seed: 0,
            faults: Faults::default(),
            allow_remote_fetch: false,
            fetch_timeout: Duration::from_secs(3),
            max_body_bytes: 8 * 1024 * 1024,
            max_image_bytes: 2 * 1024 * 1024,
            max_oss_image_bytes: 10 * 1024 * 1024,
            max_clock_skew: Duration::from_secs(15 * 60),
            nonce_window: Duration::from_secs(15 * 60),
            reuse_token_after_failure: true,
            unknown_key_status: 404,
            signature_mismatch_status: 400,
        }
    }
}

/// The scenarios a default sandbox knows. Their names and required materials are guesses
/// (PROTOCOL.md §3.1 calls them unconfirmed).
pub fn default_biz_requirements() -> BTreeMap<String, Vec<MaterialType>> {
    ["RPBasic", "RPBasicTest", "RPMin"]
        .into_iter()
        .filter_map(|biz| Some((biz.to_string(), required_materials(biz)?.to_vec())))
        .collect()
}
