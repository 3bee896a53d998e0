//! Benchmarks of the tool's own work per row, each beside its physical floor.
//!
//! A run should be limited by the service's quota, never by the tool. Each group measures
//! one hot path next to the cheapest thing that must happen anyway on the same bytes, and
//! the run ends with the ratio of the two and its target (BENCHMARKS.md):
//!
//! - `sign_6mb`: the RPC v1 signer over a SubmitMaterials body of about 6 MB, beside a bare
//!   HMAC-SHA1 over as many bytes as the body has. Target: at most 1.5x.
//! - `materials_3x200kb`: [`materials::load`] and [`materials::Loaded::body`] of three
//!   200 KB image files (read, base64, percent-encode into the body, in allocations handed
//!   on from the row before, as in a run), beside a bare base64 encode of the same bytes
//!   held in memory. Target: at most 2x.
//!
//! Run with `cargo bench --bench hot_paths`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cloudauth_batch::cloudauth::MaterialType;
use cloudauth_batch::cloudauth::signature::{self, EncodedParams, Method};
use cloudauth_batch::materials::{self, Buffers, Material, Value};
use cloudauth_batch::spec::ImagePolicy;
use criterion::{Criterion, Throughput};
use hmac::Mac as _;

/// The group of the signer and its name inside it.
const SIGN_GROUP: &str = "sign_6mb";
/// The group of the materials encoder.
const ENCODE_GROUP: &str = "materials_3x200kb";

/// Raw bytes of each of the three images of the signed body: base64 and its escapes grow
/// 1.4 MB to about 1.98 MB, so the body is about 6 MB, close to the 8 MB limit of a call.
const SIGNED_IMAGE_BYTES: usize = 1_400_000;
/// Raw bytes of each of the three photos of the materials benchmark, a typical row.
const PHOTO_BYTES: usize = 200_000;
/// The images of a body: a face, and both sides of the ID card.
const IMAGE_KINDS: [MaterialType; 3] = [
    MaterialType::FacePic,
    MaterialType::IdCardFrontPic,
    MaterialType::IdCardBackPic,
];

/// Each benchmark beside its baseline, with the target ratio of the two.
const TARGETS: [(&str, &str, &str, f64); 2] = [
    (SIGN_GROUP, "rpc_v1_signer", "bare_hmac_sha1", 1.5),
    (ENCODE_GROUP, "encode", "bare_base64", 2.0),
];

fn main() {
    let started = SystemTime::now();
    let mut criterion = Criterion::default()
        .output_directory(&output_directory())
        .configure_from_args();

    bench_signing(&mut criterion);
    bench_materials(&mut criterion);

    criterion.final_summary();
    report_ratios(&output_directory(), started);
}

/// Where the estimates go: where criterion puts them by default, `<target>/criterion`,
/// found from this executable (`<target>/release/deps/hot_paths-*`) so that the ratios can
/// be read back without asking cargo. `CRITERION_HOME` wins, as it does in criterion.
fn output_directory() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.ancestors().nth(3).unwrap_or(Path::new("target"));
    target.join("criterion")
}

/// Signs a ~6 MB SubmitMaterials POST, and HMACs as many bytes.
fn bench_signing(criterion: &mut Criterion) {
    let images: Vec<Vec<u8>> = (0..3).map(|i| noise(SIGNED_IMAGE_BYTES, i)).collect();
    let body = submit_body(&images);
    let query = common_query();
    let bytes = body.as_str().as_bytes();

    let mut group = criterion.benchmark_group(SIGN_GROUP);
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.sample_size(30);
    group.bench_function("rpc_v1_signer", |b| {
        b.iter(|| signature::sign("bench-secret", Method::Post, &query, black_box(&body)))
    });
    group.bench_function("bare_hmac_sha1", |b| {
        b.iter(|| {
            let mut mac =
                <hmac::Hmac<sha1::Sha1> as hmac::KeyInit>::new_from_slice(b"bench-secret&")
                    .expect("HMAC takes keys of any length");
            mac.update(black_box(bytes));
            mac.finalize().into_bytes()
        })
    });
    group.finish();
}

