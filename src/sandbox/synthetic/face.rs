//! Synthetic portraits and ID card pictures, drawn so that the sandbox's difference hash
//! ([`FaceHash`](crate::sandbox::authority::FaceHash)) scores photos of one person high and
//! photos of two people low.
//!
//! The hash compares neighbouring pixels of a 17×16 grey thumbnail, so what tells two
//! people apart is structure at that scale: where the head sits, which way the light falls,
//! and a wallpaper of brightness steps behind the head. Every such choice is drawn from
//! the person's number. What keeps one person's photos together is that no region is flat: a flat region
//! lets noise decide its bits, so each layer carries a gradient strong enough that a pixel
//! of shift or a change of exposure cannot flip its sign.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage};

use super::rng::SplitMix64;

/// The PRNG purposes, so each aspect of a person has its own stream.
const LOOKS: u64 = 1;
const CAMERA: u64 = 2;
const GRAIN: u64 = 3;

/// The hash's thumbnail: columns compared left to right, in rows.
const COLUMNS: usize = 17;
const ROWS: usize = 16;

/// An ellipse in picture coordinates, where the picture spans 0..1 both ways.
#[derive(Debug, Clone, Copy)]
struct Ellipse {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
}

impl Ellipse {
    /// 0 at the centre, 1 on the outline, above 1 outside.
    fn reach(&self, u: f32, v: f32) -> f32 {
        let du = (u - self.cx) / self.rx;
        let dv = (v - self.cy) / self.ry;
        du * du + dv * dv
    }

    /// Whether (u, v) lies inside.
    fn contains(&self, u: f32, v: f32) -> bool {
        self.reach(u, v) <= 1.0
    }
}

/// Everything that makes one synthetic person look like themselves.
#[derive(Debug, Clone)]
struct Looks {
    backdrop: [f32; 3],
    wallpaper: [[f32; COLUMNS]; ROWS],
    body: Ellipse,
    cloth: [f32; 3],
    head: Ellipse,
    skin: [f32; 3],
    light: f32,
    hair: Ellipse,
    hair_colour: [f32; 3],
    hairline: f32,
    long_hair: bool,
    eyes: (f32, f32, f32),
    mouth: Ellipse,
}

/// How one photo of a person differs from the registered portrait.
#[derive(Debug, Clone, Copy)]
struct Camera {
    shift: (f32, f32),
    exposure: f32,
    gain: f32,
    tilt: f32,
    grain: f32,
    seed: u64,
}

/// A synthetic portrait of `person`, `size` pixels square.
///
/// Variant 0 is the registered (authority) portrait; variants 1 and up are new photos of
/// the same person: moved by up to a pixel, exposed a little differently and with some
/// sensor grain, all decided by `(person, variant)`.
pub fn portrait(person: u64, variant: u32, size: u32) -> RgbImage {
    let looks = Looks::of(person);
    let camera = Camera::of(person, variant, size);
    RgbImage::from_fn(size, size, |x, y| {
        let u = (x as f32 + 0.5 - camera.shift.0) / size as f32;
        let v = (y as f32 + 0.5 - camera.shift.1) / size as f32;
        let colour = looks.colour_at(u, v).map(soft_range);
        camera.develop(colour, x, y, size)
    })
}

/// A picture of the portrait side of `person`'s ID card, `size` pixels square.
///
/// The hash is global, so the card is the registered portrait inside a one-pixel frame, as
/// if cropped tight around the photo. Anything more card-like (a header, printed text)
/// would move the thumbnail's edge columns and cost the same person ten points or more.
pub fn id_card_front(person: u64, size: u32) -> RgbImage {
    let mut card = portrait(person, 0, size);
    let border = (size / 100).max(1);
    for (x, y, pixel) in card.enumerate_pixels_mut() {
        if x < border || y < border || x + border >= size || y + border >= size {
            *pixel = Rgb([226, 232, 238]);
        }
    }
    card
}

/// Encodes `image` as a baseline JPEG of the given quality (1 to 100).
pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail and an RgbImage is always encodable as JPEG.
    image
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, quality))
        .expect("JPEG encoding into memory");
    out
}

/// Encodes `image` as PNG.
pub fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    // As for JPEG: in-memory encoding of an RGB buffer has no failure mode.
    image
        .write_to(&mut out, ImageFormat::Png)
        .expect("PNG encoding into memory");
    out.into_inner()
}

impl Looks {
    /// The looks of `person`.
    fn of(person: u64) -> Self {
        let mut rng = SplitMix64::for_purpose(person, LOOKS);
        let head = Ellipse {
            cx: rng.range(0.36, 0.64),
            cy: rng.range(0.36, 0.52),
            rx: rng.range(0.17, 0.27),
            ry: rng.range(0.23, 0.33),
        };
        let (hair, hairline, long_hair) = hair_of(&mut rng, &head);
        Looks {
            backdrop: colour(&mut rng, 90.0, 165.0),
            wallpaper: wallpaper(&mut rng),
            body: body_of(&mut rng, &head),
            cloth: colour(&mut rng, 10.0, 245.0),
            skin: skin(&mut rng),
            light: rng.range(0.8, 1.2) * if rng.below(2) == 0 { 1.0 } else { -1.0 },
            hair,
            hair_colour: colour(&mut rng, 5.0, 120.0),
            hairline,
            long_hair,
            eyes: (
                head.cy - rng.range(0.0, 0.3) * head.ry,
                rng.range(0.3, 0.45) * head.rx,
                rng.range(0.025, 0.045),
            ),
            mouth: Ellipse {
                cx: head.cx,
                cy: head.cy + rng.range(0.45, 0.6) * head.ry,
                rx: rng.range(0.25, 0.45) * head.rx,
                ry: rng.range(0.05, 0.1) * head.ry,
            },
            head,
        }
    }

