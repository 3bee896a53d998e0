//! A blocking client for the four Cloudauth actions.
//!
//! Every call is signed afresh, with a new nonce and timestamp, so a caller that retries
//! simply calls again. The client itself never retries: what is safe to repeat depends on
//! the action and on how the call failed, and that is the engine's decision.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::blocking::Client as HttpClient;
use reqwest::header::{CONTENT_TYPE, HOST, HeaderMap};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::macros::format_description;

use super::api::{
    API_VERSION, Action, Envelope, ErrorBody, MaterialType, MaterialsData, StsToken, SubmitData,
    VerifyStatus, VerifyTokenData,
};
use super::credentials::Credentials;
use super::error::{CallError, ConfigError};
use super::oss;
use super::percent;
use super::signature::{self, EncodedParams, Method};

/// How long to wait, by phase and by action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening a connection. Default 5 s, as in the official SDKs.
    pub connect: Duration,
    /// A whole call other than SubmitMaterials. Default 10 s, as in the official SDKs.
    pub read: Duration,
    /// A whole SubmitMaterials call, during which the service fetches and compares the
    /// images. Default 30 s.
    pub submit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            submit: Duration::from_secs(30),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// The service's id for the request.
    pub request_id: String,
    /// The action's payload.
    pub data: T,
    /// How long the call took.
    pub latency: Duration,
}

/// The form body of one SubmitMaterials call, encoded once and shared by every attempt.
#[derive(Debug, Clone)]
pub struct SubmitBody {
    params: Arc<EncodedParams>,
    materials: usize,
}

impl SubmitBody {
    /// The size of the body on the wire.
    pub fn len(&self) -> usize {
        self.params.as_str().len()
    }

    /// Whether the body carries no material.
    pub fn is_empty(&self) -> bool {
        self.materials == 0
    }

    /// How many materials the body carries.
    pub fn materials(&self) -> usize {
        self.materials
    }

    /// Gives up the body's text for its allocation to be used again, unless a request
    /// still holds it.
    pub fn into_text(self) -> Option<String> {
        Arc::try_unwrap(self.params)
            .ok()
            .map(EncodedParams::into_text)
    }
}

/// Builds a [`SubmitBody`], numbering materials from 1 in the order they are added.
#[derive(Debug)]
pub struct SubmitBodyBuilder {
    params: EncodedParams,
    count: usize,
}

impl SubmitBodyBuilder {
    /// Starts a body for `verify_token`, with room for `capacity` bytes.
    pub fn new(verify_token: &str, capacity: usize) -> Self {
        Self::in_buffer(verify_token, String::new(), capacity)
    }

    /// Starts a body for `verify_token` in `buffer`, an allocation given back by an earlier
    /// body, with room for `capacity` bytes.
    pub fn in_buffer(verify_token: &str, buffer: String, capacity: usize) -> Self {
        let mut params = EncodedParams::in_buffer(buffer, capacity);
        params.push("VerifyToken", verify_token);
        SubmitBodyBuilder { params, count: 0 }
    }

    /// Adds a material whose value is plain text.
    pub fn text(&mut self, kind: MaterialType, value: &str) {
        self.with(kind, |out| percent::encode_into(out, value));
    }

    /// Adds a material whose value `write` appends already percent-encoded, such as a
    /// base64 image encoded straight into the body.
    pub fn with(&mut self, kind: MaterialType, write: impl FnOnce(&mut String)) {
        self.count += 1;
        let n = self.count;
        self.params
            .push(&format!("Material.{n}.MaterialType"), kind.as_str());
        self.params.push_with(&format!("Material.{n}.Value"), write);
    }

    /// The encoded size so far.
    pub fn len(&self) -> usize {
        self.params.as_str().len()
    }

    /// Whether nothing but the token was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Finishes the body.
    pub fn finish(self) -> SubmitBody {
        SubmitBody {
            params: Arc::new(self.params),
            materials: self.count,
        }
    }
}

/// Lets the HTTP stack send a shared body without copying it.
struct SharedText(Arc<EncodedParams>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_str().as_bytes()
    }
}

