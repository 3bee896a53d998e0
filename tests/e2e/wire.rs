//! The blocking client against an in-process sandbox on 127.0.0.1:0, over real sockets.

use std::io::Cursor;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cloudauth_batch::checks::idnumber;
use cloudauth_batch::cloudauth::api::VerifyTokenData;
use cloudauth_batch::cloudauth::signature::{self, EncodedParams, Method};
use cloudauth_batch::cloudauth::{
    Action, CallError, Client, Credentials, MaterialType, SubmitBodyBuilder, Timeouts,
};
use cloudauth_batch::sandbox::authority::{FaceHash, Record};
use cloudauth_batch::sandbox::{
    Faults, STRING_TO_SIGN_MARKER, Sandbox, SandboxConfig, TEST_ACCESS_KEY_ID,
    TEST_ACCESS_KEY_SECRET, goes_to_review,
};
use image::{ImageFormat, Rgb, RgbImage};

const NAME: &str = "张三";

/// A valid ID number whose sequence part is `n`.
fn id_number(n: u32) -> String {
    idnumber::complete(&format!("11010519900307{:03}", n % 1000)).unwrap()
}

/// A striped picture; different `seed`s give structurally different pictures.
fn picture(seed: u32) -> RgbImage {
    RgbImage::from_fn(48, 40, |x, y| {
        let on = (x / (seed % 5 + 2) + y / (seed % 7 + 3)).is_multiple_of(2);
        if on {
            Rgb([230, 200, 180])
        } else {
            Rgb([30, 40, 60])
        }
    })
}

fn encode(picture: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG of the registered face whose base64 text holds `+`, `/` and `=`, so that a
/// form-encoding slip would corrupt it.
fn face_png() -> (Vec<u8>, String) {
    for extra in 0..64u32 {
        let mut face = picture(1);
        face.put_pixel(0, 0, Rgb([extra as u8, 7, 9]));
        let bytes = encode(&face, ImageFormat::Png);
        let text = STANDARD.encode(&bytes);
        if text.contains('+') && text.contains('/') && text.ends_with('=') {
            return (bytes, text);
        }
    }
    panic!("no picture had +, / and = in its base64 text");
}

/// A sandbox whose authority knows `NAME` under `id_number(1)` with the face of `picture(1)`.
fn config() -> SandboxConfig {
    let mut config = SandboxConfig::default();
    let portrait = FaceHash::of_image(&encode(&picture(1), ImageFormat::Png)).unwrap();
    let record = Record {
        name: NAME.to_string(),
        portrait,
    };
    config.authority.insert(id_number(1), record);
    config
}

fn client_with(sandbox: &Sandbox, secret: &str) -> Client {
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        read: Duration::from_secs(5),
        submit: Duration::from_secs(5),
    };
    let credentials = Credentials::new(TEST_ACCESS_KEY_ID, secret);
    Client::new(&sandbox.url(), "cn-hangzhou", credentials, timeouts).unwrap()
}

fn client(sandbox: &Sandbox) -> Client {
    client_with(sandbox, TEST_ACCESS_KEY_SECRET)
}

fn token(client: &Client, ticket: &str) -> VerifyTokenData {
    client
        .get_verify_token("RPBasic", ticket, None)
        .unwrap()
        .data
}

fn submit(client: &Client, token: &str, name: &str, face: &str) -> Result<i32, CallError> {
    let mut body = SubmitBodyBuilder::new(token, 4096);
    body.text(MaterialType::Name, name);
    body.text(MaterialType::IdentificationNumber, &id_number(1));
    body.text(MaterialType::FacePic, face);
    let reply = client.submit_materials(&body.finish())?;
    Ok(reply.data.status_code)
}

/// The StatusCode GetStatus reports for a ticket of RPBasic.
fn status_of(client: &Client, ticket: &str) -> i32 {
    client
        .get_status("RPBasic", ticket)
        .unwrap()
        .data
        .status_code
}

fn base64_face() -> String {
    format!("base64://{}", face_png().1)
}