    /// The colour at (u, v), painting back to front.
    fn colour_at(&self, u: f32, v: f32) -> [f32; 3] {
        if self.long_hair && self.hair.contains(u, v) && !self.head.contains(u, v) {
            return self.hair_at(u, v);
        }
        if self.head.contains(u, v) {
            return self.face_at(u, v);
        }
        if self.body.contains(u, v) {
            return offset(self.cloth, 0.6 * self.pattern(u, v));
        }
        offset(self.backdrop, self.pattern(u, v))
    }

    /// Inside the head: hair above the hairline, then eyes, mouth and lit skin.
    fn face_at(&self, u: f32, v: f32) -> [f32; 3] {
        if v < self.hairline && self.hair.contains(u, v) {
            return self.hair_at(u, v);
        }
        let (eye_v, eye_gap, eye_r) = self.eyes;
        for side in [-1.0, 1.0] {
            let du = u - (self.head.cx + side * eye_gap);
            if du * du + (v - eye_v) * (v - eye_v) < eye_r * eye_r {
                return [30.0, 25.0, 25.0];
            }
        }
        if self.mouth.contains(u, v) {
            return [150.0, 50.0, 55.0];
        }
        let across = (u - self.head.cx) / self.head.rx;
        offset(self.skin, 70.0 * self.light * across)
    }

    /// Hair, shaded by the wallpaper so that it has no flat stretch for noise to decide.
    fn hair_at(&self, u: f32, v: f32) -> [f32; 3] {
        offset(self.hair_colour, 0.5 * self.pattern(u, v))
    }

    /// The wallpaper's brightness at (u, v), around 0: constant down each thumbnail row,
    /// linear between the centres of its columns.
    fn pattern(&self, u: f32, v: f32) -> f32 {
        let row = ((v * ROWS as f32) as usize).min(ROWS - 1);
        let x = (u * COLUMNS as f32 - 0.5).clamp(0.0, (COLUMNS - 1) as f32);
        let column = (x as usize).min(COLUMNS - 2);
        let levels = &self.wallpaper[row];
        lerp(levels[column], levels[column + 1], x - column as f32) - 128.0
    }
}

impl Camera {
    /// The camera for photo `variant` of `person` at `size` pixels.
    fn of(person: u64, variant: u32, size: u32) -> Self {
        if variant == 0 {
            return Camera {
                shift: (0.0, 0.0),
                exposure: 0.0,
                gain: 1.0,
                tilt: 0.0,
                grain: 0.0,
                seed: 0,
            };
        }
        let subject = person ^ (u64::from(variant) << 40);
        let mut rng = SplitMix64::for_purpose(subject, CAMERA);
        // A pixel of shift at 112 px is a sixth of a thumbnail cell, and already enough to
        // flip a few of the hash's near-ties at the head's outline; larger pictures may
        // move further.
        let reach = (size as f32 / 224.0).max(0.5);
        Camera {
            shift: (rng.range(-reach, reach), rng.range(-reach, reach)),
            exposure: rng.range(-10.0, 10.0),
            gain: rng.range(0.95, 1.05),
            tilt: rng.range(-3.0, 3.0),
            grain: 3.0,
            seed: SplitMix64::for_purpose(subject, GRAIN).next_u64(),
        }
    }

    /// Turns a scene colour into the recorded pixel at (x, y).
    fn develop(&self, colour: [f32; 3], x: u32, y: u32, size: u32) -> Rgb<u8> {
        let across = x as f32 / size as f32 - 0.5;
        let light = self.exposure + self.tilt * across;
        let grain = if self.grain > 0.0 {
            let cell = u64::from(y) * u64::from(size) + u64::from(x);
            self.grain * SplitMix64::for_purpose(self.seed, cell).range(-1.0, 1.0)
        } else {
            0.0
        };
        let channel = |c: f32| (c * self.gain + light + grain).round().clamp(0.0, 255.0) as u8;
        Rgb([channel(colour[0]), channel(colour[1]), channel(colour[2])])
    }
}

/// The hair: an ellipse a little larger than the head, where it stops, and its length.
fn hair_of(rng: &mut SplitMix64, head: &Ellipse) -> (Ellipse, f32, bool) {
    let hair = Ellipse {
        cx: head.cx + rng.range(-0.02, 0.02),
        cy: head.cy - rng.range(0.0, 0.04),
        rx: head.rx * rng.range(1.05, 1.25),
        ry: head.ry * rng.range(1.05, 1.3),
    };
    let hairline = head.cy - head.ry * rng.range(0.35, 0.75);
    (hair, hairline, rng.below(3) == 0)
}

