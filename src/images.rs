//! Inspects the photos of a row, and fits a photo that is too large under the service's limit.
//!
//! SubmitMaterials takes each photo inline as `base64://`, and one photo must stay under a
//! per-image limit ([`MAX_IMAGE_BYTES`](crate::cloudauth::api::MAX_IMAGE_BYTES)). The photos
//! users hand us are often legacy files: missing, corrupt, thumbnails, or straight off a
//! camera. So this module offers two things:
//!
//! - [`inspect`] and [`inspect_file`] say whether the bytes are a JPEG or a PNG (by their
//!   signature, never by the file name) and how large they are. At [`Depth::Header`] they
//!   read only the headers, cheap enough for every row of a run; at [`Depth::Full`] they
//!   decode every pixel, which is what the pre-flight `check` does. [`check_size`] then
//!   turns away icons and thumbnails.
//! - [`fit`] re-encodes a photo over the limit as a JPEG, first at falling quality, then
//!   smaller, until it fits. The pixels are first turned upright as the EXIF Orientation tag
//!   says, because the new JPEG carries no EXIF and would otherwise arrive on its side.
//!
//! Errors describe the image (format, sizes, dimensions), never its content, and name no
//! file: the caller adds the path, which may itself hold a name.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, Rgb, RgbImage};

/// The shortest side, in pixels, a photo must have to be worth sending.
///
/// Cloudauth documents no minimum. The smallest genuine photo we must accept is the chip
/// photo of a second-generation ID card (`IDPic`), 102×126 pixels; 64 leaves room for a
/// crop of it and still turns away icons, thumbnails and tracking pixels, which no face
/// comparison can use.
pub const MIN_SIDE: u32 = 64;

/// The shortest side, in pixels, below which [`fit`] will not shrink a photo.
///
/// Face comparison wants the face a hundred-odd pixels across, which a head-and-shoulders
/// photo still has at 320. Under the default 2 MB limit the floor is never reached (a
/// 320-pixel JPEG is far smaller than that at any quality); it matters for small limits.
pub const FIT_MIN_SIDE: u32 = 320;

/// The JPEG qualities [`fit`] tries at full size, best first, each with the smallest size
/// it may give relative to quality 90.
///
/// The ratios sit below every picture we measured: smooth synthetic portraits keep 0.60, 0.46, 0.40
/// and 0.38 of their size, grainy ones drop to 0.46, 0.29, 0.22 and 0.18. So an estimate
/// from them skips only a quality that clearly cannot fit.
const QUALITIES: [(u8, f64); 5] = [(90, 1.0), (80, 0.4), (70, 0.25), (60, 0.2), (50, 0.16)];

/// The quality of every downscaled attempt: once pixels must go, the ones kept stay good.
const SCALED_QUALITY: u8 = 80;

/// How much each downscaling step keeps of the width and the height.
const SCALE_STEP: f64 = 0.75;

/// An image format we can send, told by the file's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
}

impl Format {
    /// The format whose signature `bytes` start with, if any.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Format::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else {
            None
        }
    }

    /// The image crate's name for it.
    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
        })
    }
}

/// How far [`inspect`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The headers only: format and dimensions. A file cut short after its headers passes.
    Header,
    /// Every pixel, and for a JPEG its end-of-image marker.
    Full,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspected {
    /// The format.
    pub format: Format,
    /// The width in pixels, as stored (before any EXIF rotation).
    pub width: u32,
    /// The height in pixels, as stored.
    pub height: u32,
    /// The size of the encoded image in bytes.
    pub bytes: usize,
}

