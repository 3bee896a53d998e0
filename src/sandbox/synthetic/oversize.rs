//! Photos that need fitting, for the tests and the demo: a portrait blown up past the
//! service's per-image limit, for [`fit`](crate::images::fit) to shrink back, and a JPEG
//! stamped with an EXIF Orientation, for it to turn upright.

use image::RgbImage;
use image::imageops::{self, FilterType};

use super::face::jpeg;
use super::rng::SplitMix64;

/// The longer side an enlarged photo starts at: a modest camera's. At quality 98 with
/// [`GRAIN`], a portrait this size is about 3.5 MB, so the usual requests take one round.
const START_SIDE: f64 = 2000.0;

/// The longer side at which an enlarged photo stops growing, whatever size was asked for.
const MAX_SIDE: f64 = 12_000.0;

/// The JPEG quality of an enlarged photo: as high as cameras save.
const QUALITY: u8 = 98;

/// How far the grain moves each channel either way. Light enough to leave the face as it
/// was; strong enough that the JPEG cannot shrink the smooth, enlarged picture to nothing.
const GRAIN: u8 = 6;

/// A JPEG of at least `min_bytes` showing the same face as `source` (a JPEG or PNG, as
/// [`portrait`](super::portrait) and [`jpeg`] make them).
///
/// The portrait is enlarged to a camera's size with light grain drawn from `seed`, and
/// saved at quality 98, growing until it is large enough; it stops growing at 12,000
/// pixels on its longer side, so an absurd `min_bytes` yields a smaller photo.
///
/// # Panics
///
/// If `source` does not decode: this is for our own synthetic portraits.
pub fn oversize_photo(source: &[u8], min_bytes: usize, seed: u64) -> Vec<u8> {
    let picture = image::load_from_memory(source)
        .expect("the source portrait decodes")
        .into_rgb8();
    let mut rng = SplitMix64::new(seed);
    let mut side = START_SIDE;

    loop {
        let photo = enlarged(&picture, side, &mut rng);
        if photo.len() >= min_bytes || side >= MAX_SIDE {
            return photo;
        }
        // JPEG size grows with the pixel count; aiming 10% over the estimate saves a round.
        let growth = (min_bytes as f64 / photo.len() as f64).sqrt() * 1.1;
        side = (side * growth).min(MAX_SIDE);
    }
}

/// `picture` enlarged to `longer_side` pixels on its longer side, grained, as a JPEG.
fn enlarged(picture: &RgbImage, longer_side: f64, rng: &mut SplitMix64) -> Vec<u8> {
    let (width, height) = picture.dimensions();
    let scale = longer_side / f64::from(width.max(height));
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);

    let mut big = imageops::resize(picture, side(width), side(height), FilterType::Triangle);
    add_grain(&mut big, rng);
    jpeg(&big, QUALITY)
}

/// Moves every channel of every pixel by up to [`GRAIN`] either way.
fn add_grain(picture: &mut RgbImage, rng: &mut SplitMix64) {
    let span = 2 * GRAIN + 1;
    for pixel in picture.pixels_mut() {
        let draw = rng.next_u64().to_le_bytes();
        for (channel, random) in pixel.0.iter_mut().zip(draw) {
            *channel = channel.saturating_add(random % span).saturating_sub(GRAIN);
        }
    }
}