/// The shoulders: a wide ellipse under the head that runs off the bottom edge.
fn body_of(rng: &mut SplitMix64, head: &Ellipse) -> Ellipse {
    Ellipse {
        cx: head.cx + rng.range(-0.05, 0.05),
        cy: head.cy + head.ry + rng.range(0.35, 0.5),
        rx: rng.range(0.35, 0.55),
        ry: rng.range(0.3, 0.42),
    }
}

/// A random walk of brightness along each thumbnail row, in steps too big for a shift, a
/// change of exposure or grain to reverse.
///
/// This is what tells people apart: each step up or down is one hash bit, drawn afresh
/// for every person, and the steps are large so that they stay put between photos. Smooth
/// textures would do the first job but not the second, as every peak leaves a near-tie.
fn wallpaper(rng: &mut SplitMix64) -> [[f32; COLUMNS]; ROWS] {
    let mut grid = [[0.0; COLUMNS]; ROWS];
    for row in grid.iter_mut() {
        let mut level = rng.range(70.0, 186.0);
        for cell in row.iter_mut() {
            *cell = level;
            let step = rng.range(25.0, 45.0);
            let up = rng.below(2) == 0;
            level = if (up && level + step <= 215.0) || level - step < 40.0 {
                level + step
            } else {
                level - step
            };
        }
    }
    grid
}

/// Squeezes a scene brightness into 28..228, smoothly and strictly increasing.
///
/// Clamping instead would leave saturated patches flat, and a flat patch's hash bits are
/// decided by grain, differently in every photo.
fn soft_range(level: f32) -> f32 {
    128.0 + 100.0 * ((level - 128.0) / 100.0).tanh()
}

/// A skin tone, from pale to dark.
fn skin(rng: &mut SplitMix64) -> [f32; 3] {
    let depth = rng.range(0.0, 1.0);
    mix([240.0, 205.0, 180.0], [105.0, 70.0, 50.0], depth)
}

/// A random colour with channels in `low..high`.
fn colour(rng: &mut SplitMix64, low: f32, high: f32) -> [f32; 3] {
    [
        rng.range(low, high),
        rng.range(low, high),
        rng.range(low, high),
    ]
}

/// `colour` lightened (or darkened, for negative `amount`) on every channel.
fn offset(colour: [f32; 3], amount: f32) -> [f32; 3] {
    colour.map(|c| c + amount)
}

/// The colour a fraction `t` of the way from `a` to `b`.
fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        lerp(a[0], b[0], t),
        lerp(a[1], b[1], t),
        lerp(a[2], b[2], t),
    ]
}

/// Linear interpolation.
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::authority::FaceHash;

    const SIZE: u32 = 96;

    /// The hash the sandbox would compute for `picture` sent as a JPEG.
    fn hash(picture: &RgbImage) -> FaceHash {
        FaceHash::of_image(&jpeg(picture, 80)).unwrap()
    }

    /// Person numbers spread over the u64 range, as the demo draws them.
    fn people(count: u64) -> Vec<u64> {
        let mut rng = SplitMix64::new(42);
        (0..count).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn new_photos_of_a_person_score_at_least_90() {
        for person in people(60) {
            let registered = hash(&portrait(person, 0, SIZE));
            for variant in 1..=6 {
                let score = registered.score(&hash(&portrait(person, variant, SIZE)));
                assert!(score >= 90.0, "person {person} variant {variant}: {score}");
            }
        }
    }

    #[test]
    fn different_people_score_below_60() {
        let hashes: Vec<_> = people(200)
            .into_iter()
            .map(|p| hash(&portrait(p, 0, SIZE)))
            .collect();
        let mut worst: f64 = 0.0;
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                worst = worst.max(a.score(b));
            }
        }
        assert!(worst < 60.0, "closest pair of different people: {worst}");
    }

    #[test]
    fn the_id_card_matches_its_owner_only() {
        let people = people(40);
        for (i, &person) in people.iter().enumerate() {
            let card = hash(&id_card_front(person, SIZE));
            let own = card.score(&hash(&portrait(person, 2, SIZE)));
            let other = card.score(&hash(&portrait(people[(i + 1) % 40], 2, SIZE)));
            assert!(own >= 80.0, "person {person}: own face scores {own}");
            assert!(other < 60.0, "person {person}: another face scores {other}");
        }
    }

    #[test]
    fn pictures_are_deterministic() {
        assert_eq!(portrait(5, 3, 64), portrait(5, 3, 64));
        assert_ne!(portrait(5, 3, 64), portrait(5, 0, 64));
        assert_eq!(
            jpeg(&id_card_front(5, 64), 80),
            jpeg(&id_card_front(5, 64), 80)
        );
    }

    #[test]
    fn encodings_decode_to_the_same_size() {
        let picture = portrait(11, 1, 50);
        for bytes in [jpeg(&picture, 80), png(&picture)] {
            let decoded = image::load_from_memory(&bytes).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (50, 50));
        }
    }
}
