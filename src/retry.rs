//! What to do after a failed call: classify the failure, then compute the delay, then (in
//! the caller) log the reason. Pure and deterministic once jitter is off, so the rules and
//! the delay sequence are unit-tested here.

use std::time::Duration;

use crate::cloudauth::api::Action;
use crate::cloudauth::error::CallError;

/// What a failure calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try the same call again after a delay.
    Retry {
        /// Why, for the log.
        reason: String,
        /// A wait the service asked for, which replaces the computed delay when longer.
        at_least: Option<Duration>,
        /// Whether the service throttled us, which should slow every worker.
        throttled: bool,
    },
    /// A SubmitMaterials may have been recorded: ask GetStatus instead of resubmitting.
    Settle {
        /// Why, for the log.
        reason: String,
    },
    /// The VerifyToken expired: get a new one for the same ticket.
    RenewToken,
    /// Nothing to retry: the row ends with this error.
    GiveUp {
        /// Why, for the report.
        reason: String,
    },
    /// The run cannot go on: credentials or permissions are wrong.
    Stop {
        /// Why, for the user.
        reason: String,
    },
}

/// Codes that mean the account or its credentials are wrong, for every row alike.
const AUTH_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeySecret",
    "IncompleteSignature",
    "Error.NoPermissionAccess",
    "Forbidden.RAM",
    "Forbidden",
    "InvalidSecurityToken.Expired",
    "InvalidSecurityToken.Malformed",
    "InvalidSecurityToken.MismatchWithAccessKey",
];

/// Server-side failures worth another try.
const SERVER_CODES: &[&str] = &[
    "Error.InternalError",
    "InternalError",
    "ServiceUnavailable",
    "UnknownError",
    "Error.SubmitMaterialsError",
];

/// Classifies a failed call. Codes decide where there is one: the service's HTTP
/// statuses do not line up with the meaning (`InvalidParam.ParamMissing` is a 403).
pub fn classify(error: &CallError) -> Decision {
    match error {
        CallError::NotSent { reason, .. } => Decision::Retry {
            reason: format!("not sent: {reason}"),
            at_least: None,
            throttled: false,
        },
        CallError::Unanswered { action, reason, .. } => unanswered(*action, reason),
        CallError::Undecodable { action, status, .. } if *status >= 500 => {
            server_failure(*action, format!("HTTP {status} with an unreadable body"))
        }
        CallError::Undecodable { reason, .. } => Decision::GiveUp {
            reason: format!("unreadable answer: {reason}"),
        },
        CallError::Api {
            action,
            status,
            code,
            message,
            retry_after,
            ..
        } => api(*action, *status, code, message, *retry_after),
    }
}

fn unanswered(action: Action, reason: &str) -> Decision {
    if action == Action::SubmitMaterials {
        Decision::Settle {
            reason: format!("no answer to SubmitMaterials: {reason}"),
        }
    } else {
        Decision::Retry {
            reason: format!("no answer: {reason}"),
            at_least: None,
            throttled: false,
        }
    }
}

/// A 5xx: safe to repeat, except a SubmitMaterials that may have been recorded before the
/// server failed, which must be settled.
fn server_failure(action: Action, reason: String) -> Decision {
    if action == Action::SubmitMaterials {
        Decision::Settle { reason }
    } else {
        Decision::Retry {
            reason,
            at_least: None,
            throttled: false,
        }
    }
}

fn api(
    action: Action,
    status: u16,
    code: &str,
    message: &str,
    retry_after: Option<Duration>,
) -> Decision {
    let reason = format!("{code} (HTTP {status})");
    if code.starts_with("Throttling") || status == 429 {
        return Decision::Retry {
            reason,
            at_least: retry_after,
            throttled: true,
        };
    }
    if code.starts_with("InvalidAccessKeyId") || AUTH_CODES.contains(&code) {
        return Decision::Stop {
            reason: format!("{code}: {message}"),
        };
    }
    if code == "Error.DuplicatedTicketId" {
        return Decision::Settle { reason };
    }
    if code == "InvalidParam.VerifyTokenExpired" {
        return Decision::RenewToken;
    }
    if SERVER_CODES.contains(&code) || (status >= 500 && code != "Error.MaterialsUploadError") {
        // A submission that failed inside the service may still have been recorded.
        return server_failure(action, reason);
    }
    Decision::GiveUp {
        reason: format!("{code}: {message}"),
    }
}