#[test]
fn a_verification_runs_from_token_to_materials() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);

    let issued = token(&client, "t-flow");
    assert_eq!(issued.verify_token.token.len(), 32);
    assert_eq!(issued.verify_token.duration_seconds, 1800);
    let sts = issued.sts_token.unwrap();
    assert_eq!(sts.end_point, sandbox.url());
    assert!(sts.access_key_id.starts_with("STS."));

    let mut body = SubmitBodyBuilder::new(&issued.verify_token.token, 4096);
    body.text(MaterialType::Name, NAME);
    body.text(MaterialType::IdentificationNumber, &id_number(1));
    body.text(MaterialType::FacePic, &base64_face());
    let status = client.submit_materials(&body.finish()).unwrap().data;
    assert_eq!(status.status_code, 1);
    assert_eq!(status.authority_comparison_score, Some(100.0));

    let status = client.get_status("RPBasic", "t-flow").unwrap().data;
    assert_eq!(status.status_code, 1);
    let materials = client.get_materials("RPBasic", "t-flow").unwrap().data;
    assert_eq!(materials.name.as_deref(), Some(NAME));
    assert_eq!(materials.identification_number, Some(id_number(1)));
    assert_eq!(materials.sex.as_deref(), Some("m"));
    let face_url = materials.face_pic.unwrap();
    let served = reqwest::blocking::get(face_url).unwrap().bytes().unwrap();
    assert_eq!(served.as_ref(), face_png().0.as_slice());

    let stats = sandbox.stats();
    assert_eq!(stats.submissions("RPBasic", "t-flow"), 1);
    let verdict = stats.verdict("RPBasic", "t-flow").unwrap();
    assert_eq!(
        (verdict.status_code, verdict.authority_comparison_score),
        (1, Some(100.0))
    );
    assert_eq!(stats.action(Action::GetStatus).admitted, 1);
}

#[test]
fn status_is_minus_one_before_any_submission() {
    let sandbox = Sandbox::start(config()).unwrap();
    let status = client(&sandbox)
        .get_status("RPBasic", "never")
        .unwrap()
        .data;
    assert_eq!(status.status_code, -1);
    assert_eq!(status.authority_comparison_score, None);
}

#[test]
fn an_uploaded_object_can_be_submitted_by_reference() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-oss");
    let sts = issued.sts_token.unwrap();
    let jpeg = encode(&picture(1), ImageFormat::Jpeg);

    let address = client
        .put_object(&sts, "face.jpg", jpeg, "image/jpeg")
        .unwrap();
    assert_eq!(
        address,
        format!("oss://cloudauth-sandbox:sandbox/RPBasic/t-oss/face.jpg")
    );
    let status = submit(&client, &issued.verify_token.token, NAME, &address).unwrap();
    assert_eq!(status, 1);

    let missing = "oss://cloudauth-sandbox:sandbox/RPBasic/t-oss/none.jpg";
    let again = token(&client, "t-oss-2");
    let error = submit(&client, &again.verify_token.token, NAME, missing).unwrap_err();
    assert_eq!(error.code(), Some("Error.MaterialsUploadError"));
}

#[test]
fn another_face_fails_and_a_wrong_name_fails_the_real_name_check() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let other = format!(
        "base64://{}",
        STANDARD.encode(encode(&picture(3), ImageFormat::Png))
    );
    let issued = token(&client, "t-fail");
    assert_eq!(
        submit(&client, &issued.verify_token.token, NAME, &other).unwrap(),
        2
    );
    let status = client.get_status("RPBasic", "t-fail").unwrap().data;
    assert!(status.authority_comparison_score.unwrap() < 80.0);
    assert!(!status.audit_conclusions.unwrap().is_empty());

    let issued = token(&client, "t-name");
    let error = submit(&client, &issued.verify_token.token, "李四", &base64_face()).unwrap_err();
    assert_eq!(error.code(), Some("Error.RealNameCheckFail"));
    assert_eq!(error.status(), Some(400));
}

#[test]
fn a_submission_in_review_is_decided_after_the_delay() {
    let mut config = config();
    config.review_share = 0.5;
    config.review_delay = Duration::from_millis(400);
    let ticket = (0..100)
        .map(|n| format!("t-review-{n}"))
        .find(|t| goes_to_review(config.seed, 0.5, "RPBasic", t))
        .unwrap();
    let sandbox = Sandbox::start(config).unwrap();
    let client = client(&sandbox);

    let issued = token(&client, &ticket);
    assert_eq!(
        submit(&client, &issued.verify_token.token, NAME, &base64_face()).unwrap(),
        0
    );
    assert_eq!(
        client
            .get_status("RPBasic", &ticket)
            .unwrap()
            .data
            .status_code,
        0
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        client
            .get_status("RPBasic", &ticket)
            .unwrap()
            .data
            .status_code,
        1
    );
    assert!(
        sandbox
            .stats()
            .verdict("RPBasic", &ticket)
            .unwrap()
            .reviewed
    );
}

