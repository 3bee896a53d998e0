//! Turns a row into the materials of one SubmitMaterials call.
//!
//! This happens in three steps. [`resolve`] runs as the row comes in: it picks each value
//! from its column or file template and checks that it is there (a cell is filled, a file
//! exists), without reading any image, so that a row that cannot be submitted is skipped
//! before anything is paid for. [`load`] reads the images once the row is about to be sent
//! and makes them fit: a photo over `images.max_bytes` is re-encoded, uploaded or refused as
//! the spec says, and photos that would take the body over 8 MB go to OSS. [`Loaded::body`]
//! then base64-encodes the rest straight into the percent-encoded form body for a token.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checks::{Problem, Reason};
use crate::cloudauth::api::{MAX_BODY_BYTES, MaterialType};
use crate::cloudauth::client::{SubmitBody, SubmitBodyBuilder};
use crate::cloudauth::percent;
use crate::images;
use crate::source::Row;
use crate::spec::{Fit, ImagePolicy, MaterialSource, Pipeline};

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

/// Why a row's materials cannot be sent. The message names the material and the place,
/// never the personal value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// Picks every material of `row`, with a problem for each required one that is not there.
pub fn resolve(pipeline: &Pipeline, row: &Row) -> (Vec<Material>, Vec<Problem>) {
    let mut materials = Vec::with_capacity(pipeline.materials.len());
    let mut problems = Vec::new();
    for spec in &pipeline.materials {
        let found = match &spec.source {
            MaterialSource::Column(column) => from_column(pipeline, row, spec.kind, column),
            MaterialSource::File(template) => match template.render(|c| row.get(c)) {
                Ok(name) => from_file(spec.kind, &crate::spec::resolve(&pipeline.base_dir, &name)),
                Err(e) => Err(Problem::new(
                    Reason::ImageMissing,
                    format!("{}: cannot name the file: {e}", spec.kind),
                )),
            },
        };
        match found {
            Ok(Some(value)) => materials.push(Material {
                kind: spec.kind,
                value,
            }),
            Ok(None) if spec.required => problems.push(missing(pipeline, spec, row)),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    (materials, problems)
}

fn missing(pipeline: &Pipeline, spec: &crate::spec::MaterialSpec, row: &Row) -> Problem {
    match &spec.source {
        MaterialSource::Column(column) if spec.kind.is_image() => Problem::new(
            Reason::ImageMissing,
            format!("{} is missing: column {column} is empty", spec.kind),
        ),
        MaterialSource::Column(column) => Problem::new(
            Reason::ValueMissing,
            format!("{} is missing: column {column} is empty", spec.kind),
        ),
        MaterialSource::File(template) => {
            let name = template.render(|c| row.get(c)).unwrap_or_default();
            let path = crate::spec::resolve(&pipeline.base_dir, &name);
            Problem::new(
                Reason::ImageMissing,
                format!("{} is missing: no file {}", spec.kind, path.display()),
            )
        }
    }
}

fn from_column(
    pipeline: &Pipeline,
    row: &Row,
    kind: MaterialType,
    column: &str,
) -> Result<Option<Value>, Problem> {
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
        return Err(Problem::new(
            Reason::ImageUnreadable,
            format!(
                "{kind} (column {column}): a data: URI must be base64, as in \
                 data:image/jpeg;base64,..."
            ),
        ));
    }
    let path = crate::spec::resolve(&pipeline.base_dir, cell);
    from_file(kind, &path)?.map(Some).ok_or_else(|| {
        Problem::new(
            Reason::ImageMissing,
            format!(
                "{kind} is missing: no file {} (column {column})",
                path.display()
            ),
        )
    })
}

/// The base64 payload of a `data:image/...;base64,` URI.
fn strip_data_uri(cell: &str) -> Option<&str> {
    let rest = cell.strip_prefix("data:")?;
    let (media, data) = rest.split_once(',')?;
    media.ends_with(";base64").then_some(data)
}

fn from_file(kind: MaterialType, path: &Path) -> Result<Option<Value>, Problem> {
    let unreadable = |why: String| Problem::new(Reason::ImageUnreadable, why);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Some(Value::File {
            path: path.to_path_buf(),
            bytes: meta.len(),
        })),
        Ok(_) => Err(unreadable(format!(
            "{kind}: {} is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unreadable(format!(
            "{kind}: cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Room left in a body for the parameters other than the materials, and for the
/// estimate's error.
const BODY_MARGIN: usize = 16 * 1024;

/// The most an `oss://bucket:key` address takes in a body.
const OSS_ADDRESS_LEN: usize = 256;

/// A row's materials, read and fitted, ready to be encoded for a token.
#[derive(Debug, Clone)]
pub struct Loaded {
    parts: Vec<Part>,
    /// What was done to make the images fit, one note per image, for the report.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
enum Part {
    /// Sent as it is.
    Text(MaterialType, String),
    /// Sent inline as `base64://`.
    Inline(MaterialType, Vec<u8>),
    /// Uploaded to OSS, and sent as its `oss://` address.
    Upload(MaterialType, Vec<u8>),
}

impl Part {
    /// The part's share of the encoded body.
    fn encoded_len(&self) -> usize {
        match self {
            Part::Text(_, text) => text_share(text.len()),
            Part::Inline(_, bytes) => image_share(bytes.len()),
            Part::Upload(..) => OSS_ADDRESS_LEN,
        }
    }
}

/// The allocations of photos as read and of request bodies, given back by rows done with
/// them and handed to the next rows.
///
/// A row's photos and body take a megabyte or two, made on the encoder threads and freed
/// on the workers once the call is answered. Left to the allocator, that churn of large,
/// slightly different sizes across threads fragments its arenas, and a run's resident
/// memory grows to twice what its rows hold at once. Reused, there are only ever as many
/// allocations as rows have held at once.
#[derive(Debug, Default)]
pub struct Buffers {
    files: Mutex<Vec<Vec<u8>>>,
    bodies: Mutex<Vec<String>>,
}

impl Buffers {
    /// An empty buffer for a file of `bytes` bytes.
    fn file(&self, bytes: usize) -> Vec<u8> {
        let mut buffer = take(&self.files, bytes, Vec::capacity).unwrap_or_default();
        buffer.clear();
        buffer.reserve_exact(bytes);
        buffer
    }

    /// A buffer for a body of about `bytes` bytes (cleared by its user).
    fn body(&self, bytes: usize) -> String {
        take(&self.bodies, bytes, String::capacity).unwrap_or_default()
    }

    /// Takes back the text of a body that has been sent.
    pub fn give_body(&self, body: String) {
        give(&self.bodies, body);
    }
}

/// Buffers kept at most, of each kind: far more than rows are ever in flight.
const MAX_KEPT: usize = 4096;

/// The smallest buffer of `pool` with room for `bytes`, else the largest.
fn take<T>(pool: &Mutex<Vec<T>>, bytes: usize, capacity: impl Fn(&T) -> usize) -> Option<T> {
    let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
    let fits = pool
        .iter()
        .enumerate()
        .filter(|(_, buffer)| capacity(buffer) >= bytes)
        .min_by_key(|(_, buffer)| capacity(buffer))
        .map(|(at, _)| at);
    let at = fits.or_else(|| (0..pool.len()).max_by_key(|&at| capacity(&pool[at])))?;
    Some(pool.swap_remove(at))
}

fn give<T>(pool: &Mutex<Vec<T>>, buffer: T) {
    let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < MAX_KEPT {
        pool.push(buffer);
    }
}

/// Reads a row's images and makes them fit under `policy` and the body limit, reading
/// into allocations from `buffers`.
pub fn load(
    materials: &[Material],
    policy: &ImagePolicy,
    buffers: &Buffers,
) -> Result<Loaded, Unusable> {
    let mut loaded = Loaded {
        parts: Vec::with_capacity(materials.len()),
        notes: Vec::new(),
    };
    for material in materials {
        let part = match &material.value {
            Value::Text(text) => Part::Text(material.kind, text.clone()),
            Value::File { path, bytes } => {
                let bytes = read(path, *bytes, buffers).map_err(|e| {
                    Unusable(format!(
                        "{}: cannot read {}: {e}",
                        material.kind,
                        path.display()
                    ))
                })?;
                fit_one(material.kind, path, bytes, policy, &mut loaded.notes)?
            }
        };
        loaded.parts.push(part);
    }
    loaded.upload_largest_until_it_fits();
    Ok(loaded)
}

/// Reads the file at `path`, of about `size` bytes when it was found.
fn read(path: &Path, size: u64, buffers: &Buffers) -> std::io::Result<Vec<u8>> {
    let mut buffer = buffers.file(usize::try_from(size).unwrap_or(0));
    std::fs::File::open(path)?.read_to_end(&mut buffer)?;
    Ok(buffer)
}

/// An image file as it will be sent: unchanged, re-encoded, or marked for upload.
fn fit_one(
    kind: MaterialType,
    path: &Path,
    bytes: Vec<u8>,
    policy: &ImagePolicy,
    notes: &mut Vec<String>,
) -> Result<Part, Unusable> {
    if bytes.len() <= policy.max_bytes {
        return Ok(Part::Inline(kind, bytes));
    }
    match policy.fit {
        Fit::Recompress => {
            let fitted = images::fit(&bytes, policy.max_bytes)
                .map_err(|e| Unusable(format!("{kind}: {}: {e}", path.display())))?;
            notes.push(format!("{kind} {}", fitted.describe()));
            Ok(Part::Inline(kind, fitted.bytes))
        }
        Fit::Upload => {
            notes.push(format!(
                "{kind} uploaded to OSS unchanged ({} bytes, over {})",
                bytes.len(),
                policy.max_bytes
            ));
            Ok(Part::Upload(kind, bytes))
        }
        Fit::Reject => Err(Unusable(format!(
            "{kind}: {} is {} bytes, over the {} byte limit (images.fit: reject)",
            path.display(),
            bytes.len(),
            policy.max_bytes
        ))),
    }
}

impl Loaded {
    /// Moves the largest inline images to OSS until the body fits under 8 MB.
    fn upload_largest_until_it_fits(&mut self) {
        let sizes: Vec<(usize, bool)> = self
            .parts
            .iter()
            .map(|p| (p.encoded_len(), matches!(p, Part::Inline(..))))
            .collect();
        for index in moved_to_oss(sizes) {
            let part = &mut self.parts[index];
            if let Part::Inline(kind, bytes) = part {
                self.notes.push(format!(
                    "{kind} uploaded to OSS: the request body would exceed {MAX_BODY_BYTES} bytes"
                ));
                *part = Part::Upload(*kind, std::mem::take(bytes));
            }
        }
    }

    /// Whether some image goes through OSS, which needs the StsToken of a VerifyToken.
    pub fn needs_upload(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Upload(..)))
    }

    /// Gives the allocations of the photos back to `buffers`.
    pub fn recycle(self, buffers: &Buffers) {
        for part in self.parts {
            if let Part::Inline(_, bytes) | Part::Upload(_, bytes) = part {
                give(&buffers.files, bytes);
            }
        }
    }

    /// Encodes the SubmitMaterials body for `verify_token` into an allocation from
    /// `buffers`, calling `upload` for each image that goes through OSS; it returns the
    /// image's `oss://` address.
    pub fn body<E>(
        &self,
        verify_token: &str,
        buffers: &Buffers,
        mut upload: impl FnMut(MaterialType, &[u8]) -> Result<String, E>,
    ) -> Result<Result<SubmitBody, Unusable>, E> {
        let estimate = self.parts.iter().map(Part::encoded_len).sum::<usize>() + BODY_SLACK;
        let buffer = buffers.body(estimate);
        let mut body = SubmitBodyBuilder::in_buffer(verify_token, buffer, estimate);
        for part in &self.parts {
            match part {
                Part::Text(kind, text) => body.text(*kind, text),
                Part::Inline(kind, bytes) => {
                    body.with(*kind, |out| encode_base64_value(out, bytes));
                }
                Part::Upload(kind, bytes) => body.text(*kind, &upload(*kind, bytes)?),
            }
        }
        if body.len() > MAX_BODY_BYTES {
            let message = format!(
                "the request body would be {} bytes, over the {MAX_BODY_BYTES} byte limit",
                body.len()
            );
            return Ok(Err(Unusable(message)));
        }
        Ok(Ok(body.finish()))
    }
}

/// The parts, given as (encoded size, may move), that go to OSS so that the body fits:
/// the largest first, since each upload costs a round trip however small the image.
fn moved_to_oss(mut sizes: Vec<(usize, bool)>) -> Vec<usize> {
    let limit = MAX_BODY_BYTES - BODY_MARGIN;
    let mut moved = Vec::new();
    while sizes.iter().map(|(size, _)| size).sum::<usize>() > limit {
        let largest = sizes
            .iter()
            .enumerate()
            .filter(|(_, (_, movable))| *movable)
            .max_by_key(|(_, (size, _))| *size)
            .map(|(index, _)| index);
        let Some(index) = largest else { break };
        sizes[index] = (OSS_ADDRESS_LEN, false);
        moved.push(index);
    }
    moved
}

/// What sending a row's materials will take, judged from file sizes alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Images to re-encode to fit `images.max_bytes`.
    pub reencoded: usize,
    /// Images to upload to OSS (PutObject calls).
    pub uploaded: usize,
}

/// The [`Footprint`] of `materials` under `policy`, the way [`load`] will treat them,
/// assuming a re-encoded image comes out at the limit.
pub fn footprint(materials: &[Material], policy: &ImagePolicy) -> Footprint {
    let mut footprint = Footprint::default();
    let mut sizes = Vec::with_capacity(materials.len());
    for material in materials {
        match &material.value {
            Value::File { bytes, .. } if *bytes as usize > policy.max_bytes => match policy.fit {
                Fit::Recompress => {
                    footprint.reencoded += 1;
                    sizes.push((image_share(policy.max_bytes), true));
                }
                Fit::Upload => {
                    footprint.uploaded += 1;
                    sizes.push((OSS_ADDRESS_LEN, false));
                }
                Fit::Reject => sizes.push((0, false)),
            },
            Value::File { bytes, .. } => sizes.push((image_share(*bytes as usize), true)),
            Value::Text(text) => sizes.push((text_share(text.len()), false)),
        }
    }
    footprint.uploaded += moved_to_oss(sizes).len();
    footprint
}

/// The most bytes a row holds while its materials are sent: each photo as read, and its
/// share of the encoded body. The engine keeps the sum over the rows in flight under
/// `images.in_flight`.
pub fn held_bytes(materials: &[Material]) -> usize {
    materials
        .iter()
        .map(|material| match &material.value {
            Value::File { bytes, .. } => *bytes as usize + image_share(*bytes as usize),
            Value::Text(text) => text_share(text.len()),
        })
        .sum()
}

/// A text material's share of the encoded body: its value with every byte escaped at
/// worst, and room for the parameter names.
fn text_share(len: usize) -> usize {
    len * 3 + 64
}

/// An inline image's share of the encoded body, with room for the parameter names.
fn image_share(bytes: usize) -> usize {
    base64_len(bytes) + 64
}

/// The percent-encoded size of the base64 of `bytes` bytes: percent-encoding grows base64
/// by the share of `+` and `/`, about 3 in 64, each taking 3 bytes instead of 1.
fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4 * 35 / 32
}

/// The MIME type of an image to upload, from its first bytes.
pub fn content_type(bytes: &[u8]) -> &'static str {
    match images::Format::sniff(bytes) {
        Some(images::Format::Png) => "image/png",
        _ => "image/jpeg",
    }
}