/// A signed, blocking Cloudauth client. Cheap to share between threads by reference.
#[derive(Debug)]
pub struct Client {
    http: HttpClient,
    endpoint: Url,
    region: String,
    credentials: Credentials,
    timeouts: Timeouts,
}

impl Client {
    /// A client for `endpoint`, which must be https, or http on a loopback address.
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Credentials,
        timeouts: Timeouts,
    ) -> Result<Self, ConfigError> {
        let endpoint = checked_endpoint(endpoint)?;
        install_crypto_provider();
        let http = HttpClient::builder()
            .connect_timeout(timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cloudauth-batch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Client {
            http,
            endpoint,
            region: region.to_string(),
            credentials,
            timeouts,
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Starts a verification of `ticket_id` in scenario `biz`.
    ///
    /// `binding` (JSON) goes in the form body, which makes the call a POST.
    pub fn get_verify_token(
        &self,
        biz: &str,
        ticket_id: &str,
        binding: Option<&str>,
    ) -> Result<Reply<VerifyTokenData>, CallError> {
        let mut body = EncodedParams::default();
        if let Some(binding) = binding {
            body.push("Binding", binding);
        }
        let method = if body.is_empty() {
            Method::Get
        } else {
            Method::Post
        };
        let args = [("Biz", biz), ("TicketId", ticket_id)];
        self.call(
            Action::GetVerifyToken,
            method,
            &args,
            Arc::new(body),
            self.timeouts.read,
        )
    }

    /// Submits materials for review. Not idempotent: see [`CallError::Unanswered`].
    pub fn submit_materials(&self, body: &SubmitBody) -> Result<Reply<VerifyStatus>, CallError> {
        let reply: Reply<SubmitData> = self.call(
            Action::SubmitMaterials,
            Method::Post,
            &[],
            Arc::clone(&body.params),
            self.timeouts.submit,
        )?;
        Ok(Reply {
            request_id: reply.request_id,
            data: reply.data.verify_status,
            latency: reply.latency,
        })
    }

    /// Reads the status of a ticket. Safe to repeat.
    pub fn get_status(&self, biz: &str, ticket_id: &str) -> Result<Reply<VerifyStatus>, CallError> {
        let args = [("Biz", biz), ("TicketId", ticket_id)];
        let empty = Arc::new(EncodedParams::default());
        self.call(
            Action::GetStatus,
            Method::Get,
            &args,
            empty,
            self.timeouts.read,
        )
    }

    /// Reads back what was submitted for a ticket. Safe to repeat.
    pub fn get_materials(
        &self,
        biz: &str,
        ticket_id: &str,
    ) -> Result<Reply<MaterialsData>, CallError> {
        let args = [("Biz", biz), ("TicketId", ticket_id)];
        let empty = Arc::new(EncodedParams::default());
        self.call(
            Action::GetMaterials,
            Method::Get,
            &args,
            empty,
            self.timeouts.read,
        )
    }

    /// Uploads an image under the StsToken's path and returns its `oss://bucket:key` address.
    pub fn put_object(
        &self,
        sts: &StsToken,
        file_name: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, CallError> {
        let key = oss::object_key(&sts.path, file_name);
        let target = OssTarget::new(&sts.end_point, &sts.bucket_name, &key)?;
        let date = oss::http_date(OffsetDateTime::now_utc());
        let md5 = oss::content_md5(&bytes);
        let signed = oss::PutObject {
            bucket: &sts.bucket_name,
            key: &key,
            content_md5: Some(&md5),
            content_type: Some(content_type),
            date: &date,
            security_token: &sts.token,
        };
        let authorization = signed.authorization(&sts.access_key_id, &sts.access_key_secret);

        let started = Instant::now();
        let response = self
            .http
            .put(target.url)
            .header(HOST, target.host)
            .header("Date", &date)
            .header("Content-MD5", &md5)
            .header(CONTENT_TYPE, content_type)
            .header("x-oss-security-token", &sts.token)
            .header("Authorization", authorization)
            .timeout(self.timeouts.submit)
            .body(bytes)
            .send()
            .map_err(|e| transport_error(Action::SubmitMaterials, &e))?;
        let status = response.status();
        if status.is_success() {
            tracing::debug!(bucket = %sts.bucket_name, latency_ms = started.elapsed().as_millis() as u64, "PutObject done");
            return Ok(oss::material_address(&sts.bucket_name, &key));
        }
        let text = response.text().unwrap_or_default();
        Err(CallError::Api {
            action: Action::SubmitMaterials,
            status: status.as_u16(),
            code: format!("OSS.{}", xml_field(&text, "Code").unwrap_or("Unknown")),
            message: xml_field(&text, "Message")
                .unwrap_or("PutObject failed")
                .to_string(),
            request_id: xml_field(&text, "RequestId")
                .unwrap_or_default()
                .to_string(),
            retry_after: None,
        })
    }

    fn call<T: DeserializeOwned>(
        &self,
        action: Action,
        method: Method,
        args: &[(&str, &str)],
        body: Arc<EncodedParams>,
        timeout: Duration,
    ) -> Result<Reply<T>, CallError> {
        let query = self.signed_query(action, method, args, &body);
        let url = format!("{}?{}", self.endpoint, query.as_str());
        let request = match method {
            Method::Get => self.http.get(url),
            Method::Post => self
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded"),
        };
        let request = request
            .header("x-acs-action", action.as_str())
            .header("x-acs-version", API_VERSION)
            .timeout(timeout);
        let request = if body.is_empty() {
            request
        } else {
            request.body(reqwest::blocking::Body::from(bytes::Bytes::from_owner(
                SharedText(body),
            )))
        };

        let started = Instant::now();
        let response = request.send().map_err(|e| transport_error(action, &e))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let text = response.text().map_err(|e| transport_error(action, &e))?;
        let latency = started.elapsed();
        decode(action, status, retry_after, &text).map(|(request_id, data)| Reply {
            request_id,
            data,
            latency,
        })
    }

    /// The common parameters, the action's query arguments and the signature.
    fn signed_query(
        &self,
        action: Action,
        method: Method,
        args: &[(&str, &str)],
        body: &EncodedParams,
    ) -> EncodedParams {
        let mut query = EncodedParams::with_capacity(512);
        query.push("AccessKeyId", &self.credentials.access_key_id);
        query.push("Action", action.as_str());
        query.push("Format", "JSON");
        query.push("RegionId", &self.region);
        if let Some(token) = self.credentials.security_token() {
            query.push("SecurityToken", token);
        }
        query.push("SignatureMethod", "HMAC-SHA1");
        query.push("SignatureNonce", &new_nonce());
        // Sent blank and signed, as the official SDKs do.
        query.push("SignatureType", "");
        query.push("SignatureVersion", "1.0");
        query.push("Timestamp", &timestamp(OffsetDateTime::now_utc()));
        query.push("Version", API_VERSION);
        for (name, value) in args {
            query.push(name, value);
        }
        let signature = signature::sign(self.credentials.secret(), method, &query, body);
        query.push("Signature", &signature);
        query
    }
}

/// Turns a response into its payload or a typed error.
fn decode<T: DeserializeOwned>(
    action: Action,
    status: u16,
    retry_after: Option<Duration>,
    text: &str,
) -> Result<(String, T), CallError> {
    let undecodable = |reason: String| CallError::Undecodable {
        action,
        status,
        reason,
        snippet: text.chars().take(120).collect(),
    };
    if (200..300).contains(&status) {
        // A 200 that says `Success: false` is an error all the same.
        if let Ok(error) = serde_json::from_str::<ErrorBody>(text)
            && error.success == Some(false)
        {
            return Err(api_error(action, status, retry_after, error));
        }
        let envelope: Envelope<T> =
            serde_json::from_str(text).map_err(|e| undecodable(e.to_string()))?;
        return Ok((envelope.request_id, envelope.data));
    }
    let error: ErrorBody = serde_json::from_str(text).map_err(|e| undecodable(e.to_string()))?;
    if error.code.is_empty() {
        return Err(undecodable("error response without a Code".to_string()));
    }
    Err(api_error(action, status, retry_after, error))
}

fn api_error(
    action: Action,
    status: u16,
    retry_after: Option<Duration>,
    error: ErrorBody,
) -> CallError {
    CallError::Api {
        action,
        status,
        code: error.code,
        message: without_string_to_sign(error.message),
        request_id: error.request_id,
        retry_after,
    }
}

/// The gateway's `SignatureDoesNotMatch` message quotes the whole StringToSign after a
/// single `:`, and for SubmitMaterials that holds every material: names, ID numbers and
/// images. It is cut off, so that it can reach no log line, message or report.
fn without_string_to_sign(message: String) -> String {
    match message.split_once(':') {
        Some((sentence, _)) if message.contains("string to sign") => {
            format!("{}: <server's StringToSign left out>", sentence.trim_end())
        }
        _ => message,
    }
}

/// Sorts a transport failure by whether the request can have reached the server.
fn transport_error(action: Action, error: &reqwest::Error) -> CallError {
    let reason = error_chain(error);
    if error.is_connect() || error.is_builder() {
        CallError::NotSent { action, reason }
    } else {
        CallError::Unanswered {
            action,
            timed_out: error.is_timeout(),
            reason,
        }
    }
}

/// The error and its causes on one line. The URL is left out: it is long, and the
/// request's parameters belong in debug logs, not in messages.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `x-acs-retry-after`, in milliseconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("x-acs-retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// Checks the endpoint's scheme: https anywhere, http only on this machine.
pub fn checked_endpoint(endpoint: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(endpoint).map_err(|e| ConfigError::BadEndpoint {
        endpoint: endpoint.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ConfigError::InsecureEndpoint {
            endpoint: endpoint.to_string(),
        }),
        other => Err(ConfigError::BadEndpoint {
            endpoint: endpoint.to_string(),
            reason: format!("scheme {other:?} is neither https nor http"),
        }),
    }
}

/// Whether a URL's host is a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Where a PutObject goes: the bucket's virtual host, reached directly for real OSS and
/// through the endpoint's own address for a loopback emulator.
struct OssTarget {
    url: Url,
    host: String,
}

impl OssTarget {
    fn new(end_point: &str, bucket: &str, key: &str) -> Result<Self, CallError> {
        let not_sent = |reason: String| CallError::NotSent {
            action: Action::SubmitMaterials,
            reason,
        };
        let with_scheme = if end_point.contains("://") {
            end_point.to_string()
        } else {
            format!("https://{end_point}")
        };
        let base = checked_endpoint(&with_scheme).map_err(|e| not_sent(e.to_string()))?;
        let endpoint_host = base.host_str().unwrap_or_default();
        let authority = match base.port() {
            Some(port) => format!("{endpoint_host}:{port}"),
            None => endpoint_host.to_string(),
        };
        let host = format!("{bucket}.{authority}");
        let connect_to = if is_loopback(&base) {
            authority
        } else {
            host.clone()
        };
        let path: Vec<String> = key.split('/').map(percent::encode).collect();
        let url = format!("{}://{connect_to}/{}", base.scheme(), path.join("/"));
        let url = Url::parse(&url).map_err(|e| not_sent(e.to_string()))?;
        Ok(OssTarget { url, host })
    }
}

/// The text of `<name>…</name>` in an OSS XML error.
fn xml_field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

/// A fresh SignatureNonce: 32 random hex digits, as the Python SDK sends.
fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `YYYY-MM-DDThh:mm:ssZ` in UTC.
pub fn timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// rustls needs one process-wide crypto provider; ring keeps the build free of cmake.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An error means another part of the process installed one first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_anywhere_and_http_only_on_loopback() {
        assert!(checked_endpoint("https://cloudauth.aliyuncs.com").is_ok());
        assert!(checked_endpoint("http://127.0.0.1:8080").is_ok());
        assert!(checked_endpoint("http://127.5.6.7:1").is_ok());
        assert!(checked_endpoint("http://[::1]:8080").is_ok());
        assert!(checked_endpoint("http://localhost:8080").is_ok());
        assert!(matches!(
            checked_endpoint("http://cloudauth.aliyuncs.com"),
            Err(ConfigError::InsecureEndpoint { .. })
        ));
        assert!(matches!(
            checked_endpoint("http://10.0.0.1"),
            Err(ConfigError::InsecureEndpoint { .. })
        ));
        assert!(checked_endpoint("ftp://x").is_err());
        assert!(checked_endpoint("not a url").is_err());
    }

    #[test]
    fn timestamps_have_second_precision_and_a_literal_z() {
        let at = time::macros::datetime!(2019-06-01 08:00:00.75 UTC);
        assert_eq!(timestamp(at), "2019-06-01T08:00:00Z");
    }

    #[test]
    fn nonces_are_fresh() {
        let a = new_nonce();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_nonce());
    }

    #[test]
    fn submit_bodies_number_materials_from_one() {
        let mut body = SubmitBodyBuilder::new("tok", 256);
        body.text(MaterialType::Name, "张三");
        body.with(MaterialType::FacePic, |out| {
            out.push_str("base64%3A%2F%2FAA%3D%3D")
        });
        let body = body.finish();
        assert_eq!(body.materials(), 2);
        assert_eq!(
            body.params.as_str(),
            "VerifyToken=tok&Material.1.MaterialType=Name&Material.1.Value=%E5%BC%A0%E4%B8%89\
             &Material.2.MaterialType=FacePic&Material.2.Value=base64%3A%2F%2FAA%3D%3D"
        );
    }

    #[test]
    fn decodes_success_errors_and_garbage() {
        let ok: Result<(String, VerifyStatus), _> = decode(
            Action::GetStatus,
            200,
            None,
            r#"{"RequestId":"R","Success":true,"Code":"1","Data":{"StatusCode":-1}}"#,
        );
        assert_eq!(ok.unwrap().1.status_code, -1);

        let err = decode::<VerifyStatus>(
            Action::GetStatus,
            400,
            Some(Duration::from_millis(250)),
            r#"{"RequestId":"R","Code":"Throttling.User","Message":"slow down"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), Some("Throttling.User"));
        assert!(
            matches!(err, CallError::Api { retry_after: Some(d), .. } if d == Duration::from_millis(250))
        );

        let soft = decode::<VerifyStatus>(
            Action::GetStatus,
            200,
            None,
            r#"{"RequestId":"R","Success":false,"Code":"Error.InternalError","Message":"x"}"#,
        );
        assert_eq!(soft.unwrap_err().code(), Some("Error.InternalError"));

        let garbage =
            decode::<VerifyStatus>(Action::GetStatus, 502, None, "<html>bad gateway</html>");
        assert!(matches!(
            garbage,
            Err(CallError::Undecodable { status: 502, .. })
        ));
    }

    #[test]
    fn the_quoted_string_to_sign_is_left_out_of_messages() {
        let message = "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&Material.1.Value%3D%25E5%25BC%25A0";
        let kept = without_string_to_sign(message.to_string());
        assert!(!kept.contains("Material"), "{kept}");
        assert!(
            kept.starts_with("Specified signature is not matched"),
            "{kept}"
        );
        assert_eq!(without_string_to_sign("plain: text".into()), "plain: text");
    }

    #[test]
    fn oss_targets_use_the_virtual_host() {
        let real = OssTarget::new("oss-cn-hangzhou.aliyuncs.com", "b", "p/a b.jpg").unwrap();
        assert_eq!(
            real.url.as_str(),
            "https://b.oss-cn-hangzhou.aliyuncs.com/p/a%20b.jpg"
        );
        assert_eq!(real.host, "b.oss-cn-hangzhou.aliyuncs.com");
        let local = OssTarget::new("http://127.0.0.1:9000", "b", "p/k.jpg").unwrap();
        assert_eq!(local.url.as_str(), "http://127.0.0.1:9000/p/k.jpg");
        assert_eq!(local.host, "b.127.0.0.1:9000");
        assert!(OssTarget::new("http://example.com", "b", "k").is_err());
    }
}