/// Why an image cannot be used as it is.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Neither a JPEG nor a PNG.
    #[error("not a JPEG or PNG image: {found}")]
    NotAnImage {
        /// What it seems to be instead, e.g. "it looks like a HEIC image".
        found: &'static str,
    },
    /// A JPEG or PNG that does not decode.
    #[error("corrupt {format} image: {reason}")]
    Corrupt {
        /// The format its signature claims.
        format: Format,
        /// What is wrong, from the decoder.
        reason: String,
    },
    /// Too few pixels on the shorter side.
    #[error("the image is {width}x{height} pixels, below the minimum of {min} on its shorter side")]
    TooSmall {
        /// The width in pixels.
        width: u32,
        /// The height in pixels.
        height: u32,
        /// The minimum for the shorter side.
        min: u32,
    },
    /// More pixels than we are willing to hold in memory.
    #[error("the image is {width}x{height} pixels, too many to decode")]
    TooLarge {
        /// The width in pixels.
        width: u32,
        /// The height in pixels.
        height: u32,
    },
    /// No quality and no size above [`FIT_MIN_SIDE`] brings the image under the limit.
    #[error(
        "cannot fit the image under {max_bytes} bytes: it is still {smallest} bytes at \
         {width}x{height}, and shrinking it further would take its shorter side below {min_side} pixels"
    )]
    CannotFit {
        /// The limit.
        max_bytes: usize,
        /// The smallest encoding tried, in bytes.
        smallest: usize,
        /// The width of that encoding.
        width: u32,
        /// The height of that encoding.
        height: u32,
        /// The floor for the shorter side.
        min_side: u32,
    },
    /// The JPEG encoder refused the picture (e.g. a side over 65,535 pixels).
    #[error("cannot re-encode the image as JPEG: {reason}")]
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read the image: {source}")]
    Io {
        /// The I/O error.
        #[from]
        source: io::Error,
    },
}

/// Says what `bytes` are and how large, reading as far as `depth` asks.
pub fn inspect(bytes: &[u8], depth: Depth) -> Result<Inspected, ImageError> {
    let format = sniff(bytes)?;

    let (width, height) = match depth {
        Depth::Header => header_dimensions(format, &mut Cursor::new(bytes))?,
        Depth::Full => {
            let decoded = decode(format, bytes)?;
            (decoded.image.width(), decoded.image.height())
        }
    };

    Ok(Inspected {
        format,
        width,
        height,
        bytes: bytes.len(),
    })
}

/// Says what the file at `path` is and how large. At [`Depth::Header`] it reads the headers
/// and nothing past them.
pub fn inspect_file(path: &Path, depth: Depth) -> Result<Inspected, ImageError> {
    if depth == Depth::Full {
        return inspect(&std::fs::read(path)?, depth);
    }

    let file = File::open(path)?;
    let bytes = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut start = Vec::with_capacity(64);
    reader.by_ref().take(64).read_to_end(&mut start)?;
    reader.rewind()?;

    let format = sniff(&start)?;
    let (width, height) = header_dimensions(format, &mut reader)?;
    Ok(Inspected {
        format,
        width,
        height,
        bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
    })
}

/// Refuses an image whose shorter side is below `min_side` pixels (usually [`MIN_SIDE`]).
pub fn check_size(image: &Inspected, min_side: u32) -> Result<(), ImageError> {
    if image.width.min(image.height) < min_side {
        return Err(ImageError::TooSmall {
            width: image.width,
            height: image.height,
            min: min_side,
        });
    }
    Ok(())
}

/// A photo re-encoded by [`fit`].
#[derive(Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The JPEG.
    pub bytes: Vec<u8>,
    /// Its JPEG quality, 1 to 100.
    pub quality: u8,
    /// Its width in pixels, after turning it upright.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Whether it had to be made smaller than the original.
    pub scaled: bool,
    /// Whether EXIF asked for a rotation or flip, now applied to the pixels.
    pub oriented: bool,
    /// The size of the original in bytes.
    pub original_bytes: usize,
}

impl Fitted {
    /// What was done, for a log line or the report, e.g.
    /// `re-encoded as JPEG q70 at 1600x1200 (3.1 MB -> 1.8 MB)`.
    pub fn describe(&self) -> String {
        let upright = if self.oriented {
            "turned upright, "
        } else {
            ""
        };
        let scaled = if self.scaled { "scaled down and " } else { "" };
        format!(
            "{upright}{scaled}re-encoded as JPEG q{} at {}x{} ({} -> {})",
            self.quality,
            self.width,
            self.height,
            readable_size(self.original_bytes),
            readable_size(self.bytes.len()),
        )
    }
}

// The JPEG itself is a photo of a person: Debug shows its size only.
impl fmt::Debug for Fitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fitted")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("quality", &self.quality)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("scaled", &self.scaled)
            .field("oriented", &self.oriented)
            .field("original_bytes", &self.original_bytes)
            .finish()
    }
}