#[test]
fn a_second_submission_of_a_passed_ticket_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-dup");
    let token = issued.verify_token.token;
    assert_eq!(submit(&client, &token, NAME, &base64_face()).unwrap(), 1);
    let error = submit(&client, &token, NAME, &base64_face()).unwrap_err();
    assert_eq!(error.code(), Some("Error.DuplicatedTicketId"));
    assert_eq!(error.status(), Some(403));
    let stats = sandbox.stats();
    assert_eq!(stats.duplicate_submissions, 1);
    assert_eq!(stats.submissions("RPBasic", "t-dup"), 1);
}

#[test]
fn a_token_past_its_lifetime_is_refused() {
    let mut config = config();
    config.token_lifetime = Duration::from_secs(1);
    let sandbox = Sandbox::start(config).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-exp");
    assert_eq!(issued.verify_token.duration_seconds, 1);
    std::thread::sleep(Duration::from_millis(1100));
    let error = submit(&client, &issued.verify_token.token, NAME, &base64_face()).unwrap_err();
    assert_eq!(error.code(), Some("InvalidParam.VerifyTokenExpired"));
    assert_eq!(error.status(), Some(400));
}

#[test]
fn calls_over_the_quota_are_throttled() {
    let mut config = config();
    config.quotas.insert(Action::GetStatus, 2);
    let sandbox = Sandbox::start(config).unwrap();
    let client = client(&sandbox);
    let outcomes: Vec<_> = (0..5).map(|_| client.get_status("RPBasic", "q")).collect();
    let throttled: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(throttled.len() >= 2, "{outcomes:?}");
    for error in &throttled {
        assert_eq!(error.code(), Some("Throttling.User"));
        assert!(matches!(
            error,
            CallError::Api {
                retry_after: Some(_),
                ..
            }
        ));
    }
    let counts = sandbox.stats().action(Action::GetStatus);
    assert_eq!(counts.arrived, 5);
    assert_eq!(counts.throttled as usize, throttled.len());
    assert_eq!(counts.peak_admitted_per_second, 2);
    assert_eq!(counts.peak_arrivals_per_second, 5);
}

#[test]
fn injected_errors_come_before_any_change() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-faults");

    sandbox.set_faults(Faults {
        error_share: 1.0,
        ..Faults::default()
    });
    let error = client.get_status("RPBasic", "t-faults").unwrap_err();
    assert!(
        matches!(error.code(), Some("InternalError" | "ServiceUnavailable")),
        "{error}"
    );
    assert!(matches!(error.status(), Some(500 | 503)));

    sandbox.set_faults(Faults {
        submit_error_share: 1.0,
        ..Faults::default()
    });
    let error = submit(&client, &issued.verify_token.token, NAME, &base64_face()).unwrap_err();
    assert_eq!(error.code(), Some("Error.SubmitMaterialsError"));

    sandbox.set_faults(Faults {
        internal_error_share: 1.0,
        ..Faults::default()
    });
    let error = client.get_status("RPBasic", "t-faults").unwrap_err();
    assert_eq!(error.code(), Some("Error.InternalError"));

    sandbox.set_faults(Faults::default());
    assert_eq!(status_of(&client, "t-faults"), -1);
    assert_eq!(sandbox.stats().submissions("RPBasic", "t-faults"), 0);
}

#[test]
fn a_dropped_answer_still_commits_the_submission() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-drop");

    sandbox.set_faults(Faults {
        drop_after_commit_share: 1.0,
        ..Faults::default()
    });
    let error = submit(&client, &issued.verify_token.token, NAME, &base64_face()).unwrap_err();
    assert!(
        matches!(
            error,
            CallError::Unanswered {
                timed_out: false,
                ..
            }
        ),
        "{error}"
    );

    sandbox.set_faults(Faults::default());
    assert_eq!(status_of(&client, "t-drop"), 1);
    assert_eq!(sandbox.stats().submissions("RPBasic", "t-drop"), 1);
}

