//! Injected faults: latency, failed answers, slow answers and dropped connections.
//!
//! Every decision is drawn from the seed and the request's sequence number, never from a
//! global random source, so a test that sends requests one after another sees the same
//! faults on every run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The faults to inject, each as a share of requests from 0 to 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Mean added latency of every call the gateway admits, in milliseconds: the
    /// service's own time on it, after the call has counted against the quota.
    pub latency_mean_ms: u64,
    /// The added latency varies uniformly by up to this much either side of the mean.
    pub latency_jitter_ms: u64,
    /// Share of calls answered 500 `InternalError` or 503 `ServiceUnavailable` (half each)
    /// before anything changes.
    pub error_share: f64,
    /// Share of calls answered 500 `Error.InternalError`, Cloudauth's own internal error,
    /// before anything changes.
    pub internal_error_share: f64,
    /// Share of SubmitMaterials calls answered 500 `Error.SubmitMaterialsError` before
    /// anything changes.
    pub submit_error_share: f64,
    /// Share of calls answered only after [`Faults::slow_ms`]. A SubmitMaterials call
    /// commits first and then waits, like a service whose answer is late.
    pub slow_share: f64,
    /// How long a slow answer waits, in milliseconds.
    pub slow_ms: u64,
    /// Share of calls whose effect is committed and whose connection is then closed
    /// without an answer.
    pub drop_after_commit_share: f64,
}

/// A gateway-level failure chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayFault {
    /// 500 `InternalError`.
    Internal,
    /// 503 `ServiceUnavailable`.
    Unavailable,
}

/// What the faults decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Latency added before the answer.
    pub latency: Duration,
    /// A gateway failure instead of the action.
    pub gateway: Option<GatewayFault>,
    /// `Error.InternalError` instead of the action.
    pub internal: bool,
    /// `Error.SubmitMaterialsError` instead of SubmitMaterials.
    pub submit_error: bool,
    /// Extra wait after the action.
    pub slow: Option<Duration>,
    /// Close the connection after the action instead of answering.
    pub drop: bool,
}

impl Faults {
    /// The decision for request number `sequence` under `seed`.
    pub fn decide(&self, seed: u64, sequence: u64) -> Decision {
        let draw = |salt: u64| unit(mix(seed, sequence, salt));
        let gateway = (draw(1) < self.error_share).then(|| {
            if draw(2) < 0.5 {
                GatewayFault::Internal
            } else {
                GatewayFault::Unavailable
            }
        });
        Decision {
            latency: self.latency(draw(3)),
            gateway,
            internal: draw(4) < self.internal_error_share,
            submit_error: draw(5) < self.submit_error_share,
            slow: (draw(6) < self.slow_share).then(|| Duration::from_millis(self.slow_ms)),
            drop: draw(7) < self.drop_after_commit_share,
        }
    }

    fn latency(&self, draw: f64) -> Duration {
        let jitter = self.latency_jitter_ms as f64;
        let millis = self.latency_mean_ms as f64 + (draw * 2.0 - 1.0) * jitter;
        Duration::from_millis(millis.max(0.0).round() as u64)
    }
}

/// SplitMix64 over the three inputs: a cheap, well-spread hash.
pub fn mix(seed: u64, sequence: u64, salt: u64) -> u64 {
    let mut z = seed
        ^ sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps a hash to [0, 1).
pub fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_decide_nothing() {
        let decision = Faults::default().decide(7, 1);
        assert_eq!(decision, Decision::default());
    }

    #[test]
    fn decisions_repeat_under_a_seed_and_follow_the_share() {
        let faults = Faults {
            error_share: 0.3,
            ..Faults::default()
        };
        let first: Vec<_> = (0..1000).map(|n| faults.decide(42, n)).collect();
        let again: Vec<_> = (0..1000).map(|n| faults.decide(42, n)).collect();
        assert_eq!(first, again);
        let failed = first.iter().filter(|d| d.gateway.is_some()).count();
        assert!((240..360).contains(&failed), "{failed}");
    }

    #[test]
    fn latency_stays_within_the_jitter() {
        let faults = Faults {
            latency_mean_ms: 100,
            latency_jitter_ms: 20,
            ..Faults::default()
        };
        for n in 0..200 {
            let ms = faults.decide(1, n).latency.as_millis();
            assert!((80..=120).contains(&ms), "{ms}");
        }
    }
}