/// Re-encodes the JPEG or PNG `bytes` as a JPEG of at most `max_bytes`, turned upright.
///
/// It tries the qualities 90 down to 50 at full size, then quality 80 at sizes shrinking by
/// a quarter per step, and gives up with [`ImageError::CannotFit`] before the shorter side
/// drops below [`FIT_MIN_SIDE`]. The photo is decoded once; qualities and sizes that an
/// estimate from the first encoding shows to be hopeless are skipped. It always re-encodes,
/// so call it only for a photo over the limit.
pub fn fit(bytes: &[u8], max_bytes: usize) -> Result<Fitted, ImageError> {
    let format = sniff(bytes)?;
    let decoded = decode(format, bytes)?;
    let oriented = decoded.orientation != Orientation::NoTransforms;
    let picture = upright_rgb(decoded);

    let attempt = match at_full_size(&picture, max_bytes)? {
        FullSize::Fits(attempt) => attempt,
        FullSize::Over {
            bytes_at_scaled_quality,
            smallest,
        } => downscaled(&picture, max_bytes, bytes_at_scaled_quality, smallest)?,
    };

    Ok(Fitted {
        scaled: attempt.width != picture.width() || attempt.height != picture.height(),
        bytes: attempt.bytes,
        quality: attempt.quality,
        width: attempt.width,
        height: attempt.height,
        oriented,
        original_bytes: bytes.len(),
    })
}

/// One encoding tried by [`fit`].
struct Attempt {
    bytes: Vec<u8>,
    quality: u8,
    width: u32,
    height: u32,
}

/// How the full-size attempts of [`fit`] ended.
enum FullSize {
    /// One quality fits.
    Fits(Attempt),
    /// None does; what was learnt, for the downscaling to plan with.
    Over {
        /// The size at [`SCALED_QUALITY`], measured or estimated.
        bytes_at_scaled_quality: f64,
        /// The smallest encoding actually made, for the error if nothing fits.
        smallest: Attempt,
    },
}

/// Tries the [`QUALITIES`] at full size, best first.
fn at_full_size(picture: &RgbImage, max_bytes: usize) -> Result<FullSize, ImageError> {
    let best = encode(picture, QUALITIES[0].0)?;
    let at_best = best.bytes.len() as f64;
    if best.bytes.len() <= max_bytes {
        return Ok(FullSize::Fits(best));
    }

    let mut bytes_at_scaled_quality = at_best * ratio_of(SCALED_QUALITY);
    let mut smallest = best;
    for &(quality, ratio) in &QUALITIES[1..] {
        // Even the most hopeful estimate is over the limit: encoding would be wasted time.
        if at_best * ratio > max_bytes as f64 {
            continue;
        }
        let attempt = encode(picture, quality)?;
        if attempt.bytes.len() <= max_bytes {
            return Ok(FullSize::Fits(attempt));
        }
        if quality == SCALED_QUALITY {
            bytes_at_scaled_quality = attempt.bytes.len() as f64;
        }
        smallest = attempt;
    }

    Ok(FullSize::Over {
        bytes_at_scaled_quality,
        smallest,
    })
}

/// The size ratio of `quality` to quality 90, from [`QUALITIES`].
fn ratio_of(quality: u8) -> f64 {
    QUALITIES
        .iter()
        .find(|(q, _)| *q == quality)
        .map_or(1.0, |(_, ratio)| *ratio)
}

/// Shrinks `picture` step by step at [`SCALED_QUALITY`] until it fits under `max_bytes`;
/// `estimate` is its size at full scale and that quality, `smallest` the best tried so far.
fn downscaled(
    picture: &RgbImage,
    max_bytes: usize,
    estimate: f64,
    mut smallest: Attempt,
) -> Result<Attempt, ImageError> {
    let (width, height) = picture.dimensions();
    let floor = floor_scale(width, height);
    let mut step = first_step(estimate, max_bytes);

    // A picture already at its floor has no smaller size to try.
    if floor < 1.0 {
        loop {
            let scale = SCALE_STEP.powi(step).max(floor);
            let (w, h) = scaled_size(width, height, scale);
            let resized = imageops::resize(picture, w, h, FilterType::CatmullRom);
            let attempt = encode(&resized, SCALED_QUALITY)?;
            if attempt.bytes.len() <= max_bytes {
                return Ok(attempt);
            }
            smallest = attempt;
            if scale <= floor {
                break;
            }
            step += 1;
        }
    }

    Err(ImageError::CannotFit {
        max_bytes,
        smallest: smallest.bytes.len(),
        width: smallest.width,
        height: smallest.height,
        min_side: FIT_MIN_SIDE,
    })
}

/// The scale that brings the shorter side to [`FIT_MIN_SIDE`].
fn floor_scale(width: u32, height: u32) -> f64 {
    f64::from(FIT_MIN_SIDE) / f64::from(width.min(height).max(1))
}

