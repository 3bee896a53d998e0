//! The emulated OSS bucket: PutObject with the STS credentials GetVerifyToken issued,
//! checked with the same OSS v1 signature the client computes (PROTOCOL.md §8).
//!
//! Only `x-oss-security-token` is taken as a canonical `x-oss-` header, as the client
//! sends no other; an expired STS credential answers `InvalidAccessKeyId` (the real code,
//! perhaps `SecurityTokenExpired`, is unconfirmed).

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use time::OffsetDateTime;

use crate::cloudauth::oss::{self, PutObject};
use crate::cloudauth::percent;

use super::reply::{escape_into, request_id};
use super::state::{Object, Shared};

/// How far a request's Date may be from the clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// An OSS error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssError {
    /// The HTTP status.
    pub status: u16,
    /// The OSS error code.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl OssError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        OssError {
            status,
            code,
            message: message.into(),
        }
    }

    fn denied(message: &str) -> Self {
        OssError::new(403, "AccessDenied", message)
    }
}

/// One PutObject as received.
#[derive(Debug)]
pub struct Put<'a> {
    /// The bucket named by the Host header.
    pub bucket: &'a str,
    /// The request path, percent-encoded, with its leading `/`.
    pub path: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Handles a PutObject and renders the answer.
pub fn put_object(shared: &Shared, put: Put<'_>) -> Response {
    let id = request_id();
    match store(shared, put) {
        Ok(etag) => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            insert(headers, "ETag", &format!("\"{etag}\""));
            insert(headers, "x-oss-request-id", &id);
            response
        }
        Err(error) => error_response(&error, &id, &shared.host_id),
    }
}

fn store(shared: &Shared, put: Put<'_>) -> Result<String, OssError> {
    if put.bucket != shared.config.bucket_name {
        return Err(OssError::new(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        ));
    }
    let key = path_decode(put.path.trim_start_matches('/'))?;
    let header = |name: &str| put.headers.get(name).and_then(|v| v.to_str().ok());
    let date = header("date").ok_or_else(|| OssError::denied("Date header is missing."))?;
    check_date(date)?;
    let (key_id, signature) = header("authorization")
        .and_then(|a| a.strip_prefix("OSS "))
        .and_then(|a| a.split_once(':'))
        .ok_or_else(|| OssError::denied("Authorization header is invalid."))?;
    let security_token = header("x-oss-security-token").unwrap_or_default();

    let grant = shared.core().sts.get(key_id).cloned();
    let grant = grant
        .filter(|g| g.expires > Instant::now() && g.token == security_token)
        .ok_or_else(|| {
            OssError::new(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
            )
        })?;
    let signed = PutObject {
        bucket: put.bucket,
        key: &key,
        content_md5: header("content-md5"),
        content_type: header("content-type"),
        date,
        security_token,
    };
    let expected = signed.authorization(key_id, &grant.secret);
    if expected.rsplit(':').next() != Some(signature) {
        let message = format!(
            "The request signature we calculated does not match the signature you provided. StringToSign: {}",
            signed.string_to_sign()
        );
        return Err(OssError::new(403, "SignatureDoesNotMatch", message));
    }
    if !key.starts_with(grant.path.as_str()) {
        return Err(OssError::denied(
            "The object key is outside the path the token allows.",
        ));
    }
    check_md5(header("content-md5"), &put.body)?;

    let etag = md5_hex(&put.body);
    let object = Object {
        content_type: header("content-type")
            .unwrap_or("application/octet-stream")
            .to_string(),
        bytes: put.body,
    };
    shared.core().bucket.insert(key, object);
    Ok(etag)
}

/// Decodes a URL path: `%XY` escapes, with `+` kept as a plus sign.
fn path_decode(path: &str) -> Result<String, OssError> {
    percent::form_decode(&path.replace('+', "%2B"))
        .map_err(|_| OssError::new(400, "InvalidObjectName", "The object key is not UTF-8."))
}

fn check_date(date: &str) -> Result<(), OssError> {
    let at =
        oss::parse_http_date(date).ok_or_else(|| OssError::denied("Date header is invalid."))?;
    if (OffsetDateTime::now_utc() - at).unsigned_abs() > MAX_SKEW {
        let message = "The difference between the request time and the current time is too large.";
        return Err(OssError::new(403, "RequestTimeTooSkewed", message));
    }
    Ok(())
}

fn check_md5(sent: Option<&str>, body: &[u8]) -> Result<(), OssError> {
    match sent {
        Some(sent) if sent != oss::content_md5(body) => {
            let message = "The Content-MD5 you specified is not valid.";
            Err(OssError::new(400, "InvalidDigest", message))
        }
        _ => Ok(()),
    }
}

fn md5_hex(body: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(body)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

fn error_response(error: &OssError, request_id: &str, host_id: &str) -> Response {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
    for (name, value) in [
        ("Code", error.code),
        ("Message", &error.message),
        ("RequestId", request_id),
        ("HostId", host_id),
    ] {
        xml.push_str(&format!("<{name}>"));
        escape_into(&mut xml, value);
        xml.push_str(&format!("</{name}>"));
    }
    xml.push_str("</Error>");
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = (status, xml).into_response();
    insert(
        response.headers_mut(),
        header::CONTENT_TYPE.as_str(),
        "application/xml",
    );
    insert(response.headers_mut(), "x-oss-request-id", request_id);
    response
}

fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        headers.insert(name, value);
    }
}

/// Serves a stored object, for the picture URLs of GetMaterials.
pub fn get_object(shared: &Shared, key: &str) -> Response {
    let object = shared.core().bucket.get(key).cloned();
    match object {
        Some(object) => {
            let mut response = object.bytes.into_response();
            insert(
                response.headers_mut(),
                header::CONTENT_TYPE.as_str(),
                &object.content_type,
            );
            response
        }
        None => {
            let error = OssError::new(404, "NoSuchKey", "The specified key does not exist.");
            error_response(&error, &request_id(), &shared.host_id)
        }
    }
}