/// Encodes three 200 KB image files into a body, and base64-encodes the same bytes.
fn bench_materials(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let photos: Vec<Vec<u8>> = (10..13).map(|i| noise(PHOTO_BYTES, i)).collect();
    let materials = photo_files(dir.path(), &photos);
    let total: usize = photos.iter().map(Vec::len).sum();

    let mut group = criterion.benchmark_group(ENCODE_GROUP);
    group.throughput(Throughput::Bytes(total as u64));
    let policy = ImagePolicy::default();
    // As in a run, each row's allocations are handed on to the next.
    let buffers = Buffers::default();
    group.bench_function("encode", |b| {
        b.iter(|| {
            let loaded =
                materials::load(black_box(&materials), &policy, &buffers).expect("readable photos");
            let body = loaded
                .body("8eb57ce35d584cbb9724198cb0ac6b60", &buffers, |_, _| {
                    Err::<String, ()>(())
                })
                .expect("nothing to upload")
                .expect("a body under 8 MB");
            loaded.recycle(&buffers);
            let len = body.len();
            if let Some(text) = body.into_text() {
                buffers.give_body(text);
            }
            len
        })
    });
    group.bench_function("bare_base64", |b| {
        b.iter(|| {
            photos
                .iter()
                .map(|photo| STANDARD.encode(black_box(photo)))
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

/// The body [`cloudauth_batch::cloudauth::SubmitBodyBuilder`] builds for these images.
///
/// The builder hides its parameters inside the finished body, so this lays them out the
/// same way: the token, then each material's type and value, numbered from 1.
fn submit_body(images: &[Vec<u8>]) -> EncodedParams {
    let capacity = images.iter().map(|i| i.len() * 3 / 2).sum();
    let mut body = EncodedParams::with_capacity(capacity);
    body.push("VerifyToken", "8eb57ce35d584cbb9724198cb0ac6b60");
    for (n, (image, kind)) in images.iter().zip(IMAGE_KINDS).enumerate() {
        let n = n + 1;
        body.push(&format!("Material.{n}.MaterialType"), kind.as_str());
        body.push_with(&format!("Material.{n}.Value"), |out| {
            materials::encode_base64_value(out, image)
        });
    }
    body
}

/// The common parameters of a signed call, as the client sends them.
fn common_query() -> EncodedParams {
    let mut query = EncodedParams::default();
    for (name, value) in [
        ("AccessKeyId", "bench-id"),
        ("Action", "SubmitMaterials"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "3ee8c9c4-5a1f-4bb2-8a8f-6b1d7c2a9e01"),
        ("SignatureType", ""),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2019-06-01T08:00:00Z"),
        ("Version", "2018-09-16"),
    ] {
        query.push(name, value);
    }
    query
}

/// Writes each photo to a file and returns them as the materials of a row.
fn photo_files(dir: &Path, photos: &[Vec<u8>]) -> Vec<Material> {
    photos
        .iter()
        .zip(IMAGE_KINDS)
        .enumerate()
        .map(|(i, (photo, kind))| {
            let path = dir.join(format!("photo-{i}.jpg"));
            std::fs::write(&path, photo).expect("a writable temporary directory");
            Material {
                kind,
                value: Value::File {
                    path,
                    bytes: photo.len() as u64,
                },
            }
        })
        .collect()
}

/// `len` pseudo-random bytes (xorshift64*): compressed images look random to base64, and
/// random bytes give `+` and `/` their share of 1 in 32 characters.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15 ^ (seed + 1);
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Prints each benchmark's median time over its baseline's, from the estimates just saved.
///
/// The median, because on a shared machine a few slow samples (another process taking the
/// core) move the mean of one benchmark and not the other.
///
/// Nothing is printed for a pair that did not run in this process (a filter, or `--test`),
/// even if an older run left its estimates behind.
// The ratios are this program's output, like criterion's own lines above them.
#[allow(clippy::print_stdout)]
fn report_ratios(dir: &Path, started: SystemTime) {
    println!("\nratio to the physical baseline (median times):");
    for (group, bench, baseline, target) in TARGETS {
        let (Some(measured), Some(floor)) = (
            median_ns(dir, group, bench, started),
            median_ns(dir, group, baseline, started),
        ) else {
            continue;
        };
        let ratio = measured / floor;
        let verdict = if ratio <= target { "ok" } else { "OVER TARGET" };
        println!(
            "  {group}: {bench} {:.3} ms / {baseline} {:.3} ms = {ratio:.2}x (target <= {target}x) {verdict}",
            measured / 1e6,
            floor / 1e6,
        );
    }
}

/// The median of a benchmark's run, in nanoseconds, if it was saved after `since`.
fn median_ns(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}