/// The first downscaling step worth encoding.
///
/// JPEG size grows about with the pixel count, so a picture `bytes` large needs its sides
/// scaled by about `sqrt(max / bytes)`. Smaller pictures hold more detail per pixel and
/// shrink less than that, so this starts at the mildest step at or above the estimate,
/// never past one that might fit.
fn first_step(bytes: f64, max_bytes: usize) -> i32 {
    let needed = (max_bytes as f64 / bytes).sqrt();
    if needed >= 1.0 {
        return 1;
    }
    let steps = (needed.ln() / SCALE_STEP.ln()).floor();
    (steps as i32).max(1)
}

/// `width`×`height` scaled by `scale`, each side at least one pixel.
fn scaled_size(width: u32, height: u32, scale: f64) -> (u32, u32) {
    let side = |n: u32| ((f64::from(n) * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// Encodes `picture` as a baseline JPEG of `quality`.
fn encode(picture: &RgbImage, quality: u8) -> Result<Attempt, ImageError> {
    let mut bytes = Vec::new();
    picture
        .write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, quality))
        .map_err(|e| ImageError::Encode {
            reason: e.to_string(),
        })?;
    Ok(Attempt {
        bytes,
        quality,
        width: picture.width(),
        height: picture.height(),
    })
}

/// The decoded pixels, turned upright, as RGB; transparency is laid over white.
fn upright_rgb(decoded: Decoded) -> RgbImage {
    let Decoded {
        mut image,
        orientation,
    } = decoded;
    image.apply_orientation(orientation);
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }

    // JPEG has no alpha. Dropping it would show whatever colour the transparent pixels
    // hide (often black); on white the photo looks as it did on screen.
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let alpha = u16::from(a);
            ((u16::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8
        };
        Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// The format of `bytes`, or what they look like instead.
fn sniff(bytes: &[u8]) -> Result<Format, ImageError> {
    Format::sniff(bytes).ok_or_else(|| ImageError::NotAnImage {
        found: what_it_is(bytes),
    })
}

/// A guess at what a file that is not a JPEG or PNG is, from its first bytes, so that the
/// user knows what to convert.
fn what_it_is(start: &[u8]) -> &'static str {
    let at = |offset: usize, magic: &[u8]| start.get(offset..offset + magic.len()) == Some(magic);
    if start.is_empty() {
        "it is empty"
    } else if at(4, b"ftyp") {
        "it looks like a HEIC or other ISO media file"
    } else if at(0, b"GIF8") {
        "it looks like a GIF image"
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        "it looks like a WebP image"
    } else if at(0, b"II*\0") || at(0, b"MM\0*") {
        "it looks like a TIFF image"
    } else if at(0, b"BM") {
        "it looks like a BMP image"
    } else if at(0, b"%PDF") {
        "it looks like a PDF document"
    } else if looks_like_text(start) {
        "it looks like text"
    } else {
        "its contents are not recognised"
    }
}

/// Whether `start` is printable text (UTF-8, allowing a character cut off at the end).
fn looks_like_text(start: &[u8]) -> bool {
    let valid = match std::str::from_utf8(start) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&start[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty() && valid.chars().all(|c| !c.is_control() || c.is_whitespace())
}

/// The dimensions in the headers of a `format` image read from `reader`.
fn header_dimensions<R: BufRead + Seek>(
    format: Format,
    reader: &mut R,
) -> Result<(u32, u32), ImageError> {
    match format {
        Format::Jpeg => jpeg_header(reader).map(|header| (header.width, header.height)),
        // The PNG decoder reads the chunks before the first IDAT and no further.
        Format::Png => ImageReader::with_format(reader, ImageFormat::Png)
            .into_dimensions()
            .map_err(|e| from_decoder(format, e)),
    }
}

/// The facts [`jpeg_header`] reads.
struct JpegHeader {
    width: u32,
    height: u32,
    /// Where the entropy-coded data of the first scan starts.
    scan_start: u64,
}

/// Walks the segments of a JPEG up to its first scan, seeking past their contents.
///
/// The image crate's JPEG decoder reads the whole file before it looks at a header, which
/// would make every row of a run read every photo; this reads a few hundred bytes.
fn jpeg_header<R: Read + Seek>(reader: &mut R) -> Result<JpegHeader, ImageError> {
    let corrupt = |reason: &str| ImageError::Corrupt {
        format: Format::Jpeg,
        reason: reason.to_string(),
    };
    if read_array::<2, _>(reader)? != [0xFF, 0xD8] {
        return Err(corrupt("it does not start with a start-of-image marker"));
    }

    let mut size = None;
    loop {
        match next_marker(reader)? {
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return Err(corrupt("it ends before its first scan")),
            0xDA => {
                let (width, height) = size.ok_or_else(|| corrupt("it has no frame header"))?;
                let scan_start = reader.stream_position()?;
                return Ok(JpegHeader {
                    width,
                    height,
                    scan_start,
                });
            }
            marker => {
                let length = u16::from_be_bytes(read_array(reader)?);
                if length < 2 {
                    return Err(corrupt("a segment is shorter than its own length field"));
                }
                let mut rest = i64::from(length) - 2;
                if is_frame_header(marker) {
                    size = Some(frame_size(reader)?);
                    rest -= 5;
                }
                reader.seek(SeekFrom::Current(rest))?;
            }
        }
    }
}

/// The next marker code, skipping the 0xFF fill bytes the standard allows before one.
fn next_marker<R: Read>(reader: &mut R) -> Result<u8, ImageError> {
    if read_array::<1, _>(reader)? != [0xFF] {
        return Err(ImageError::Corrupt {
            format: Format::Jpeg,
            reason: "a header segment is followed by stray bytes".to_string(),
        });
    }
    loop {
        match read_array::<1, _>(reader)? {
            [0xFF] => continue,
            [code] => return Ok(code),
        }
    }
}

/// Whether `marker` starts a frame header (SOF0 to SOF15), which holds the dimensions.
/// DHT (C4), JPG (C8) and DAC (CC) share the range but are not frames.
fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Width and height from a frame header, read past its length field.
fn frame_size<R: Read>(reader: &mut R) -> Result<(u32, u32), ImageError> {
    let [_precision, h1, h0, w1, w0] = read_array(reader)?;
    let height = u32::from(u16::from_be_bytes([h1, h0]));
    let width = u32::from(u16::from_be_bytes([w1, w0]));
    if width == 0 || height == 0 {
        // Height 0 defers it to a DNL marker, which hardly any decoder supports.
        return Err(ImageError::Corrupt {
            format: Format::Jpeg,
            reason: format!("its frame header gives a size of {width}x{height}"),
        });
    }
    Ok((width, height))
}

/// Reads exactly `N` bytes; a JPEG that ends early is corrupt, not an I/O failure.
fn read_array<const N: usize, R: Read>(reader: &mut R) -> Result<[u8; N], ImageError> {
    let mut buffer = [0; N];
    reader.read_exact(&mut buffer).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ImageError::Corrupt {
                format: Format::Jpeg,
                reason: "it ends inside its headers".to_string(),
            }
        } else {
            ImageError::Io { source: e }
        }
    })?;
    Ok(buffer)
}

