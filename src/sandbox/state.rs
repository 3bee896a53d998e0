//! The sandbox's shared state: configuration, tickets, issued tokens and credentials,
//! the emulated bucket, used nonces and the live stats.
//!
//! One lock guards the service state and another the stats; neither is ever held
//! across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::SandboxConfig;
use super::faces::FaceCache;
use super::faults::Faults;
use super::stats::Recorder;
use super::verdict::Verdict;

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The configuration given at start.
    pub config: SandboxConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `HostId` of error answers: the listening address.
    pub host_id: String,
    /// Fetches `http(s)://` materials.
    pub fetcher: reqwest::Client,
    /// Hashes of the photos seen, by content.
    pub faces: FaceCache,
    sequence: AtomicU64,
    faults: Mutex<Faults>,
    recorder: Mutex<Recorder>,
    core: Mutex<Core>,
}

/// The service state.
#[derive(Debug, Default)]
pub struct Core {
    /// Submissions per (Biz, TicketId).
    pub tickets: HashMap<(String, String), Submission>,
    /// Issued VerifyTokens.
    pub tokens: HashMap<String, TokenGrant>,
    /// Issued STS credentials, by their AccessKeyId.
    pub sts: HashMap<String, StsGrant>,
    /// The emulated bucket's objects, by key.
    pub bucket: HashMap<String, Object>,
    /// SignatureNonces seen recently.
    pub nonces: NonceLog,
}

/// A ticket's latest committed submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The decision, hidden behind StatusCode 0 until `visible_at`.
    pub verdict: Verdict,
    /// When the decision shows.
    pub visible_at: Instant,
    /// What was submitted, for GetMaterials.
    pub materials: Submitted,
}

impl Submission {
    /// The StatusCode at `now`.
    pub fn status_code(&self, now: Instant) -> i32 {
        if now < self.visible_at {
            0
        } else {
            self.verdict.status_code
        }
    }
}

/// What a submission carried, for GetMaterials.
#[derive(Debug, Clone, Default)]
pub struct Submitted {
    /// The submitted name.
    pub name: Option<String>,
    /// The submitted ID number.
    pub id_number: Option<String>,
    /// Bucket keys of the stored pictures, by material type name.
    pub pictures: HashMap<&'static str, String>,
}

/// An issued VerifyToken.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The scenario.
    pub biz: String,
    /// The ticket.
    pub ticket: String,
    /// When it stops being accepted.
    pub expires: Instant,
    /// Whether a submission was committed with it.
    pub used: bool,
}

/// Issued STS credentials for the emulated bucket.
#[derive(Debug, Clone)]
pub struct StsGrant {
    /// The temporary secret.
    pub secret: String,
    /// The security token.
    pub token: String,
    /// The key prefix uploads must lie under.
    pub path: String,
    /// When they stop being accepted.
    pub expires: Instant,
}

/// A stored object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The bytes.
    pub bytes: bytes::Bytes,
    /// The media type it was stored with.
    pub content_type: String,
}

/// Nonces used within the replay window, oldest first.
#[derive(Debug, Default)]
pub struct NonceLog {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl NonceLog {
    /// Records `nonce` of key `key_id`; false if it was already used within `window`.
    pub fn first_use(&mut self, key_id: &str, nonce: &str, now: Instant, window: Duration) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < window {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let entry = format!("{key_id}\n{nonce}");
        if !self.seen.insert(entry.clone()) {
            return false;
        }
        self.order.push_back((now, entry));
        true
    }
}

impl Shared {
    /// State for a sandbox reachable at `base_url`.
    pub fn new(config: SandboxConfig, base_url: String, host_id: String) -> Self {
        crate::cloudauth::client::install_crypto_provider();
        let fetcher = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Shared {
            faults: Mutex::new(config.faults.clone()),
            config,
            base_url,
            host_id,
            fetcher,
            faces: FaceCache::default(),
            sequence: AtomicU64::new(0),
            recorder: Mutex::new(Recorder::default()),
            core: Mutex::new(Core::default()),
        }
    }

    /// The next request's sequence number, which seeds its fault decisions.
    pub fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// The live stats.
    pub fn recorder(&self) -> MutexGuard<'_, Recorder> {
        lock(&self.recorder)
    }

    /// The service state.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }
}

/// Locks `mutex`, carrying on past a panic in another handler: every update keeps the
/// state consistent between statements, so a poisoned lock holds nothing half-done.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_refused_inside_the_window_only() {
        let mut log = NonceLog::default();
        let start = Instant::now();
        let window = Duration::from_secs(10);
        assert!(log.first_use("k", "n1", start, window));
        assert!(!log.first_use("k", "n1", start + Duration::from_secs(1), window));
        assert!(log.first_use("other", "n1", start, window));
        assert!(log.first_use("k", "n1", start + Duration::from_secs(11), window));
    }
}
