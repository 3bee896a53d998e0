//! The deterministic random numbers behind every synthetic person.

/// The splitmix64 generator (Steele, Lea and Flood, 2014).
///
/// Chosen because it is ten lines, passes BigCrush, and seeds well from consecutive
/// integers, which is exactly how person numbers are handed out.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A generator for one purpose of one subject, so that drawing more numbers for one
    /// purpose never shifts the numbers drawn for another.
    pub fn for_purpose(subject: u64, purpose: u64) -> Self {
        let mut mixer = SplitMix64(subject ^ purpose.wrapping_mul(0xA24B_AED4_963E_E407));
        SplitMix64(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` must not be zero.
    ///
    /// The modulo bias is below 2^-50 for the small `n` used here, far beneath notice.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) as f32
    }

    /// A float in `[low, high)`.
    pub fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// One element of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // The first outputs for seed 1234567 from the authors' C reference implementation.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }

    #[test]
    fn stays_in_range() {
        let mut rng = SplitMix64::new(9);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            let x = rng.range(-2.0, 3.0);
            assert!((-2.0..3.0).contains(&x));
        }
    }
}
