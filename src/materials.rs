//! Turns a row into the materials of one SubmitMaterials call.
//!
//! This happens in two steps. [`resolve`] runs as the row comes in: it picks each value
//! from its column or file template and checks that it is there (a cell is filled, a file
//! exists), without reading any image, so that a row that cannot be submitted is skipped
//! before anything is paid for. [`encode`] runs once the VerifyToken is known: it reads each
//! image file once and base64-encodes it straight into the percent-encoded form body.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cloudauth::api::{MAX_BODY_BYTES, MAX_IMAGE_BYTES, MaterialType};
use crate::cloudauth::client::{SubmitBody, SubmitBodyBuilder};
use crate::cloudauth::percent;
use crate::source::Row;
use crate::spec::{MaterialSource, Pipeline};

/// A material's value, located but not yet loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text, or an image address the service fetches itself (`http(s)://`, `oss://`,
    /// `base64://`), sent as it is.
    Text(String),
    /// An image file to read and send as `base64://`.
    File {
        /// The file.
        path: PathBuf,
        /// Its size when it was found.
        bytes: u64,
    },
}

/// One material of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    /// The material type.
    pub kind: MaterialType,
    /// Its value.
    pub value: Value,
}

/// Why a row cannot be submitted. The message names the material and the place, never
/// the personal value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// Picks every material of `row`, checking that the required ones are there.
pub fn resolve(pipeline: &Pipeline, row: &Row) -> Result<Vec<Material>, Unusable> {
    let mut materials = Vec::with_capacity(pipeline.materials.len());
    for spec in &pipeline.materials {
        let found = match &spec.source {
            MaterialSource::Column(column) => from_column(pipeline, row, spec.kind, column)?,
            MaterialSource::File(template) => {
                let name = template
                    .render(|c| row.get(c))
                    .map_err(|e| Unusable(format!("{}: cannot name the file: {e}", spec.kind)))?;
                from_file(spec.kind, &crate::spec::resolve(&pipeline.base_dir, &name))?
            }
        };
        match found {
            Some(value) => materials.push(Material {
                kind: spec.kind,
                value,
            }),
            None if spec.required => return Err(missing(spec, row)),
            None => {}
        }
    }
    Ok(materials)
}

fn missing(spec: &crate::spec::MaterialSpec, row: &Row) -> Unusable {
    match &spec.source {
        MaterialSource::Column(column) => Unusable(format!(
            "{} is missing: column {column} is empty",
            spec.kind
        )),
        MaterialSource::File(template) => {
            let name = template.render(|c| row.get(c)).unwrap_or_default();
            Unusable(format!("{} is missing: no file {name}", spec.kind))
        }
    }
}

fn from_column(
    pipeline: &Pipeline,
    row: &Row,
    kind: MaterialType,
    column: &str,
) -> Result<Option<Value>, Unusable> {
    let cell = row.get(column).unwrap_or("").trim();
    if cell.is_empty() {
        return Ok(None);
    }
    if !kind.is_image() {
        return Ok(Some(Value::Text(cell.to_string())));
    }
    const PASS_THROUGH: [&str; 4] = ["http://", "https://", "oss://", "base64://"];
    if PASS_THROUGH.iter().any(|scheme| cell.starts_with(scheme)) {
        return Ok(Some(Value::Text(cell.to_string())));
    }
    if let Some(data) = strip_data_uri(cell) {
        return Ok(Some(Value::Text(format!("base64://{data}"))));
    }
    if cell.starts_with("data:") {
        return Err(Unusable(format!(
            "{kind} (column {column}): a data: URI must be base64, as in data:image/jpeg;base64,..."
        )));
    }
    let path = crate::spec::resolve(&pipeline.base_dir, cell);
    from_file(kind, &path)?.map(Some).ok_or_else(|| {
        Unusable(format!(
            "{kind} is missing: no file {} (column {column})",
            path.display()
        ))
    })
}

/// The base64 payload of a `data:image/...;base64,` URI.
fn strip_data_uri(cell: &str) -> Option<&str> {
    let rest = cell.strip_prefix("data:")?;
    let (media, data) = rest.split_once(',')?;
    media.ends_with(";base64").then_some(data)
}

