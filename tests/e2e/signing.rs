//! The client's requests checked by an independent implementation of the signing rules:
//! a listener captures what the client really sends, and the signature is recomputed the
//! way the official Python SDK does it (form-encode, then patch `+`, `*` and `~`), sharing
//! no code with the client's signer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use base64::Engine as _;
use cloudauth_batch::cloudauth::api::MaterialType;
use cloudauth_batch::cloudauth::{Client, Credentials, SubmitBodyBuilder, Timeouts};
use hmac::{KeyInit, Mac};

/// One captured request: method, query string and body.
struct Captured {
    method: String,
    query: String,
    body: String,
}

/// Serves one request on a loopback port, answering with an error body, and returns it.
fn capture(send: impl FnOnce(&str) + Send + 'static) -> Captured {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let client = std::thread::spawn(move || send(&url));
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap().to_string();
    let target = parts.next().unwrap().to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let answer = r#"{"RequestId":"R","Code":"Captured","Message":"captured"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    reader.get_mut().write_all(response.as_bytes()).unwrap();
    client.join().unwrap();
    let query = target
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    Captured {
        method,
        query,
        body: String::from_utf8(body).unwrap(),
    }
}

/// The Python SDK's percent-encoding: `quote_plus`, then `+` → `%20`, `*` → `%2A`, `%7E` → `~`.
fn sdk_quote(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

/// Recomputes the signature of a captured request and compares it with the one sent.
fn verify(captured: &Captured, secret: &str) {
    let mut params: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(captured.query.as_bytes())
            .into_owned()
            .collect();
    let sent = params.remove("Signature").expect("a Signature parameter");
    params.extend(url::form_urlencoded::parse(captured.body.as_bytes()).into_owned());
    let canonical = params
        .iter()
        .map(|(k, v)| format!("{}={}", sdk_quote(k), sdk_quote(v)))
        .collect::<Vec<_>>()
        .join("&");
    let string_to_sign = format!("{}&%2F&{}", captured.method, sdk_quote(&canonical));
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(sent, expected, "for {string_to_sign}");
}

fn client(url: &str) -> Client {
    Client::new(
        url,
        "cn-hangzhou",
        Credentials::new("testid", "testsecret"),
        Timeouts::default(),
    )
    .unwrap()
}

#[test]
fn a_get_status_request_verifies_independently() {
    let captured = capture(|url| {
        let _ = client(url).get_status("RPBasic", "ticket 0001*~");
    });
    assert_eq!(captured.method, "GET");
    verify(&captured, "testsecret");
}

#[test]
fn a_submit_materials_request_with_chinese_and_base64_verifies_independently() {
    let captured = capture(|url| {
        let mut body = SubmitBodyBuilder::new("8eb57ce35d584cbb9724198cb0ac6b60", 256);
        body.text(MaterialType::Name, "张三");
        body.text(MaterialType::IdentificationNumber, "11010519491231002X");
        body.text(MaterialType::FacePic, "base64://+//Y/+A=");
        let _ = client(url).submit_materials(&body.finish());
    });
    assert_eq!(captured.method, "POST");
    assert!(
        captured
            .body
            .contains("base64%3A%2F%2F%2B%2F%2FY%2F%2BA%3D"),
        "{}",
        captured.body
    );
    verify(&captured, "testsecret");
}

#[test]
fn a_verify_token_request_with_a_binding_is_a_signed_post() {
    let captured = capture(|url| {
        let _ = client(url).get_verify_token("RPBasic", "ticket-0002", Some(r#"{"Name":"张三"}"#));
    });
    assert_eq!(captured.method, "POST");
    verify(&captured, "testsecret");
}
