//! The errors the sandbox answers with: gateway errors (PROTOCOL.md §5.3) and Cloudauth's
//! own (the SubmitMaterials reference table, whose English messages are used verbatim).

use std::time::Duration;

/// An error answer: HTTP status, code and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} (HTTP {status}): {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The error code.
    pub code: String,
    /// The English message.
    pub message: String,
    /// Whether it is a Cloudauth error rather than a gateway one; those carry
    /// `Success: false` and no `Recommend` link.
    pub business: bool,
    /// The wait to advertise in `x-acs-retry-after`.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// A gateway error.
    pub fn gateway(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            business: false,
            retry_after: None,
        }
    }

    fn business(status: u16, code: &str, message: &str) -> Self {
        ApiError {
            business: true,
            ..ApiError::gateway(status, code, message)
        }
    }

    /// `Error.InternalError` (500).
    pub fn internal() -> Self {
        let message = "The request processing has failed due to some unknown error.";
        ApiError::business(500, "Error.InternalError", message)
    }

    /// `InvalidParam.ParamMissing` (403). The misspelling is the service's own.
    pub fn param_missing() -> Self {
        let message = "Please check if there is param empty in your imput.";
        ApiError::business(403, "InvalidParam.ParamMissing", message)
    }

    /// `Error.NoPermissionAccess` (403).
    pub fn no_permission() -> Self {
        let message = "No permission to access our service.";
        ApiError::business(403, "Error.NoPermissionAccess", message)
    }

    /// `InvalidParam.VerifyTokenExpired` (400).
    pub fn token_expired() -> Self {
        let message = "The verify token was expired.";
        ApiError::business(400, "InvalidParam.VerifyTokenExpired", message)
    }

    /// `InvalidParam.MaterialsEmpty` (400).
    pub fn materials_empty() -> Self {
        let message = "The materials list is empty.";
        ApiError::business(400, "InvalidParam.MaterialsEmpty", message)
    }

    /// `InvalidParam.MaterialsNotValid` (403).
    pub fn materials_not_valid() -> Self {
        let message = "The param materials is not valid.";
        ApiError::business(403, "InvalidParam.MaterialsNotValid", message)
    }

    /// `Error.DuplicatedTicketId` (403).
    pub fn duplicated_ticket() -> Self {
        let message = "A record associated with your ticketId has existed.";
        ApiError::business(403, "Error.DuplicatedTicketId", message)
    }

    /// `Error.SubmitMaterialsError` (500).
    pub fn submit_failed() -> Self {
        let message = "SubmitMaterials action failed due to internal error.";
        ApiError::business(500, "Error.SubmitMaterialsError", message)
    }

    /// `Error.MaterialsUploadError` (500).
    pub fn upload_failed() -> Self {
        let message = "The materials upload failed.";
        ApiError::business(500, "Error.MaterialsUploadError", message)
    }

    /// `Error.MaterialsInsufficient` (403).
    pub fn insufficient() -> Self {
        let message = "The number of materials does not meet the requirements for verification.";
        ApiError::business(403, "Error.MaterialsInsufficient", message)
    }

    /// `Error.RealNameCheckFail` (400).
    pub fn real_name_mismatch() -> Self {
        let message = "Name not match with IdentificationNumber";
        ApiError::business(400, "Error.RealNameCheckFail", message)
    }

    /// `Missing{name}` (400): a required parameter is absent.
    pub fn missing(name: &str) -> Self {
        let message = format!("{name} is mandatory for this action.");
        ApiError::gateway(400, &format!("Missing{name}"), message)
    }

    /// `InvalidApi.NotFound` (404).
    pub fn api_not_found() -> Self {
        let message = "Specified api is not found, please check your url and method.";
        ApiError::gateway(404, "InvalidApi.NotFound", message)
    }

    /// `Throttling.User` (400), advertising `wait`.
    pub fn throttled(wait: Option<Duration>) -> Self {
        let message = "Request was denied due to user flow control.";
        ApiError {
            retry_after: wait,
            ..ApiError::gateway(400, "Throttling.User", message)
        }
    }

    /// `InternalError` (500) from the gateway.
    pub fn gateway_internal() -> Self {
        let message =
            "The request processing has failed due to some unknown error, exception or failure.";
        ApiError::gateway(500, "InternalError", message)
    }

    /// `ServiceUnavailable` (503).
    pub fn unavailable() -> Self {
        let message = "The request has failed due to a temporary failure of the server.";
        ApiError::gateway(503, "ServiceUnavailable", message)
    }
}