fn from_file(kind: MaterialType, path: &Path) -> Result<Option<Value>, Unusable> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            if meta.len() > MAX_IMAGE_BYTES as u64 {
                let message = format!(
                    "{kind}: {} is {} bytes, over the {} byte limit of one image",
                    path.display(),
                    meta.len(),
                    MAX_IMAGE_BYTES
                );
                return Err(Unusable(message));
            }
            Ok(Some(Value::File {
                path: path.to_path_buf(),
                bytes: meta.len(),
            }))
        }
        Ok(_) => Err(Unusable(format!(
            "{kind}: {} is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Unusable(format!(
            "{kind}: cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// The encoded size of a body carrying `materials`, before reading any file.
pub fn estimated_body_bytes(materials: &[Material]) -> usize {
    materials
        .iter()
        .map(|m| match &m.value {
            // Percent-encoding grows base64 by the share of `+` and `/`, about 3 in 64,
            // each taking 3 bytes instead of 1.
            Value::File { bytes, .. } => (*bytes as usize).div_ceil(3) * 4 * 35 / 32 + 64,
            Value::Text(text) => text.len() * 3 + 64,
        })
        .sum()
}

/// Reads the images and encodes the SubmitMaterials body for `verify_token`.
pub fn encode(verify_token: &str, materials: &[Material]) -> Result<SubmitBody, Unusable> {
    let mut body = SubmitBodyBuilder::new(verify_token, estimated_body_bytes(materials) + 128);
    let mut raw = Vec::new();
    for material in materials {
        match &material.value {
            Value::Text(text) => body.text(material.kind, text),
            Value::File { path, .. } => {
                raw.clear();
                read_file(path, &mut raw).map_err(|e| {
                    Unusable(format!(
                        "{}: cannot read {}: {e}",
                        material.kind,
                        path.display()
                    ))
                })?;
                body.with(material.kind, |out| encode_base64_value(out, &raw));
            }
        }
    }
    if body.len() > MAX_BODY_BYTES {
        let message = format!(
            "the request body would be {} bytes, over the {MAX_BODY_BYTES} byte limit",
            body.len()
        );
        return Err(Unusable(message));
    }
    Ok(body.finish())
}

fn read_file(path: &Path, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    file.read_to_end(into)?;
    Ok(())
}

/// Appends `base64://<base64 of bytes>`, percent-encoded, without building the base64
/// text as a string of its own: it is produced and escaped a block at a time.
pub fn encode_base64_value(out: &mut String, bytes: &[u8]) {
    // 3 input bytes make 4 base64 characters, so a block of 3 KiB encodes without padding
    // in the middle of the value.
    const BLOCK: usize = 3 * 1024;
    out.push_str("base64%3A%2F%2F");
    out.reserve(bytes.len().div_ceil(3) * 4 * 35 / 32);
    let mut chunk = String::with_capacity(BLOCK / 3 * 4);
    for block in bytes.chunks(BLOCK) {
        chunk.clear();
        STANDARD.encode_string(block, &mut chunk);
        percent::encode_into(out, &chunk);
    }
}

/// Describes a row's materials for logs without their values: types and sizes only.
pub fn describe(materials: &[Material]) -> String {
    let mut text = String::new();
    for (i, material) in materials.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        let _ = match &material.value {
            Value::File { bytes, .. } => write!(text, "{} ({bytes} B file)", material.kind),
            Value::Text(_) => write!(text, "{}", material.kind),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_values_are_encoded_in_blocks_identically_to_one_pass() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let mut streamed = String::new();
        encode_base64_value(&mut streamed, &bytes);
        let whole = percent::encode(&format!("base64://{}", STANDARD.encode(&bytes)));
        assert_eq!(streamed, whole);
    }

    #[test]
    fn data_uris_lose_their_header() {
        assert_eq!(strip_data_uri("data:image/png;base64,iVBOR"), Some("iVBOR"));
        assert_eq!(strip_data_uri("data:image/png,raw"), None);
        assert_eq!(strip_data_uri("image.png"), None);
    }

    #[test]
    fn size_estimate_covers_the_encoded_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jpg");
        let bytes: Vec<u8> = (0..30_000u32).map(|i| (i * 31 % 256) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let materials = vec![
            Material {
                kind: MaterialType::Name,
                value: Value::Text("张三".into()),
            },
            Material {
                kind: MaterialType::FacePic,
                value: Value::File {
                    path,
                    bytes: 30_000,
                },
            },
        ];
        let body = encode("token", &materials).unwrap();
        assert!(
            body.len() <= estimated_body_bytes(&materials) + 128,
            "{} > estimate",
            body.len()
        );
        assert_eq!(body.materials(), 2);
    }
}