/// Exponential backoff with full jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest delay.
    pub cap: Duration,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
            max_retries: 6,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry number `retry` (0 for the first retry):
    /// `min(cap, base × 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before retry number `retry`, drawn uniformly from zero to the ceiling
    /// ("full jitter", which spreads retries of many workers apart). `unit` is a draw from
    /// [0, 1); pass 1.0 to get the ceiling itself.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Whether another retry is allowed after `retries` retries.
    pub fn allows(&self, retries: u32) -> bool {
        retries < self.max_retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(action: Action, status: u16, code: &str) -> CallError {
        CallError::Api {
            action,
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "R".into(),
            retry_after: None,
        }
    }

    #[test]
    fn transport_failures_before_sending_are_retried() {
        let error = CallError::NotSent {
            action: Action::SubmitMaterials,
            reason: "refused".into(),
        };
        assert!(matches!(
            classify(&error),
            Decision::Retry {
                throttled: false,
                ..
            }
        ));
    }

    #[test]
    fn an_unanswered_submission_is_settled_but_other_calls_retried() {
        let submit = CallError::Unanswered {
            action: Action::SubmitMaterials,
            timed_out: true,
            reason: "t".into(),
        };
        assert!(matches!(classify(&submit), Decision::Settle { .. }));
        let status = CallError::Unanswered {
            action: Action::GetStatus,
            timed_out: true,
            reason: "t".into(),
        };
        assert!(matches!(classify(&status), Decision::Retry { .. }));
    }

    #[test]
    fn throttling_in_every_spelling_slows_down() {
        for (status, code) in [
            (400, "Throttling"),
            (400, "Throttling.User"),
            (400, "Throttling.Api"),
            (429, "TooMany"),
        ] {
            let decision = classify(&api_error(Action::GetStatus, status, code));
            assert!(
                matches!(
                    decision,
                    Decision::Retry {
                        throttled: true,
                        ..
                    }
                ),
                "{code}"
            );
        }
        let mut error = api_error(Action::GetStatus, 400, "Throttling.User");
        if let CallError::Api { retry_after, .. } = &mut error {
            *retry_after = Some(Duration::from_millis(1500));
        }
        assert!(
            matches!(classify(&error), Decision::Retry { at_least: Some(d), .. } if d == Duration::from_millis(1500))
        );
    }

    #[test]
    fn server_errors_retry_reads_and_settle_submissions() {
        for code in ["Error.InternalError", "ServiceUnavailable", "InternalError"] {
            assert!(matches!(
                classify(&api_error(Action::GetStatus, 503, code)),
                Decision::Retry { .. }
            ));
            assert!(matches!(
                classify(&api_error(Action::SubmitMaterials, 500, code)),
                Decision::Settle { .. }
            ));
        }
        let gateway = CallError::Undecodable {
            action: Action::GetVerifyToken,
            status: 502,
            reason: "x".into(),
            snippet: String::new(),
        };
        assert!(matches!(classify(&gateway), Decision::Retry { .. }));
    }

    #[test]
    fn duplicates_settle_and_expired_tokens_renew() {
        assert!(matches!(
            classify(&api_error(
                Action::SubmitMaterials,
                403,
                "Error.DuplicatedTicketId"
            )),
            Decision::Settle { .. }
        ));
        assert_eq!(
            classify(&api_error(
                Action::SubmitMaterials,
                400,
                "InvalidParam.VerifyTokenExpired"
            )),
            Decision::RenewToken
        );
    }

    #[test]
    fn input_errors_are_permanent() {
        for (status, code) in [
            (403, "InvalidParam.ParamMissing"),
            (403, "InvalidParam.MaterialsNotValid"),
            (400, "InvalidParam.MaterialsEmpty"),
            (400, "Error.RealNameCheckFail"),
            (403, "Error.MaterialsInsufficient"),
            (500, "Error.MaterialsUploadError"),
        ] {
            assert!(
                matches!(
                    classify(&api_error(Action::SubmitMaterials, status, code)),
                    Decision::GiveUp { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn credential_and_permission_failures_stop_the_run() {
        for (status, code) in [
            (404, "InvalidAccessKeyId.NotFound"),
            (400, "InvalidAccessKeyId.Inactive"),
            (400, "SignatureDoesNotMatch"),
            (400, "InvalidAccessKeySecret"),
            (403, "Error.NoPermissionAccess"),
            (403, "Forbidden.RAM"),
        ] {
            assert!(
                matches!(
                    classify(&api_error(Action::GetVerifyToken, status, code)),
                    Decision::Stop { .. }
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn delay_ceilings_double_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_retries: 5,
        };
        let ceilings: Vec<u128> = (0..6).map(|r| backoff.delay(r, 1.0).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay(3, 0.5), Duration::from_millis(400));
        assert_eq!(backoff.delay(3, 0.0), Duration::ZERO);
        assert_eq!(backoff.ceiling(200), Duration::from_secs(1));
        assert!(backoff.allows(4));
        assert!(!backoff.allows(5));
    }
}
