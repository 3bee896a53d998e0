//! The materials of a SubmitMaterials call: reading `Material.n.*` and fetching the
//! images they point at (base64, http(s) on loopback, or the emulated bucket).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use crate::cloudauth::api::MAX_MATERIALS;
use crate::cloudauth::signature::Method;
use crate::cloudauth::{MaterialType, oss};

use super::authority::FaceHash;
use super::error::ApiError;
use super::faces::FaceCache;
use super::state::Shared;

/// One submitted material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// Its type.
    pub kind: MaterialType,
    /// Its value as sent.
    pub value: String,
}

/// A fetched, decoded image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The encoded bytes.
    pub bytes: Bytes,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// Its perceptual hash.
    pub hash: FaceHash,
}

/// Reads `Material.n.MaterialType` and `Material.n.Value` from the parameters, in the
/// order of n.
///
/// Duplicate types are refused as not valid: which of two names the service would check
/// is unknowable, so the sandbox does not guess.
pub fn parse(params: &HashMap<String, String>) -> Result<Vec<Material>, ApiError> {
    let mut slots: BTreeMap<usize, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for (name, value) in params {
        let Some(rest) = name.strip_prefix("Material.") else {
            continue;
        };
        let (n, field) = rest
            .split_once('.')
            .ok_or_else(ApiError::materials_not_valid)?;
        let n: usize = n.parse().map_err(|_| ApiError::materials_not_valid())?;
        if !(1..=MAX_MATERIALS).contains(&n) {
            return Err(ApiError::materials_not_valid());
        }
        let slot = slots.entry(n).or_default();
        match field {
            "MaterialType" => slot.0 = Some(value),
            "Value" => slot.1 = Some(value),
            _ => return Err(ApiError::materials_not_valid()),
        }
    }
    if slots.is_empty() {
        return Err(ApiError::materials_empty());
    }
    let materials = slots
        .into_values()
        .map(|slot| material(slot.0, slot.1))
        .collect::<Result<Vec<_>, _>>()?;
    refuse_duplicates(&materials)?;
    Ok(materials)
}

fn material(kind: Option<&str>, value: Option<&str>) -> Result<Material, ApiError> {
    let (Some(kind), Some(value)) = (kind, value) else {
        return Err(ApiError::materials_not_valid());
    };
    if kind.is_empty() || value.is_empty() {
        return Err(ApiError::param_missing());
    }
    let kind: MaterialType = kind.parse().map_err(|_| ApiError::materials_not_valid())?;
    if kind.is_image() && Source::of(value).is_none() {
        return Err(ApiError::materials_not_valid());
    }
    Ok(Material {
        kind,
        value: value.to_string(),
    })
}

fn refuse_duplicates(materials: &[Material]) -> Result<(), ApiError> {
    let mut kinds: Vec<_> = materials.iter().map(|m| m.kind).collect();
    kinds.sort();
    let before = kinds.len();
    kinds.dedup();
    if kinds.len() == before {
        Ok(())
    } else {
        Err(ApiError::materials_not_valid())
    }
}

/// Where an image value points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// `base64://…`: the raw base64 text.
    Base64(&'a str),
    /// `http(s)://…`: a URL.
    Http(&'a str),
    /// `oss://bucket:key`.
    Oss {
        /// The bucket.
        bucket: &'a str,
        /// The key.
        key: &'a str,
    },
}

impl<'a> Source<'a> {
    /// The source a value names, or `None` for a local path or an unknown scheme.
    pub fn of(value: &'a str) -> Option<Source<'a>> {
        if let Some(text) = value.strip_prefix("base64://") {
            return Some(Source::Base64(text));
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            return Some(Source::Http(value));
        }
        let (bucket, key) = oss::parse_material_address(value)?;
        Some(Source::Oss { bucket, key })
    }
}

/// Fetches and decodes the image `value` names.
pub async fn fetch(shared: &Shared, method: Method, value: &str) -> Result<Image, ApiError> {
    let limit = shared.config.max_image_bytes;
    let (bytes, limit) = match Source::of(value).ok_or_else(ApiError::materials_not_valid)? {
        // base64 in a query string would be mangled on its way, hence POST only.
        Source::Base64(_) if method == Method::Get => return Err(ApiError::upload_failed()),
        Source::Base64(text) => (
            Bytes::from(
                STANDARD
                    .decode(text)
                    .map_err(|_| ApiError::upload_failed())?,
            ),
            limit,
        ),
        Source::Http(url) => (download(shared, url).await?, limit),
        Source::Oss { bucket, key } => (
            stored(shared, bucket, key)?,
            shared.config.max_oss_image_bytes,
        ),
    };
    decode(&shared.faces, bytes, limit)
}

/// Checks that `bytes` is a JPEG or PNG no larger than `limit`, and hashes it.
pub fn decode(faces: &FaceCache, bytes: Bytes, limit: usize) -> Result<Image, ApiError> {
    if bytes.len() > limit {
        return Err(ApiError::upload_failed());
    }
    let content_type = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::Png) => "image/png",
        _ => return Err(ApiError::upload_failed()),
    };
    let (bytes, hash) = faces.hash(bytes).map_err(|_| ApiError::upload_failed())?;
    Ok(Image {
        bytes,
        content_type,
        hash,
    })
}