/// Appends `base64://<base64 of bytes>`, percent-encoded, without building the base64
/// text as a string of its own: it is produced and escaped a block at a time.
///
/// `out` grows by exactly what is missing, never by doubling: a body is sized from an
/// estimate and then reused by later rows, so a doubled allocation would stay doubled.
pub fn encode_base64_value(out: &mut String, bytes: &[u8]) {
    out.push_str("base64%3A%2F%2F");
    out.reserve_exact(base64_len(bytes.len()));
    let mut chunk = String::with_capacity(BASE64_BLOCK / 3 * 4);
    for block in bytes.chunks(BASE64_BLOCK) {
        chunk.clear();
        STANDARD.encode_string(block, &mut chunk);
        // Room for the block even if every character needed escaping, so that the
        // encoder never has to grow `out` itself.
        let worst = 3 * chunk.len();
        if out.capacity() - out.len() < worst {
            out.reserve_exact(worst);
        }
        percent::encode_into(out, &chunk);
    }
}

/// Raw bytes base64-encoded and escaped at a time: 3 input bytes make 4 base64 characters,
/// so a block of 3 KiB encodes without padding in the middle of the value.
const BASE64_BLOCK: usize = 3 * 1024;

/// The room a body needs beyond its estimate: the last block of a base64 value with every
/// character escaped (see [`encode_base64_value`]).
const BODY_SLACK: usize = 3 * BASE64_BLOCK / 3 * 4;

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

    fn file(dir: &Path, name: &str, bytes: usize) -> Material {
        let path = dir.join(name);
        let content: Vec<u8> = (0..bytes as u32).map(|i| (i * 31 % 256) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        Material {
            kind: MaterialType::FacePic,
            value: Value::File {
                path,
                bytes: bytes as u64,
            },
        }
    }

    fn no_upload(_: MaterialType, _: &[u8]) -> Result<String, ()> {
        Err(())
    }

    #[test]
    fn buffers_hand_out_the_smallest_that_fits_else_the_largest() {
        let pool = Mutex::new(
            [10, 100, 50]
                .map(Vec::<u8>::with_capacity)
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let capacity = |bytes| take(&pool, bytes, Vec::capacity).map(|b| b.capacity());
        assert!(capacity(40).is_some_and(|c| (50..100).contains(&c)));
        assert!(capacity(500).is_some_and(|c| c >= 100));
        assert!(capacity(1).is_some_and(|c| (10..50).contains(&c)));
        assert_eq!(capacity(1), None);
    }

    #[test]
    fn rows_encode_the_same_bodies_in_recycled_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ImagePolicy::default();
        let buffers = Buffers::default();
        // Rows a little larger than the one before, so that buffers handed on must grow,
        // and a small one.
        let sizes: [&[usize]; 4] = [&[60_000, 30_000], &[61_000, 31_000], &[62_000, 5], &[900]];
        let rows: Vec<Vec<Material>> = sizes
            .iter()
            .enumerate()
            .map(|(row, sizes)| {
                let name = |i: usize| format!("{row}-{i}.jpg");
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| file(dir.path(), &name(i), n))
                    .collect()
            })
            .collect();
        let mut longest = 0;
        for round in 0..3 {
            for (i, materials) in rows.iter().enumerate() {
                let fresh = load(materials, &policy, &Buffers::default()).unwrap();
                let fresh = fresh.body("token", &Buffers::default(), no_upload);
                let fresh = fresh.unwrap().unwrap().into_text().unwrap();

                let loaded = load(materials, &policy, &buffers).unwrap();
                let body = loaded.body("token", &buffers, no_upload).unwrap().unwrap();
                loaded.recycle(&buffers);
                let text = body.into_text().unwrap();
                assert_eq!(text, fresh, "round {round}, row {i}");
                // Grown by what was missing, never doubled.
                longest = longest.max(text.len());
                assert!(text.capacity() < longest * 5 / 4 + BODY_SLACK);
                buffers.give_body(text);
            }
        }
        // Each row took what the one before gave back: no more allocations than a row holds.
        let files = buffers.files.lock().unwrap();
        assert!(files.len() <= 2);
        assert!(files.iter().all(|file| file.capacity() <= 62_000));
        assert_eq!(buffers.bodies.lock().unwrap().len(), 1);
    }

    #[test]
    fn size_estimate_covers_the_encoded_body() {
        let dir = tempfile::tempdir().unwrap();
        let materials = vec![
            Material {
                kind: MaterialType::Name,
                value: Value::Text("张三".into()),
            },
            file(dir.path(), "x.jpg", 30_000),
        ];
        let loaded = load(&materials, &ImagePolicy::default(), &Buffers::default()).unwrap();
        let estimate: usize = loaded.parts.iter().map(Part::encoded_len).sum();
        let body = loaded
            .body("token", &Buffers::default(), no_upload)
            .unwrap()
            .unwrap();
        assert!(body.len() <= estimate + 128, "{} > {estimate}", body.len());
        assert_eq!(body.materials(), 2);
        assert!(loaded.notes.is_empty());
    }

    #[test]
    fn bodies_over_8_mb_send_their_largest_images_through_oss() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ImagePolicy {
            max_bytes: 3_000_000,
            ..ImagePolicy::default()
        };
        let materials: Vec<Material> = (0..4)
            .map(|i| file(dir.path(), &format!("{i}.jpg"), 1_900_000 + i * 1000))
            .collect();
        let loaded = load(&materials, &policy, &Buffers::default()).unwrap();
        assert!(loaded.needs_upload());
        let mut uploaded = Vec::new();
        let body = loaded
            .body("token", &Buffers::default(), |kind, bytes| {
                uploaded.push(bytes.len());
                Ok::<_, ()>(format!("oss://bucket:{kind}"))
            })
            .unwrap()
            .unwrap();
        // Four images of 1.9 MB take about 2.8 MB each once base64- and percent-encoded,
        // 11 MB in all; the two largest must go for the body to fit under 8 MB.
        assert_eq!(uploaded, vec![1_902_000, 1_903_000]);
        assert!(body.len() <= MAX_BODY_BYTES);
        assert_eq!(loaded.notes.len(), 2, "{:?}", loaded.notes);
    }

    #[test]
    fn oversize_images_follow_the_policy() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![file(dir.path(), "big.jpg", 5_000)];
        let policy = |fit| ImagePolicy {
            max_bytes: 4_000,
            fit,
            ..ImagePolicy::default()
        };
        let rejected = load(&big, &policy(Fit::Reject), &Buffers::default()).unwrap_err();
        assert!(rejected.0.contains("images.fit: reject"), "{rejected}");
        let uploaded = load(&big, &policy(Fit::Upload), &Buffers::default()).unwrap();
        assert!(uploaded.needs_upload());
        assert!(
            uploaded.notes[0].contains("unchanged"),
            "{:?}",
            uploaded.notes
        );
        // These bytes are no image, so re-encoding them must fail with a message.
        let recompressed = load(&big, &policy(Fit::Recompress), &Buffers::default()).unwrap_err();
        assert!(recompressed.0.contains("big.jpg"), "{recompressed}");
    }
}