#[test]
fn slow_and_late_answers_take_their_time() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let issued = token(&client, "t-slow");

    sandbox.set_faults(Faults {
        slow_share: 1.0,
        slow_ms: 300,
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(
        submit(&client, &issued.verify_token.token, NAME, &base64_face()).unwrap(),
        1
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    sandbox.set_faults(Faults {
        latency_mean_ms: 200,
        latency_jitter_ms: 50,
        ..Faults::default()
    });
    let reply = client.get_status("RPBasic", "t-slow").unwrap();
    assert!(
        reply.latency >= Duration::from_millis(150),
        "{:?}",
        reply.latency
    );
}

#[test]
fn a_wrong_secret_gets_the_string_the_server_signed() {
    let sandbox = Sandbox::start(config()).unwrap();
    let error = client_with(&sandbox, "wrong")
        .get_status("RPBasic", "t")
        .unwrap_err();
    assert_eq!(error.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(error.status(), Some(400));
    let CallError::Api { message, .. } = &error else {
        unreachable!()
    };
    // The client keeps the quoted StringToSign out of its errors: for SubmitMaterials it
    // holds every material. The raw answer below still carries it.
    assert!(message.contains("left out"), "{message}");
    assert!(!message.contains("AccessKeyId%3D"), "{message}");

    // Signed by hand, to compare the quoted StringToSign with the one signed.
    let mut query = EncodedParams::default();
    let timestamp = cloudauth_batch::cloudauth::client::timestamp(time::OffsetDateTime::now_utc());
    for (name, value) in [
        ("AccessKeyId", TEST_ACCESS_KEY_ID),
        ("Action", "GetStatus"),
        ("Biz", "RPBasic"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "wire-test-nonce"),
        ("SignatureVersion", "1.0"),
        ("TicketId", "票 1+2"),
        ("Timestamp", &timestamp),
        ("Version", "2018-09-16"),
    ] {
        query.push(name, value);
    }
    let body = EncodedParams::default();
    let signed = signature::string_to_sign(Method::Get, &query, &body);
    query.push(
        "Signature",
        &signature::sign("wrong", Method::Get, &query, &body),
    );
    let url = format!("{}/?{}", sandbox.url(), query.as_str());
    let response = reqwest::blocking::get(url).unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: serde_json::Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    let message = error["Message"].as_str().unwrap();
    assert_eq!(message.matches(':').count(), 1, "{message}");
    assert!(message.contains(STRING_TO_SIGN_MARKER), "{message}");
    assert_eq!(message.split_once(':').unwrap().1, signed);
    assert_eq!(sandbox.stats().signature_failures, 2);
}

#[test]
fn stats_and_faults_are_reachable_over_http() {
    let sandbox = Sandbox::start(config()).unwrap();
    let http = reqwest::blocking::Client::new();
    let faults = Faults {
        error_share: 1.0,
        ..Faults::default()
    };
    let posted = http
        .post(format!("{}/_sandbox/faults", sandbox.url()))
        .header("Content-Type", "application/json")
        .body(serde_json::to_string(&faults).unwrap())
        .send()
        .unwrap();
    assert!(posted.status().is_success());
    assert!(client(&sandbox).get_status("RPBasic", "t").is_err());

    let text = http
        .get(format!("{}/_sandbox/stats", sandbox.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let stats: cloudauth_batch::sandbox::Stats = serde_json::from_str(&text).unwrap();
    assert_eq!(stats, sandbox.stats());
    assert_eq!(stats.action(Action::GetStatus).arrived, 1);
}

#[test]
fn a_failed_ticket_may_be_submitted_again_with_the_same_token() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let other = format!(
        "base64://{}",
        STANDARD.encode(encode(&picture(3), ImageFormat::Png))
    );
    let issued = token(&client, "t-again");
    let token = issued.verify_token.token;
    assert_eq!(submit(&client, &token, NAME, &other).unwrap(), 2);
    assert_eq!(submit(&client, &token, NAME, &base64_face()).unwrap(), 1);
    assert_eq!(sandbox.stats().submissions("RPBasic", "t-again"), 2);
    assert_eq!(sandbox.stats().duplicate_submissions, 0);
}

#[test]
fn a_loopback_url_is_fetched() {
    let sandbox = Sandbox::start(config()).unwrap();
    let client = client(&sandbox);
    let first = token(&client, "t-url-1");
    assert_eq!(
        submit(&client, &first.verify_token.token, NAME, &base64_face()).unwrap(),
        1
    );
    let url = client
        .get_materials("RPBasic", "t-url-1")
        .unwrap()
        .data
        .face_pic
        .unwrap();

    let second = token(&client, "t-url-2");
    assert_eq!(
        submit(&client, &second.verify_token.token, NAME, &url).unwrap(),
        1
    );
    let missing = format!("{}/_sandbox/objects/none", sandbox.url());
    let third = token(&client, "t-url-3");
    let error = submit(&client, &third.verify_token.token, NAME, &missing).unwrap_err();
    assert_eq!(error.code(), Some("Error.MaterialsUploadError"));
}
