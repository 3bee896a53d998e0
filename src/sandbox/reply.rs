//! Renders answers in the format the caller asked for: JSON when `Format=JSON`, XML
//! otherwise, since the real service defaults to XML (PROTOCOL.md §1.2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ApiError;

/// The response format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A flat JSON object.
    Json,
    /// `<{Action}Response>` or `<Error>`.
    Xml,
}

impl Format {
    /// The format named by a `Format` parameter; anything but JSON answers XML.
    pub fn from_param(value: Option<&str>) -> Format {
        match value {
            Some(v) if v.eq_ignore_ascii_case("JSON") => Format::Json,
            _ => Format::Xml,
        }
    }

    /// The format named in a raw query string, for answers given before the body is read.
    pub fn from_query(query: &str) -> Format {
        let pairs = crate::cloudauth::percent::parse_form(query).unwrap_or_default();
        let format = pairs.iter().rev().find(|(name, _)| name == "Format");
        Format::from_param(format.map(|(_, value)| value.as_str()))
    }
}

/// A fresh RequestId: an upper-case UUID-like string.
pub fn request_id() -> String {
    let hex = format!("{:032X}", rand::random::<u128>());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A successful answer of `action` carrying `data`.
pub fn success(format: Format, action: &str, request_id: &str, data: Value) -> Response {
    let body = json!({"RequestId": request_id, "Success": true, "Code": "1", "Data": data});
    render(format, &format!("{action}Response"), StatusCode::OK, &body)
}

/// An error answer, with `x-acs-retry-after` when the error advertises a wait.
pub fn error(format: Format, request_id: &str, host_id: &str, error: &ApiError) -> Response {
    let mut body = json!({
        "RequestId": request_id,
        "HostId": host_id,
        "Code": error.code,
        "Message": error.message,
    });
    if error.business {
        body["Success"] = Value::Bool(false);
    } else {
        body["Recommend"] = Value::String(format!(
            "https://error-center.aliyun.com/status/search?Keyword={}&source=PopGw",
            error.code
        ));
    }
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = render(format, "Error", status, &body);
    if let Some(wait) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&wait.as_millis().to_string())
    {
        response.headers_mut().insert("x-acs-retry-after", value);
    }
    response
}

fn render(format: Format, root: &str, status: StatusCode, body: &Value) -> Response {
    let (content_type, text) = match format {
        Format::Json => ("application/json;charset=utf-8", body.to_string()),
        Format::Xml => ("text/xml;charset=utf-8", to_xml(root, body)),
    };
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Writes a JSON value as an XML document whose root element is `root`.
pub fn to_xml(root: &str, value: &Value) -> String {
    let mut out = String::from("<?xml version='1.0' encoding='UTF-8'?>");
    write_element(&mut out, root, value);
    out
}

fn write_element(out: &mut String, name: &str, value: &Value) {
    if let Value::Array(items) = value {
        for item in items {
            write_element(out, name, item);
        }
        return;
    }
    out.push_str(&format!("<{name}>"));
    match value {
        Value::Object(fields) => {
            for (child, inner) in fields {
                write_element(out, child, inner);
            }
        }
        Value::String(text) => escape_into(out, text),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
    out.push_str(&format!("</{name}>"));
}

/// Escapes text for XML content.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_upper_case_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_uppercase());
        assert_eq!(id.matches('-').count(), 4);
    }

    #[test]
    fn xml_nests_objects_and_escapes_text() {
        let value =
            json!({"Data": {"StatusCode": 1, "AuditConclusions": "a<b&c"}, "Success": true});
        assert_eq!(
            to_xml("SubmitMaterialsResponse", &value),
            "<?xml version='1.0' encoding='UTF-8'?><SubmitMaterialsResponse><Data>\
             <AuditConclusions>a&lt;b&amp;c</AuditConclusions><StatusCode>1</StatusCode></Data>\
             <Success>true</Success></SubmitMaterialsResponse>"
        );
    }
}
