//! What can go wrong with one call, kept apart by what the caller may do next.

use std::time::Duration;

use super::api::Action;

/// The failure of one API call.
///
/// The variants separate what matters for a non-idempotent call: whether the request can
/// have reached the server. A SubmitMaterials that failed with [`CallError::NotSent`] may be
/// sent again; one that failed with [`CallError::Unanswered`] must be settled with GetStatus.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request never left: no connection could be made, or it could not be built.
    #[error("{action}: the request was not sent: {reason}")]
    NotSent {
        /// The action called.
        action: Action,
        /// What stopped it.
        reason: String,
    },
    /// The request may have reached the server, but no answer came back (a timeout, a reset).
    #[error("{action}: no answer{timed_out} after the request may have reached the server: {reason}", timed_out = if *.timed_out { " in time" } else { "" })]
    Unanswered {
        /// The action called.
        action: Action,
        /// Whether a timeout, rather than a broken connection, ended the wait.
        timed_out: bool,
        /// What ended it.
        reason: String,
    },
    /// The service answered with an error.
    #[error("{action}: {code} (HTTP {status}): {message} [RequestId {request_id}]")]
    Api {
        /// The action called.
        action: Action,
        /// The HTTP status.
        status: u16,
        /// The error code; classify by this, not by the status.
        code: String,
        /// The service's description.
        message: String,
        /// The service's id for the request.
        request_id: String,
        /// The wait the service asked for in `x-acs-retry-after`, if it did.
        retry_after: Option<Duration>,
    },
    /// The service answered with a body that could not be read.
    #[error("{action}: undecodable response (HTTP {status}): {reason}; body starts {snippet:?}")]
    Undecodable {
        /// The action called.
        action: Action,
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        reason: String,
        /// The first bytes of the body, which never hold submitted data.
        snippet: String,
    },
}

impl CallError {
    /// The action that failed.
    pub fn action(&self) -> Action {
        match self {
            CallError::NotSent { action, .. }
            | CallError::Unanswered { action, .. }
            | CallError::Api { action, .. }
            | CallError::Undecodable { action, .. } => *action,
        }
    }

    /// The API error code, for an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The RequestId, for an API error.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            CallError::Api { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// The HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Api { status, .. } | CallError::Undecodable { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request may have reached the server although no verdict came back.
    pub fn may_have_reached_server(&self) -> bool {
        !matches!(self, CallError::NotSent { .. })
    }
}

/// A client that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not a URL.
    #[error("endpoint {endpoint:?} is not a valid URL: {reason}")]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it does not parse.
        reason: String,
    },
    /// Plain HTTP to a host that is not this machine.
    #[error(
        "endpoint {endpoint:?} uses plain http; only https is allowed, except on a loopback address such as 127.0.0.1 (the sandbox)"
    )]
    InsecureEndpoint {
        /// The endpoint as given.
        endpoint: String,
    },
    /// The HTTP stack could not be built.
    #[error("could not set up the HTTP client: {0}")]
    Http(String),
}