/// A fully decoded image and the orientation its EXIF asks for.
struct Decoded {
    image: DynamicImage,
    orientation: Orientation,
}

/// Decodes every pixel of a `format` image.
fn decode(format: Format, bytes: &[u8]) -> Result<Decoded, ImageError> {
    if format == Format::Jpeg {
        check_jpeg_end(bytes)?;
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut decoder = reader.into_decoder().map_err(|e| from_decoder(format, e))?;

    let (width, height) = decoder.dimensions();
    if Limits::default().reserve(decoder.total_bytes()).is_err() {
        return Err(ImageError::TooLarge { width, height });
    }
    // A broken EXIF block is no reason to refuse a photo that decodes: take it as upright.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| from_decoder(format, e))?;

    Ok(Decoded { image, orientation })
}

/// Refuses a JPEG with no end-of-image marker after its first scan.
///
/// The JPEG decoder is lenient: it paints the missing part of a file that was cut short
/// grey and reports success. Markers cannot occur inside entropy-coded data (a 0xFF there
/// is always followed by 0x00 or a restart code), so a complete file has an EOI after its
/// scan; trailing bytes after it are common and allowed.
fn check_jpeg_end(bytes: &[u8]) -> Result<(), ImageError> {
    let header = jpeg_header(&mut Cursor::new(bytes))?;
    let scan = usize::try_from(header.scan_start).unwrap_or(bytes.len());
    let ends = bytes
        .get(scan..)
        .is_some_and(|data| data.windows(2).rev().any(|pair| pair == [0xFF, 0xD9]));
    if !ends {
        return Err(ImageError::Corrupt {
            format: Format::Jpeg,
            reason: "it has no end-of-image marker, so it was probably cut short".to_string(),
        });
    }
    Ok(())
}

/// Our error for an error of the image crate's decoders.
fn from_decoder(format: Format, error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            ImageError::Io { source: e }
        }
        other => ImageError::Corrupt {
            format,
            reason: other.to_string(),
        },
    }
}