/// `jpeg` with an APP1 Exif segment right after its start-of-image marker, holding one tag:
/// Orientation, set to `orientation` (1 to 8; 6 means "turn 90° clockwise to view").
///
/// # Panics
///
/// If `jpeg` does not start with a JPEG start-of-image marker.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u8) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    #[rustfmt::skip]
    let tiff: [u8; 26] = [
        b'M', b'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header; IFD0 at offset 8
        0, 1,                          // IFD0 holds one entry:
        0x01, 0x12, 0, 3, 0, 0, 0, 1,  // tag 0x0112 Orientation, type SHORT, one value,
        0, orientation, 0, 0,          // the value, left-justified in four bytes
        0, 0, 0, 0,                    // no further IFD
    ];
    // The length field counts itself, the "Exif\0\0" identifier and the TIFF bytes.
    let length = (2 + 6 + tiff.len()) as u16;

    let mut out = Vec::with_capacity(jpeg.len() + 2 + usize::from(length));
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[cfg(test)]
mod tests {
    use super::super::{png, portrait};
    use super::*;
    use crate::images::{Depth, fit, inspect};
    use crate::sandbox::authority::{Authority, FaceHash, Record};
    use crate::sandbox::config::SandboxConfig;
    use crate::sandbox::verdict::{Evidence, judge};
    use image::metadata::Orientation;
    use image::{ImageDecoder, ImageReader};
    use std::io::Cursor;

    const SIZE: u32 = 112;
    const ID_NUMBER: &str = "test-id-0001";

    /// The sandbox, with `person`'s registered portrait on record.
    fn sandbox_knowing(registered: &[u8]) -> SandboxConfig {
        let mut authority = Authority::default();
        let record = Record {
            name: "测试".to_string(),
            portrait: FaceHash::of_image(registered).unwrap(),
        };
        authority.insert(ID_NUMBER, record);
        SandboxConfig {
            authority,
            ..SandboxConfig::default()
        }
    }

    /// The sandbox's verdict (1 passed, 2 failed) on `face` against the registered person.
    fn verdict(config: &SandboxConfig, face: &[u8]) -> i32 {
        let evidence = Evidence {
            name: Some("测试"),
            id_number: Some(ID_NUMBER),
            face: Some(FaceHash::of_image(face).unwrap()),
            id_card: None,
        };
        judge(config, &evidence).unwrap().status_code
    }

    #[test]
    fn a_fitted_oversize_photo_is_still_the_same_face() {
        let registered = jpeg(&portrait(21, 0, SIZE), 85);
        let stranger = png(&portrait(22, 0, SIZE));

        let big = oversize_photo(&registered, 3_000_000, 1);
        assert!(big.len() >= 3_000_000, "{} bytes", big.len());
        let fitted = fit(&big, 2_000_000).unwrap();
        assert!(fitted.bytes.len() <= 2_000_000, "{fitted:?}");

        let own = verdict(&sandbox_knowing(&registered), &fitted.bytes);
        assert_eq!(own, 1, "{}", fitted.describe());
        assert_eq!(verdict(&sandbox_knowing(&stranger), &fitted.bytes), 2);
    }

    #[test]
    fn oversize_photos_grow_until_large_enough() {
        let source = png(&portrait(23, 0, 64));
        let photo = oversize_photo(&source, 4_000_000, 7);
        assert!(photo.len() >= 4_000_000, "{} bytes", photo.len());
        let found = inspect(&photo, Depth::Full).unwrap();
        assert!(found.width > START_SIDE as u32, "{found:?}");
        assert_eq!(found.width, found.height);
    }

    #[test]
    fn grain_is_light_and_follows_the_seed() {
        let picture = portrait(25, 0, 48);
        let grained = |seed| {
            let mut copy = picture.clone();
            add_grain(&mut copy, &mut SplitMix64::new(seed));
            copy
        };
        assert_eq!(grained(3), grained(3));
        assert_ne!(grained(3), grained(4));
        let most = grained(3)
            .as_raw()
            .iter()
            .zip(picture.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert_eq!(most, Some(GRAIN));
    }

    #[test]
    fn the_exif_orientation_reads_back() {
        let plain = jpeg(&portrait(24, 0, 32), 80);
        for (tag, expected) in [(1, Orientation::NoTransforms), (6, Orientation::Rotate90)] {
            let tagged = with_exif_orientation(&plain, tag);
            let reader = ImageReader::with_format(Cursor::new(&tagged), image::ImageFormat::Jpeg);
            let mut decoder = reader.into_decoder().unwrap();
            assert_eq!(decoder.orientation().unwrap(), expected);
            assert_eq!(decoder.dimensions(), (32, 32));
        }
    }
}
