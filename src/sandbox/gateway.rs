//! The POP gateway in front of the actions: reads the parameters and authenticates the
//! caller, in the order of PROTOCOL.md §1, §2 and §5.3.
//!
//! Query and form body are merged before anything is checked, since the reference's own
//! example carries common parameters in the body; the body wins for a repeated name, as
//! it does in the SDKs' signing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cloudauth::Action;
use crate::cloudauth::api::API_VERSION;
use crate::cloudauth::percent;
use crate::cloudauth::signature::{self, EncodedParams, Method};

use super::config::{AccessKey, KeyState};
use super::error::ApiError;
use super::reply::Format;
use super::state::Shared;

/// The marker after which a `SignatureDoesNotMatch` message quotes the StringToSign. The
/// Python SDK splits the message on its one `:`.
pub const STRING_TO_SIGN_MARKER: &str = "server string to sign is:";

/// A parsed RPC request, not yet authenticated.
#[derive(Debug)]
pub struct Incoming {
    /// GET or POST.
    pub method: Method,
    /// The format to answer in.
    pub format: Format,
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
    params: HashMap<String, String>,
}

impl Incoming {
    /// Reads the method, query string and form body of a request to `/`.
    pub fn parse(method: &str, query: &str, body: &[u8]) -> Result<Incoming, (Format, ApiError)> {
        let query = percent::parse_form(query).unwrap_or_default();
        let body = std::str::from_utf8(body)
            .ok()
            .and_then(|text| percent::parse_form(text).ok())
            .unwrap_or_default();
        let params: HashMap<String, String> = query.iter().chain(&body).cloned().collect();
        let format = Format::from_param(params.get("Format").map(String::as_str));
        let method = match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            _ => {
                let message = "The specified HTTP method is not supported.";
                return Err((
                    format,
                    ApiError::gateway(400, "UnsupportedHTTPMethod", message),
                ));
            }
        };
        Ok(Incoming {
            method,
            format,
            query,
            body,
            params,
        })
    }

    /// A parameter, after the merge.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Every parameter, after the merge.
    pub fn params(&self) -> &HashMap<String, String> {
        &self.params
    }

    /// The action named, if it is one the sandbox serves.
    pub fn action(&self) -> Option<Action> {
        self.param("Action")?.parse().ok()
    }

    /// The StringToSign of the request as received.
    pub fn string_to_sign(&self) -> String {
        signature::string_to_sign(self.method, &encoded(&self.query), &encoded(&self.body))
    }
}

/// An authenticated call.
#[derive(Debug)]
pub struct Call {
    /// The action.
    pub action: Action,
    /// The key it was signed with.
    pub key_state: KeyState,
}

/// Authenticates `incoming`, returning the action to run.
pub fn authenticate(shared: &Shared, incoming: &Incoming) -> Result<Call, ApiError> {
    check_signature_params(incoming)?;
    check_timestamp(incoming, shared.config.max_clock_skew)?;
    let key = find_key(shared, incoming)?;
    check_signature(shared, incoming, key)?;
    check_nonce(shared, incoming, key)?;
    let action = find_api(incoming)?;
    check_format(incoming)?;
    if key.state == KeyState::RamDenied {
        let message = "User not authorized to operate on the specified resource.";
        return Err(ApiError::gateway(403, "Forbidden.RAM", message));
    }
    Ok(Call {
        action,
        key_state: key.state,
    })
}

fn check_signature_params(incoming: &Incoming) -> Result<(), ApiError> {
    for name in ["Signature", "SignatureMethod", "SignatureVersion"] {
        if incoming.param(name).is_none_or(str::is_empty) {
            let message = format!(
                "The request signature does not conform to Aliyun standards, {name} is missing."
            );
            return Err(ApiError::gateway(400, "IncompleteSignature", message));
        }
    }
    for name in ["AccessKeyId", "SignatureNonce"] {
        if incoming.param(name).is_none_or(str::is_empty) {
            return Err(ApiError::missing(name));
        }
    }
    if incoming.param("SignatureMethod") != Some("HMAC-SHA1") {
        let message = "The specified signature method is not supported.";
        return Err(ApiError::gateway(400, "InvalidSignatureMethod", message));
    }
    Ok(())
}

