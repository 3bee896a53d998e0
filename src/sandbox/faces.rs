//! Perceptual hashes of submitted photos, remembered by content.
//!
//! Decoding a photo and shrinking it to a thumbnail costs the sandbox far more than
//! anything else in a SubmitMaterials call: tens of milliseconds for a 200 KB JPEG. A
//! benchmark that sends the same few photos for thousands of rows would measure that
//! instead of the client. The same bytes always give the same hash, so remembering it by a
//! digest of the bytes changes no answer. The remembered bytes are shared with the
//! emulated bucket as well, so a million submissions of a few photos keep a few photos.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::authority::FaceHash;

/// How many bytes of photos the cache holds before it starts again from empty: a benchmark's
/// pool of photos fits many times over, and a sandbox fed only distinct photos stays small.
const CAPACITY_BYTES: usize = 64 * 1024 * 1024;

/// Hashes of photos seen, by the SHA-256 of their bytes.
#[derive(Debug, Default)]
pub struct FaceCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_digest: HashMap<[u8; 32], (Bytes, FaceHash)>,
    bytes: usize,
}

impl FaceCache {
    /// The hash of the photo `bytes`, and the bytes to keep: an earlier copy of the same
    /// photo if there is one, else `bytes` itself.
    pub fn hash(&self, bytes: Bytes) -> Result<(Bytes, FaceHash), image::ImageError> {
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some((kept, hash)) = self.entries().by_digest.get(&digest) {
            return Ok((kept.clone(), *hash));
        }

        // Outside the lock: decoding is the slow part, and other calls need not wait.
        let hash = FaceHash::of_image(&bytes)?;

        let mut entries = self.entries();
        if entries.bytes + bytes.len() > CAPACITY_BYTES {
            entries.by_digest.clear();
            entries.bytes = 0;
        }
        if entries
            .by_digest
            .insert(digest, (bytes.clone(), hash))
            .is_none()
        {
            entries.bytes += bytes.len();
        }
        Ok((bytes, hash))
    }

    /// How many photos are remembered.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.entries().by_digest.len()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every update leaves the map and its byte count in step, so a panic elsewhere
        // leaves nothing half-done behind a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::synthetic::{jpeg, portrait};

    fn photo(person: u64) -> Bytes {
        Bytes::from(jpeg(&portrait(person, 0, 96), 85))
    }

    #[test]
    fn a_photo_seen_again_gets_the_same_hash_and_the_first_copy() {
        let cache = FaceCache::default();
        let first = photo(1);
        let (kept, hash) = cache.hash(first.clone()).unwrap();
        assert_eq!(hash, FaceHash::of_image(&first).unwrap());
        assert_eq!(kept.as_ptr(), first.as_ptr());

        let again = Bytes::from(first.to_vec());
        let (kept, same) = cache.hash(again.clone()).unwrap();
        assert_eq!(same, hash);
        assert_eq!(kept.as_ptr(), first.as_ptr(), "the earlier copy is shared");
        assert_ne!(kept.as_ptr(), again.as_ptr());
        assert_eq!(cache.remembered(), 1);
    }

    #[test]
    fn different_photos_get_their_own_hashes() {
        let cache = FaceCache::default();
        let (_, a) = cache.hash(photo(1)).unwrap();
        let (_, b) = cache.hash(photo(2)).unwrap();
        assert_ne!(a, b);
        assert_eq!(cache.remembered(), 2);
    }

    #[test]
    fn what_does_not_decode_is_refused_and_not_remembered() {
        let cache = FaceCache::default();
        assert!(
            cache
                .hash(Bytes::from_static(b"\xff\xd8 not a jpeg"))
                .is_err()
        );
        assert_eq!(cache.remembered(), 0);
    }
}
