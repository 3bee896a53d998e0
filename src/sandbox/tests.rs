//! Router tests without a socket: each gateway check and each action error, driven with
//! `oneshot` on the axum router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use time::OffsetDateTime;
use tower::ServiceExt as _;

use crate::cloudauth::client::timestamp;
use crate::cloudauth::signature::{self, EncodedParams, Method};

use super::config::{
    AccessKey, KeyState, SandboxConfig, TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET,
};
use super::faults::Faults;
use super::server;
use super::state::Shared;

fn app(config: SandboxConfig) -> (Router, Arc<Shared>) {
    let base = "http://127.0.0.1:9".to_string();
    let shared = Arc::new(Shared::new(config, base.clone(), base));
    (server::router(Arc::clone(&shared)), shared)
}

fn config_with_keys() -> SandboxConfig {
    let mut config = SandboxConfig::default();
    for (id, state) in [
        ("inactive", KeyState::Inactive),
        ("no-permission", KeyState::NoPermission),
        ("ram-denied", KeyState::RamDenied),
    ] {
        config.access_keys.push(AccessKey {
            id: id.to_string(),
            secret: TEST_ACCESS_KEY_SECRET.to_string(),
            state,
        });
    }
    config
}

/// One RPC request to build: common parameters can be replaced or removed.
struct Call<'a> {
    method: &'a str,
    action: &'a str,
    query: Vec<(&'a str, Option<String>)>,
    body: Vec<(&'a str, String)>,
    secret: &'a str,
}

impl<'a> Call<'a> {
    fn new(method: &'a str, action: &'a str) -> Self {
        Call {
            method,
            action,
            query: Vec::new(),
            body: Vec::new(),
            secret: TEST_ACCESS_KEY_SECRET,
        }
    }

    fn query(mut self, name: &'a str, value: Option<&str>) -> Self {
        self.query.push((name, value.map(str::to_string)));
        self
    }

    fn body(mut self, name: &'a str, value: &str) -> Self {
        self.body.push((name, value.to_string()));
        self
    }

    fn ticket(self, biz: &str, ticket: &str) -> Self {
        self.query("Biz", Some(biz)).query("TicketId", Some(ticket))
    }

    fn build(self) -> Request<Body> {
        let now = timestamp(OffsetDateTime::now_utc());
        let nonce = format!("{:032x}", rand::random::<u128>());
        let mut params: Vec<(&str, Option<String>)> = vec![
            ("AccessKeyId", Some(TEST_ACCESS_KEY_ID.to_string())),
            ("Action", Some(self.action.to_string())),
            ("Format", Some("JSON".to_string())),
            ("SignatureMethod", Some("HMAC-SHA1".to_string())),
            ("SignatureNonce", Some(nonce)),
            ("SignatureVersion", Some("1.0".to_string())),
            ("Timestamp", Some(now)),
            ("Version", Some("2018-09-16".to_string())),
        ];
        for (name, value) in self.query {
            params.retain(|(n, _)| *n != name);
            params.push((name, value));
        }
        let mut query = EncodedParams::default();
        for (name, value) in &params {
            if let Some(value) = value {
                query.push(name, value);
            }
        }
        let mut body = EncodedParams::default();
        for (name, value) in &self.body {
            body.push(name, value);
        }
        let method = if self.method == "GET" {
            Method::Get
        } else {
            Method::Post
        };
        if !params.iter().any(|(n, _)| *n == "Signature") {
            query.push(
                "Signature",
                &signature::sign(self.secret, method, &query, &body),
            );
        }
        Request::builder()
            .method(self.method)
            .uri(format!("/?{}", query.as_str()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Body::from(body.as_str().to_string()))
            .unwrap()
    }
}

async fn send(router: &Router, request: Request<Body>) -> (u16, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn json(router: &Router, call: Call<'_>) -> (u16, Value) {
    let (status, text) = send(router, call.build()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn code(router: &Router, call: Call<'_>) -> (u16, String) {
    let (status, body) = json(router, call).await;
    (
        status,
        body["Code"].as_str().unwrap_or_default().to_string(),
    )
}

fn expect(actual: (u16, String), status: u16, code: &str) {
    assert_eq!(actual, (status, code.to_string()));
}

#[tokio::test]
async fn gateway_checks_answer_their_documented_codes() {
    let (router, _) = app(config_with_keys());
    let status = || Call::new("GET", "GetStatus").ticket("RPBasic", "t");
    expect(
        code(&router, Call::new("PUT", "GetStatus")).await,
        400,
        "UnsupportedHTTPMethod",
    );
    expect(
        code(&router, status().query("Signature", None)).await,
        400,
        "IncompleteSignature",
    );
    expect(
        code(&router, status().query("SignatureNonce", None)).await,
        400,
        "MissingSignatureNonce",
    );
    let md5 = status().query("SignatureMethod", Some("HMAC-MD5"));
    expect(code(&router, md5).await, 400, "InvalidSignatureMethod");
    expect(
        code(&router, status().query("Timestamp", None)).await,
        400,
        "IllegalTimestamp",
    );
    let bad_time = status().query("Timestamp", Some("2019/06/01 08:00"));
    expect(
        code(&router, bad_time).await,
        400,
        "InvalidTimeStamp.Format",
    );
    let old = status().query("Timestamp", Some("2019-06-01T08:00:00Z"));
    expect(code(&router, old).await, 400, "InvalidTimeStamp.Expired");
    let unknown = status().query("AccessKeyId", Some("nobody"));
    expect(
        code(&router, unknown).await,
        404,
        "InvalidAccessKeyId.NotFound",
    );
    let inactive = status().query("AccessKeyId", Some("inactive"));
    expect(
        code(&router, inactive).await,
        400,
        "InvalidAccessKeyId.Inactive",
    );
    let lower = Call::new("GET", "getstatus").ticket("RPBasic", "t");
    expect(code(&router, lower).await, 404, "InvalidApi.NotFound");
    let version = status().query("Version", Some("2019-03-07"));
    expect(code(&router, version).await, 404, "InvalidApi.NotFound");
    let ram = status().query("AccessKeyId", Some("ram-denied"));
    expect(code(&router, ram).await, 403, "Forbidden.RAM");
}

#[tokio::test]
async fn a_bad_signature_quotes_the_string_to_sign_after_one_colon() {
    let (router, shared) = app(SandboxConfig::default());
    let mut call = Call::new("POST", "GetStatus").ticket("RPBasic", "t");
    call.secret = "wrong";
    let (status, body) = json(&router, call.body("Extra", "a b+c")).await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("SignatureDoesNotMatch"))
    );
    let message = body["Message"].as_str().unwrap();
    let (_, quoted) = message.split_once(':').unwrap();
    assert!(quoted.starts_with("POST&%2F&AccessKeyId"), "{quoted}");
    assert!(quoted.contains("Extra%3Da%2520b%252Bc"), "{quoted}");
    assert!(body["Recommend"].as_str().is_some());
    assert_eq!(shared.recorder().snapshot().signature_failures, 1);
}

#[tokio::test]
async fn a_reused_nonce_is_refused() {
    let (router, _) = app(SandboxConfig::default());
    let call = || {
        Call::new("GET", "GetStatus")
            .ticket("RPBasic", "t")
            .query("SignatureNonce", Some("same"))
    };
    expect(code(&router, call()).await, 200, "1");
    expect(code(&router, call()).await, 400, "SignatureNonceUsed");
}

#[tokio::test]
async fn answers_default_to_xml_and_refuse_unknown_formats() {
    let (router, _) = app(SandboxConfig::default());
    let xml = Call::new("GET", "GetStatus")
        .ticket("RPBasic", "t")
        .query("Format", None);
    let (status, text) = send(&router, xml.build()).await;
    assert_eq!(status, 200);
    assert!(text.contains("<GetStatusResponse>"), "{text}");
    assert!(text.contains("<StatusCode>-1</StatusCode>"), "{text}");

    let yaml = Call::new("GET", "GetStatus")
        .ticket("RPBasic", "t")
        .query("Format", Some("YAML"));
    let (status, text) = send(&router, yaml.build()).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("<Error>") && text.contains("InvalidParameter.Format"),
        "{text}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let config = SandboxConfig {
        max_body_bytes: 1000,
        ..SandboxConfig::default()
    };
    let (router, _) = app(config);
    let call = Call::new("POST", "SubmitMaterials").body("VerifyToken", &"x".repeat(2000));
    expect(code(&router, call).await, 413, "RequestEntityTooLarge");
}

#[tokio::test]
async fn ticket_arguments_are_checked() {
    let (router, _) = app(config_with_keys());
    let token = |biz: &str, ticket: Option<&str>| {
        Call::new("GET", "GetVerifyToken")
            .query("Biz", Some(biz))
            .query("TicketId", ticket)
    };
    expect(
        code(&router, token("RPBasic", None)).await,
        400,
        "MissingTicketId",
    );
    expect(
        code(&router, token("RPBasic", Some(" "))).await,
        403,
        "InvalidParam.ParamMissing",
    );
    expect(
        code(&router, token("Nope", Some("t"))).await,
        403,
        "Error.NoPermissionAccess",
    );
    let denied = token("RPBasic", Some("t")).query("AccessKeyId", Some("no-permission"));
    expect(code(&router, denied).await, 403, "Error.NoPermissionAccess");
}

/// A VerifyToken for `ticket`, issued through the router.
async fn issue(router: &Router, ticket: &str) -> String {
    let (_, body) = json(
        router,
        Call::new("GET", "GetVerifyToken").ticket("RPBasic", ticket),
    )
    .await;
    body["Data"]["VerifyToken"]["Token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn png() -> String {
    let picture = image::RgbImage::from_fn(16, 16, |x, _| image::Rgb([(x * 15) as u8, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
    STANDARD.encode(out.into_inner())
}

fn submission<'a>(method: &'a str, token: &str, face: &str) -> Call<'a> {
    Call::new(method, "SubmitMaterials")
        .body("VerifyToken", token)
        .body("Material.1.MaterialType", "Name")
        .body("Material.1.Value", "张三")
        .body("Material.2.MaterialType", "IdentificationNumber")
        .body("Material.2.Value", "11010519491231002X")
        .body("Material.3.MaterialType", "FacePic")
        .body("Material.3.Value", face)
}

#[tokio::test]
async fn submission_errors_follow_the_reference_table() {
    let (router, _) = app(SandboxConfig::default());
    let token = issue(&router, "t").await;
    let face = format!("base64://{}", png());
    let submit = |body: Vec<(&'static str, &str)>| {
        body.into_iter()
            .fold(Call::new("POST", "SubmitMaterials"), |call, (n, v)| {
                call.body(n, v)
            })
    };

    expect(
        code(&router, submit(vec![("VerifyToken", "")])).await,
        403,
        "InvalidParam.ParamMissing",
    );
    let unknown = submit(vec![("VerifyToken", "feedface")]);
    expect(
        code(&router, unknown).await,
        400,
        "InvalidParam.VerifyTokenExpired",
    );
    expect(
        code(&router, submit(vec![("VerifyToken", &token)])).await,
        400,
        "InvalidParam.MaterialsEmpty",
    );
    let unpaired = submit(vec![
        ("VerifyToken", &token),
        ("Material.1.MaterialType", "Name"),
    ]);
    expect(
        code(&router, unpaired).await,
        403,
        "InvalidParam.MaterialsNotValid",
    );
    let name_only = submit(vec![
        ("VerifyToken", &token),
        ("Material.1.MaterialType", "Name"),
        ("Material.1.Value", "张三"),
    ]);
    expect(
        code(&router, name_only).await,
        403,
        "Error.MaterialsInsufficient",
    );
    let upload = "Error.MaterialsUploadError";
    expect(
        code(&router, submission("GET", &token, &face)).await,
        500,
        upload,
    );
    expect(
        code(&router, submission("POST", &token, "base64://!!!")).await,
        500,
        upload,
    );
    let text = format!("base64://{}", STANDARD.encode("not an image"));
    expect(
        code(&router, submission("POST", &token, &text)).await,
        500,
        upload,
    );
    let remote = submission("POST", &token, "http://192.0.2.1/face.jpg");
    expect(code(&router, remote).await, 500, upload);
    let local = submission("POST", &token, "/home/me/face.jpg");
    expect(
        code(&router, local).await,
        403,
        "InvalidParam.MaterialsNotValid",
    );
    expect(
        code(&router, submission("POST", &token, &face)).await,
        400,
        "Error.RealNameCheckFail",
    );
}

#[tokio::test]
async fn oversized_images_and_injected_failures_are_reachable() {
    let config = SandboxConfig {
        max_image_bytes: 50,
        ..SandboxConfig::default()
    };
    let (router, shared) = app(config);
    let token = issue(&router, "t").await;
    let face = format!("base64://{}", png());
    expect(
        code(&router, submission("POST", &token, &face)).await,
        500,
        "Error.MaterialsUploadError",
    );

    shared.set_faults(Faults {
        submit_error_share: 1.0,
        ..Faults::default()
    });
    let code_of = code(&router, submission("POST", &token, &face)).await;
    expect(code_of, 500, "Error.SubmitMaterialsError");
}

#[tokio::test]
async fn uploads_are_checked_against_the_issued_credentials() {
    let (router, _) = app(SandboxConfig::default());
    let (_, body) = json(
        &router,
        Call::new("GET", "GetVerifyToken").ticket("RPBasic", "t"),
    )
    .await;
    let sts = &body["Data"]["StsToken"];
    let field = |name: &str| sts[name].as_str().unwrap().to_string();
    let put = |key: &str, secret: &str, date: String| {
        let signed = crate::cloudauth::oss::PutObject {
            bucket: "cloudauth-sandbox",
            key,
            content_md5: None,
            content_type: Some("image/png"),
            date: &date,
            security_token: &field("Token"),
        };
        Request::builder()
            .method("PUT")
            .uri(format!("/{key}"))
            .header("Host", "cloudauth-sandbox.127.0.0.1:9")
            .header("Date", &date)
            .header("Content-Type", "image/png")
            .header("x-oss-security-token", field("Token"))
            .header(
                "Authorization",
                signed.authorization(&field("AccessKeyId"), secret),
            )
            .body(Body::from("png"))
            .unwrap()
    };
    let now = crate::cloudauth::oss::http_date(OffsetDateTime::now_utc());
    let secret = field("AccessKeySecret");
    let key = format!("{}face.png", field("Path"));

    let (status, _) = send(&router, put(&key, &secret, now.clone())).await;
    assert_eq!(status, 200);
    let (status, text) = send(&router, put(&key, "wrong", now.clone())).await;
    assert!(
        status == 403 && text.contains("SignatureDoesNotMatch"),
        "{text}"
    );
    let (status, text) = send(&router, put("elsewhere/face.png", &secret, now)).await;
    assert!(status == 403 && text.contains("AccessDenied"), "{text}");
    let old = "Sat, 01 Jun 2019 08:00:00 GMT".to_string();
    let (status, text) = send(&router, put(&key, &secret, old)).await;
    assert!(
        status == 403 && text.contains("RequestTimeTooSkewed"),
        "{text}"
    );
}