async fn download(shared: &Shared, url: &str) -> Result<Bytes, ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| ApiError::upload_failed())?;
    if !shared.config.allow_remote_fetch && !is_loopback(&parsed) {
        return Err(ApiError::upload_failed());
    }
    let response = shared
        .fetcher
        .get(parsed)
        .send()
        .await
        .map_err(|_| ApiError::upload_failed())?;
    if !response.status().is_success() {
        return Err(ApiError::upload_failed());
    }
    response
        .bytes()
        .await
        .map_err(|_| ApiError::upload_failed())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn stored(shared: &Shared, bucket: &str, key: &str) -> Result<Bytes, ApiError> {
    if bucket != shared.config.bucket_name {
        return Err(ApiError::upload_failed());
    }
    let core = shared.core();
    let object = core.bucket.get(key).ok_or_else(ApiError::upload_failed)?;
    Ok(object.bytes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn code(result: Result<Vec<Material>, ApiError>) -> String {
        result.unwrap_err().code
    }

    #[test]
    fn reads_materials_in_the_order_of_n() {
        let parsed = parse(&params(&[
            ("Material.10.MaterialType", "Name"),
            ("Material.10.Value", "张三"),
            ("Material.2.MaterialType", "FacePic"),
            ("Material.2.Value", "oss://b:k.jpg"),
            ("VerifyToken", "t"),
        ]))
        .unwrap();
        assert_eq!(parsed[0].kind, MaterialType::FacePic);
        assert_eq!(parsed[1].value, "张三");
    }

    #[test]
    fn refuses_malformed_lists() {
        assert_eq!(code(parse(&params(&[]))), "InvalidParam.MaterialsEmpty");
        let unpaired = [("Material.1.MaterialType", "Name")];
        assert_eq!(
            code(parse(&params(&unpaired))),
            "InvalidParam.MaterialsNotValid"
        );
        let eleventh = [
            ("Material.11.MaterialType", "Name"),
            ("Material.11.Value", "x"),
        ];
        assert_eq!(
            code(parse(&params(&eleventh))),
            "InvalidParam.MaterialsNotValid"
        );
        let unknown = [
            ("Material.1.MaterialType", "Face"),
            ("Material.1.Value", "x"),
        ];
        assert_eq!(
            code(parse(&params(&unknown))),
            "InvalidParam.MaterialsNotValid"
        );
        let local = [
            ("Material.1.MaterialType", "FacePic"),
            ("Material.1.Value", "/tmp/a.jpg"),
        ];
        assert_eq!(
            code(parse(&params(&local))),
            "InvalidParam.MaterialsNotValid"
        );
        let blank = [
            ("Material.1.MaterialType", "Name"),
            ("Material.1.Value", ""),
        ];
        assert_eq!(code(parse(&params(&blank))), "InvalidParam.ParamMissing");
    }

    #[test]
    fn decoding_refuses_non_images_and_large_ones() {
        assert_eq!(
            decode(&FaceCache::default(), Bytes::from_static(b"GIF89a"), 100)
                .unwrap_err()
                .code,
            "Error.MaterialsUploadError"
        );
        let big = Bytes::from(vec![0xffu8; 200]);
        assert_eq!(
            decode(&FaceCache::default(), big, 100).unwrap_err().code,
            "Error.MaterialsUploadError"
        );
    }
}