fn check_timestamp(incoming: &Incoming, max_skew: Duration) -> Result<(), ApiError> {
    let Some(text) = incoming.param("Timestamp").filter(|t| !t.is_empty()) else {
        let message = "The input parameter Timestamp that is mandatory for processing this request is not supplied.";
        return Err(ApiError::gateway(400, "IllegalTimestamp", message));
    };
    let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) else {
        let message = "The specified Timestamp is not in ISO 8601 format (YYYY-MM-DDThh-mm-ssZ).";
        return Err(ApiError::gateway(400, "InvalidTimeStamp.Format", message));
    };
    let skew = (OffsetDateTime::now_utc() - at).unsigned_abs();
    if skew > max_skew {
        let message = "The specified time stamp or date value is expired.";
        return Err(ApiError::gateway(400, "InvalidTimeStamp.Expired", message));
    }
    Ok(())
}

fn find_key<'a>(shared: &'a Shared, incoming: &Incoming) -> Result<&'a AccessKey, ApiError> {
    let id = incoming.param("AccessKeyId").unwrap_or_default();
    let Some(key) = shared.config.access_keys.iter().find(|k| k.id == id) else {
        let status = shared.config.unknown_key_status;
        let message = "Specified access key is not found.";
        return Err(ApiError::gateway(
            status,
            "InvalidAccessKeyId.NotFound",
            message,
        ));
    };
    if key.state == KeyState::Inactive {
        let message = "Specified access key is disabled.";
        return Err(ApiError::gateway(
            400,
            "InvalidAccessKeyId.Inactive",
            message,
        ));
    }
    Ok(key)
}

fn check_signature(shared: &Shared, incoming: &Incoming, key: &AccessKey) -> Result<(), ApiError> {
    let expected = {
        let query = encoded(&incoming.query);
        let body = encoded(&incoming.body);
        signature::sign(&key.secret, incoming.method, &query, &body)
    };
    if incoming.param("Signature") == Some(expected.as_str()) {
        return Ok(());
    }
    shared.recorder().signature_failed();
    let message = format!(
        "Specified signature is not matched with our calculation. {STRING_TO_SIGN_MARKER}{}",
        incoming.string_to_sign()
    );
    let status = shared.config.signature_mismatch_status;
    Err(ApiError::gateway(status, "SignatureDoesNotMatch", message))
}

fn encoded(pairs: &[(String, String)]) -> EncodedParams {
    let mut params = EncodedParams::default();
    for (name, value) in pairs {
        params.push(name, value);
    }
    params
}

fn check_nonce(shared: &Shared, incoming: &Incoming, key: &AccessKey) -> Result<(), ApiError> {
    let nonce = incoming.param("SignatureNonce").unwrap_or_default();
    let window = shared.config.nonce_window;
    if shared
        .core()
        .nonces
        .first_use(&key.id, nonce, Instant::now(), window)
    {
        return Ok(());
    }
    let message = "Specified signature nonce was used already.";
    Err(ApiError::gateway(400, "SignatureNonceUsed", message))
}

fn find_api(incoming: &Incoming) -> Result<Action, ApiError> {
    let action = incoming.action().ok_or_else(ApiError::api_not_found)?;
    if incoming.param("Version") != Some(API_VERSION) {
        return Err(ApiError::api_not_found());
    }
    Ok(action)
}

fn check_format(incoming: &Incoming) -> Result<(), ApiError> {
    match incoming.param("Format") {
        None => Ok(()),
        Some(f) if f.eq_ignore_ascii_case("JSON") || f.eq_ignore_ascii_case("XML") => Ok(()),
        Some(_) => {
            let message = "The specified parameter Format is not valid.";
            Err(ApiError::gateway(400, "InvalidParameter.Format", message))
        }
    }
}