/// A byte count for people, in decimal units as the service's limits are stated.
fn readable_size(bytes: usize) -> String {
    let size = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..100_000 => format!("{:.0} kB", size / 1e3),
        _ => format!("{:.1} MB", size / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::synthetic::{SplitMix64, jpeg, png, portrait, with_exif_orientation};
    use image::{Rgba, RgbaImage};

    /// Light noise over a gradient: the worst case for JPEG size, as a grainy scan is.
    fn noisy(width: u32, height: u32, seed: u64) -> RgbImage {
        let mut rng = SplitMix64::new(seed);
        RgbImage::from_fn(width, height, |x, y| {
            let base = ((x + y) % 192) as u8;
            let grain = rng.next_u64().to_le_bytes();
            Rgb([
                base + grain[0] % 64,
                base + grain[1] % 64,
                base + grain[2] % 64,
            ])
        })
    }

    fn size_at(picture: &RgbImage, quality: u8) -> usize {
        encode(picture, quality).unwrap().bytes.len()
    }

    fn write_temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn sniffs_the_format_by_signature() {
        let picture = portrait(1, 0, 80);
        assert_eq!(Format::sniff(&jpeg(&picture, 80)), Some(Format::Jpeg));
        assert_eq!(Format::sniff(&png(&picture)), Some(Format::Png));
        assert_eq!(Format::sniff(b"GIF89a"), None);
        assert_eq!(Format::sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn a_jpeg_named_png_is_still_a_jpeg() {
        let (_dir, path) = write_temp("face.png", &jpeg(&portrait(2, 0, 90), 80));
        let found = inspect_file(&path, Depth::Header).unwrap();
        assert_eq!(
            (found.format, found.width, found.height),
            (Format::Jpeg, 90, 90)
        );
    }

    #[test]
    fn a_text_file_is_not_an_image_and_its_text_is_not_echoed() {
        let (_dir, path) = write_temp("face.jpg", "id_number,name\n1234,张三\n".as_bytes());
        for depth in [Depth::Header, Depth::Full] {
            let error = inspect_file(&path, depth).unwrap_err();
            assert!(matches!(error, ImageError::NotAnImage { .. }), "{error:?}");
            let message = error.to_string();
            assert!(message.ends_with("it looks like text"), "{message}");
            assert!(
                !message.contains("张三") && !message.contains("1234"),
                "{message}"
            );
        }
    }

    #[test]
    fn other_formats_and_empty_files_say_what_they_are() {
        assert_eq!(what_it_is(b""), "it is empty");
        assert!(what_it_is(b"\0\0\0\x18ftypheic").contains("HEIC"));
        assert!(what_it_is(b"GIF89a\x01\0").contains("GIF"));
        assert!(what_it_is(b"RIFF\0\0\0\0WEBPVP8 ").contains("WebP"));
        assert!(what_it_is(b"%PDF-1.7").contains("PDF"));
        assert_eq!(
            what_it_is(&[0, 1, 2, 3, 200]),
            "its contents are not recognised"
        );
        // A multi-byte character cut off by the 64-byte peek is still text.
        assert_eq!(what_it_is(&"a 张".as_bytes()[..4]), "it looks like text");
    }

    #[test]
    fn garbage_after_a_jpeg_signature_is_corrupt() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F'];
        for depth in [Depth::Header, Depth::Full] {
            let error = inspect(&bytes, depth).unwrap_err();
            assert!(
                matches!(
                    error,
                    ImageError::Corrupt {
                        format: Format::Jpeg,
                        ..
                    }
                ),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_png_with_a_damaged_header_is_corrupt() {
        let mut bytes = png(&portrait(3, 0, 80));
        bytes[18] ^= 0x01; // inside IHDR's width, so its checksum no longer matches
        let error = inspect(&bytes, Depth::Header).unwrap_err();
        assert!(
            matches!(
                error,
                ImageError::Corrupt {
                    format: Format::Png,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_truncated_jpeg_passes_header_but_fails_full() {
        let whole = jpeg(&noisy(200, 120, 4), 90);
        let cut = &whole[..whole.len() * 6 / 10];
        let (_dir, path) = write_temp("cut.jpg", cut);

        let header = inspect_file(&path, Depth::Header).unwrap();
        assert_eq!(
            (header.width, header.height, header.bytes),
            (200, 120, cut.len())
        );
        let error = inspect_file(&path, Depth::Full).unwrap_err();
        assert!(error.to_string().contains("cut short"), "{error}");
        assert!(inspect(&whole, Depth::Full).is_ok());
    }

    #[test]
    fn a_truncated_png_passes_header_but_fails_full() {
        let whole = png(&noisy(120, 90, 5));
        let cut = &whole[..whole.len() / 2];
        assert_eq!(inspect(cut, Depth::Header).unwrap().width, 120);
        let error = inspect(cut, Depth::Full).unwrap_err();
        assert!(
            matches!(
                error,
                ImageError::Corrupt {
                    format: Format::Png,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn header_and_full_depth_agree_on_a_whole_file() {
        for bytes in [jpeg(&noisy(150, 70, 6), 85), png(&noisy(150, 70, 6))] {
            let (_dir, path) = write_temp("photo", &bytes);
            let header = inspect_file(&path, Depth::Header).unwrap();
            let full = inspect_file(&path, Depth::Full).unwrap();
            assert_eq!(header, full);
            assert_eq!(
                (full.width, full.height, full.bytes),
                (150, 70, bytes.len())
            );
        }
    }

    #[test]
    fn the_jpeg_header_walk_skips_exif_and_fill_bytes() {
        let plain = jpeg(&noisy(90, 60, 7), 80);
        let tagged = with_exif_orientation(&plain, 6);
        let filled = [&plain[..2], &[0xFF, 0xFF], &plain[2..]].concat();
        for bytes in [tagged, filled] {
            let found = inspect(&bytes, Depth::Header).unwrap();
            assert_eq!((found.width, found.height), (90, 60));
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = inspect_file(&dir.path().join("none.jpg"), Depth::Header).unwrap_err();
        assert!(matches!(error, ImageError::Io { .. }), "{error:?}");
    }

    #[test]
    fn too_small_images_are_refused() {
        let small = inspect(&png(&noisy(40, 300, 8)), Depth::Header).unwrap();
        let error = check_size(&small, MIN_SIDE).unwrap_err();
        assert!(matches!(
            error,
            ImageError::TooSmall {
                width: 40,
                height: 300,
                min: 64
            }
        ));
        let enough = inspect(&png(&noisy(64, 64, 8)), Depth::Header).unwrap();
        assert!(check_size(&enough, MIN_SIDE).is_ok());
    }

    #[test]
    fn fit_keeps_quality_90_when_it_fits() {
        let picture = portrait(9, 0, 400);
        let source = png(&picture);
        let fitted = fit(&source, size_at(&picture, 90)).unwrap();
        assert_eq!(
            (fitted.quality, fitted.scaled, fitted.oriented),
            (90, false, false)
        );
        assert_eq!((fitted.width, fitted.height), (400, 400));
        assert_eq!(fitted.bytes.len(), size_at(&picture, 90));
        assert_eq!(fitted.original_bytes, source.len());
        assert_eq!(
            inspect(&fitted.bytes, Depth::Full).unwrap().format,
            Format::Jpeg
        );
    }

    #[test]
    fn fit_walks_down_the_quality_ladder() {
        let picture = noisy(500, 400, 10);
        let (at_80, at_70) = (size_at(&picture, 80), size_at(&picture, 70));
        let fitted = fit(&png(&picture), (at_70 + at_80) / 2).unwrap();
        assert_eq!((fitted.quality, fitted.scaled), (70, false));
        assert_eq!(fitted.bytes.len(), at_70);
    }

    #[test]
    fn only_hopeless_qualities_are_skipped() {
        let picture = noisy(300, 200, 14);
        let at_90 = size_at(&picture, 90);
        let over = |max_bytes| match at_full_size(&picture, max_bytes).unwrap() {
            FullSize::Over {
                bytes_at_scaled_quality,
                smallest,
            } => (bytes_at_scaled_quality, smallest.quality),
            FullSize::Fits(attempt) => panic!("q{} fits", attempt.quality),
        };

        // A tenth of quality 90 is out of reach of every quality: only 90 is encoded.
        assert_eq!(over(at_90 / 10), (at_90 as f64 * 0.4, 90));
        // Just under quality 50's size, quality 80 is still hopeless, but 50 is tried.
        let at_50 = size_at(&picture, 50);
        assert_eq!(over(at_50 - 1), (at_90 as f64 * 0.4, 50));
    }

    #[test]
    fn fit_scales_down_when_no_quality_fits() {
        let picture = noisy(1200, 900, 11);
        let max_bytes = size_at(&picture, 50) / 3;
        let fitted = fit(&png(&picture), max_bytes).unwrap();

        assert!(fitted.bytes.len() <= max_bytes);
        assert_eq!((fitted.quality, fitted.scaled), (SCALED_QUALITY, true));
        assert!(
            fitted.width < 1200 && fitted.height >= FIT_MIN_SIDE,
            "{fitted:?}"
        );
        let aspect = f64::from(fitted.width) / f64::from(fitted.height);
        assert!((aspect - 4.0 / 3.0).abs() < 0.01, "{fitted:?}");
        assert!(
            fitted
                .describe()
                .starts_with("scaled down and re-encoded as JPEG q80")
        );
    }

    #[test]
    fn fit_turns_the_photo_upright_per_exif() {
        // Red on the left, blue on the right; orientation 6 means "turn 90° clockwise".
        let sideways = RgbImage::from_fn(200, 100, |x, _| {
            if x < 100 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 20, 220])
            }
        });
        let bytes = with_exif_orientation(&jpeg(&sideways, 90), 6);
        let fitted = fit(&bytes, 1_000_000).unwrap();

        assert_eq!(
            (fitted.width, fitted.height, fitted.oriented),
            (100, 200, true)
        );
        let upright = image::load_from_memory(&fitted.bytes).unwrap().into_rgb8();
        assert!(upright.get_pixel(50, 20)[0] > 180, "top should be red");
        assert!(upright.get_pixel(50, 180)[2] > 180, "bottom should be blue");
        assert!(fitted.describe().starts_with("turned upright, "));
    }

    #[test]
    fn fit_gives_up_at_the_floor() {
        let error = fit(&png(&noisy(800, 640, 12)), 2_000).unwrap_err();
        match error {
            ImageError::CannotFit {
                max_bytes,
                smallest,
                width,
                height,
                min_side,
            } => {
                assert_eq!((max_bytes, min_side), (2_000, FIT_MIN_SIDE));
                assert_eq!((width, height), (400, FIT_MIN_SIDE));
                assert!(smallest > 2_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fit_refuses_a_truncated_jpeg() {
        let whole = jpeg(&noisy(300, 300, 13), 95);
        let error = fit(&whole[..whole.len() / 2], 10_000).unwrap_err();
        assert!(matches!(error, ImageError::Corrupt { .. }), "{error:?}");
    }

    #[test]
    fn fit_lays_transparency_over_white() {
        let clear = RgbaImage::from_pixel(120, 120, Rgba([0, 0, 0, 0]));
        let mut bytes = Vec::new();
        clear
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        let fitted = fit(&bytes, 1_000_000).unwrap();
        let pixel = *image::load_from_memory(&fitted.bytes)
            .unwrap()
            .into_rgb8()
            .get_pixel(60, 60);
        assert!(pixel.0.iter().all(|&c| c > 250), "{pixel:?}");
    }

    #[test]
    fn the_first_downscaling_step_never_skips_one_that_may_fit() {
        assert_eq!(first_step(4e6, 2_000_000), 1);
        // sqrt(1/16) = 0.25 is needed; 0.75^4 = 0.32 is the mildest step above it.
        assert_eq!(first_step(16e6, 1_000_000), 4);
        assert_eq!(first_step(1e6, 2_000_000), 1);
    }

    #[test]
    fn fitted_describes_itself_without_its_pixels() {
        let fitted = Fitted {
            bytes: vec![0xFF, 0xD8, 0xFF, 0x42, 0x42],
            quality: 70,
            width: 1600,
            height: 1200,
            scaled: false,
            oriented: false,
            original_bytes: 3_140_000,
        };
        assert_eq!(
            fitted.describe(),
            "re-encoded as JPEG q70 at 1600x1200 (3.1 MB -> 5 bytes)"
        );
        let debug = format!("{fitted:?}");
        assert!(
            debug.contains("<5 bytes>") && !debug.contains("255"),
            "{debug}"
        );
    }
}
