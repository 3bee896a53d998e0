//! OSS header signature version 1, used to upload images with the StsToken that
//! GetVerifyToken returns (PROTOCOL.md §8), and the object addresses SubmitMaterials takes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::signature::hmac_sha1;

/// The signed parts of one PutObject request.
#[derive(Debug, Clone)]
pub struct PutObject<'a> {
    /// The bucket, `StsToken.BucketName`.
    pub bucket: &'a str,
    /// The object key, unencoded, without a leading `/`.
    pub key: &'a str,
    /// Base64 of the body's binary MD5, when sent.
    pub content_md5: Option<&'a str>,
    /// The body's media type, when sent.
    pub content_type: Option<&'a str>,
    /// The `Date` header, RFC 1123 in GMT.
    pub date: &'a str,
    /// The `x-oss-security-token` header.
    pub security_token: &'a str,
}

impl PutObject<'_> {
    /// The five-line StringToSign: method, Content-MD5, Content-Type, Date, then the
    /// canonical `x-oss-` headers and resource, with no final line feed.
    pub fn string_to_sign(&self) -> String {
        format!(
            "PUT\n{}\n{}\n{}\nx-oss-security-token:{}\n/{}/{}",
            self.content_md5.unwrap_or(""),
            self.content_type.unwrap_or(""),
            self.date,
            self.security_token,
            self.bucket,
            self.key,
        )
    }

    /// The `Authorization` header: `OSS <id>:<base64 HMAC-SHA1>`, keyed with the plain
    /// secret (no `&` is appended, unlike RPC).
    pub fn authorization(&self, access_key_id: &str, secret: &str) -> String {
        let mut mac = hmac_sha1(secret.as_bytes());
        mac.update(self.string_to_sign().as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        format!("OSS {access_key_id}:{signature}")
    }
}

/// Base64 of the MD5 of `body`, for `Content-MD5`.
pub fn content_md5(body: &[u8]) -> String {
    use md5::Digest as _;
    STANDARD.encode(md5::Md5::digest(body))
}

/// An HTTP date, `Sat, 01 Jun 2019 08:00:00 GMT`.
pub fn http_date(at: OffsetDateTime) -> String {
    // RFC 2822 renders `+0000`; HTTP wants the literal zone name.
    let rendered = at
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc2822)
        .unwrap_or_default();
    match rendered.strip_suffix("+0000") {
        Some(stem) => format!("{stem}GMT"),
        None => rendered,
    }
}

/// Parses an HTTP date as [`http_date`] writes it.
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let rfc2822 = format!("{} +0000", text.strip_suffix(" GMT")?);
    OffsetDateTime::parse(&rfc2822, &Rfc2822).ok()
}

/// The value SubmitMaterials takes for an uploaded object: `oss://bucket:key`.
pub fn material_address(bucket: &str, key: &str) -> String {
    format!("oss://{bucket}:{}", key.trim_start_matches('/'))
}

/// Splits `oss://bucket:key` into bucket and key.
pub fn parse_material_address(value: &str) -> Option<(&str, &str)> {
    let (bucket, key) = value.strip_prefix("oss://")?.split_once(':')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// The object key for `file_name` under an StsToken `path`, which may or may not end in `/`.
pub fn object_key(path: &str, file_name: &str) -> String {
    let path = path.trim_matches('/');
    if path.is_empty() {
        file_name.to_string()
    } else {
        format!("{path}/{file_name}")
    }
}

#[cfg(test)]
mod tests {
    //! The vector of PROTOCOL.md §8, computed with the official `oss2` SDK.

    use super::*;

    fn vector(content_md5: Option<&'static str>) -> PutObject<'static> {
        PutObject {
            bucket: "cloudauth-test-bucket",
            key: "prod/RPBasic/ticket-0001/face.jpg",
            content_md5,
            content_type: Some("image/jpeg"),
            date: "Sat, 01 Jun 2019 08:00:00 GMT",
            security_token: "testtoken",
        }
    }

    #[test]
    fn reproduces_the_put_object_vector() {
        let md5 = content_md5(&[0xff, 0xd8, 0xff, 0xe0]);
        assert_eq!(md5, "0D2GS39D25zjTfX3IFCdDg==");
        let request = vector(Some("0D2GS39D25zjTfX3IFCdDg=="));
        assert_eq!(
            request.string_to_sign(),
            "PUT\n0D2GS39D25zjTfX3IFCdDg==\nimage/jpeg\nSat, 01 Jun 2019 08:00:00 GMT\nx-oss-security-token:testtoken\n/cloudauth-test-bucket/prod/RPBasic/ticket-0001/face.jpg"
        );
        assert_eq!(
            request.authorization("STS.testid", "testsecret"),
            "OSS STS.testid:SntAiPPIuSk/yszJE1/pfGL4lZY="
        );
    }

    #[test]
    fn reproduces_the_vector_without_content_md5() {
        assert_eq!(
            vector(None).authorization("STS.testid", "testsecret"),
            "OSS STS.testid:CQMvZv5N3gADeYVIGooommdx4fE="
        );
    }

    #[test]
    fn http_dates_round_trip() {
        let at = time::macros::datetime!(2019-06-01 08:00:00 UTC);
        assert_eq!(http_date(at), "Sat, 01 Jun 2019 08:00:00 GMT");
        assert_eq!(parse_http_date("Sat, 01 Jun 2019 08:00:00 GMT"), Some(at));
    }

    #[test]
    fn addresses_and_keys() {
        assert_eq!(material_address("b", "/p/k.jpg"), "oss://b:p/k.jpg");
        assert_eq!(
            parse_material_address("oss://verify-img:715OSS.JPG"),
            Some(("verify-img", "715OSS.JPG"))
        );
        assert_eq!(parse_material_address("oss://:k"), None);
        assert_eq!(object_key("prod/x/", "a.jpg"), "prod/x/a.jpg");
        assert_eq!(object_key("prod/x", "a.jpg"), "prod/x/a.jpg");
    }
}
