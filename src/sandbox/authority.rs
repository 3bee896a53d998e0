//! The sandbox's stand-in for the government's identity records: for each ID number, the
//! registered name and a portrait, compared with submitted photos by perceptual hash.
//!
//! The data set is a CSV file with the columns `id_number`, `name` and `portrait` (an image
//! path relative to the CSV file). `samples/authority.csv` is the one the demo uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;

/// A failure to load the data set.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The CSV file could not be read or parsed.
    #[error("authority data set {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The reader's error, which names the line.
        source: csv::Error,
    },
    /// A portrait could not be read or decoded.
    #[error("authority data set {path}, line {line}: portrait {portrait}: {reason}")]
    Portrait {
        /// The CSV file.
        path: PathBuf,
        /// The line of the record.
        line: u64,
        /// The portrait file.
        portrait: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// One registered person.
#[derive(Debug, Clone)]
pub struct Record {
    /// The registered name.
    pub name: String,
    /// The perceptual hash of the registered portrait.
    pub portrait: FaceHash,
}

/// The registered people, by ID number.
#[derive(Debug, Clone, Default)]
pub struct Authority {
    records: HashMap<String, Record>,
}

#[derive(Debug, serde::Deserialize)]
struct Row {
    id_number: String,
    name: String,
    portrait: PathBuf,
}

impl Authority {
    /// Loads the data set at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthorityError> {
        let csv_error = |source| AuthorityError::Csv {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = csv::Reader::from_path(path).map_err(csv_error)?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut records = HashMap::new();
        for row in reader.deserialize::<Row>() {
            let row = row.map_err(csv_error)?;
            let portrait = folder.join(&row.portrait);
            let bad = |reason: String| AuthorityError::Portrait {
                path: path.to_path_buf(),
                line: 0,
                portrait: portrait.clone(),
                reason,
            };
            let bytes = std::fs::read(&portrait).map_err(|e| bad(e.to_string()))?;
            let hash = FaceHash::of_image(&bytes).map_err(|e| bad(e.to_string()))?;
            let record = Record {
                name: row.name,
                portrait: hash,
            };
            records.insert(row.id_number, record);
        }
        Ok(Authority { records })
    }

    /// Adds or replaces a person, for tests and generated data sets.
    pub fn insert(&mut self, id_number: impl Into<String>, record: Record) {
        self.records.insert(id_number.into(), record);
    }

    /// The person registered under `id_number`.
    pub fn get(&self, id_number: &str) -> Option<&Record> {
        self.records.get(id_number)
    }

    /// How many people are registered.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A 256-bit perceptual hash of a photo: a difference hash over a 17×16 grey thumbnail.
///
/// It survives re-encoding, small shifts in brightness and noise, and tells structurally
/// different pictures apart, which is all a deterministic stand-in for face comparison
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceHash([u64; 4]);

const HASH_BITS: u32 = 256;

impl FaceHash {
    /// Decodes a JPEG or PNG and hashes it.
    pub fn of_image(bytes: &[u8]) -> Result<Self, image::ImageError> {
        let picture = image::load_from_memory(bytes)?;
        let thumb = picture
            .resize_exact(17, 16, FilterType::Triangle)
            .to_luma8();
        let mut words = [0u64; 4];
        for y in 0..16u32 {
            for x in 0..16u32 {
                let bit = y * 16 + x;
                if thumb.get_pixel(x, y)[0] > thumb.get_pixel(x + 1, y)[0] {
                    words[(bit / 64) as usize] |= 1 << (bit % 64);
                }
            }
        }
        Ok(FaceHash(words))
    }

    /// Bits that differ between the two hashes.
    pub fn distance(&self, other: &FaceHash) -> u32 {
        self.0
            .iter()
            .zip(other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// A comparison score from 0 to 100.
    ///
    /// Unrelated pictures differ in about half of the bits; the score maps that to 0 and
    /// identical pictures to 100, linearly in between.
    pub fn score(&self, other: &FaceHash) -> f64 {
        let half = f64::from(HASH_BITS / 2);
        let score = 100.0 * (1.0 - f64::from(self.distance(other)) / half);
        (score.clamp(0.0, 100.0) * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgb, RgbImage};
    use std::io::Cursor;

    fn encode(picture: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn stripes(period: u32, shade: u8) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            let on = (x / period + y / (period + 3)).is_multiple_of(2);
            if on {
                Rgb([shade, shade, shade])
            } else {
                Rgb([20, 40, 60])
            }
        })
    }

    #[test]
    fn the_same_picture_scores_100_across_formats() {
        let picture = stripes(7, 220);
        let png = FaceHash::of_image(&encode(&picture, ImageFormat::Png)).unwrap();
        let jpeg = FaceHash::of_image(&encode(&picture, ImageFormat::Jpeg)).unwrap();
        assert!(png.score(&jpeg) > 90.0, "{}", png.score(&jpeg));
    }

    #[test]
    fn different_pictures_score_low() {
        let a = FaceHash::of_image(&encode(&stripes(7, 220), ImageFormat::Png)).unwrap();
        let b = FaceHash::of_image(&encode(&stripes(3, 120), ImageFormat::Png)).unwrap();
        assert!(a.score(&b) < 60.0, "{}", a.score(&b));
    }

    #[test]
    fn garbage_is_not_an_image() {
        assert!(FaceHash::of_image(b"not an image").is_err());
    }
}
