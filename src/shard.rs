//! Shards: one run split across several processes or machines under one account quota.
//!
//! `run --shard I/N` takes the rows whose key hashes to I out of N, counted from 0 like the
//! Kubernetes completion index. The partition depends on the key alone, so every process
//! agrees on it without talking to the others, and a row is never submitted by two of them.
//! Rows without a key (unreadable, or an empty key cell) go by their row number instead.
//! Each shard keeps a ledger and a report of its own, named with a `.shard-I-of-N` suffix,
//! and takes 1/N of every quota unless the spec gives per-shard rates.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One shard of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?} is not a shard; write I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the row with `key` (empty when it has none) and input position `row`
    /// belongs to this shard.
    pub fn owns(&self, key: &str, row: u64) -> bool {
        shard_of(key, row, self.count) == self.index
    }

    /// `path` with this shard's suffix before its extension:
    /// `out/ledger.sqlite` becomes `out/ledger.shard-1-of-4.sqlite`.
    pub fn suffixed(&self, path: &Path) -> PathBuf {
        let suffix = format!("shard-{}-of-{}", self.index, self.count);
        let stem = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let name = match path.extension() {
            Some(extension) => format!("{stem}.{suffix}.{}", extension.to_string_lossy()),
            None => format!("{stem}.{suffix}"),
        };
        path.with_file_name(name)
    }
}

/// The shard, out of `count`, that the row with `key` and position `row` belongs to.
pub fn shard_of(key: &str, row: u64, count: u32) -> u32 {
    if key.is_empty() {
        return (row % u64::from(count)) as u32;
    }
    // A cryptographic hash, not std's: its value must never change between versions or
    // machines, or two shards of one campaign would disagree.
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_like_completion_indexes() {
        assert_eq!("0/4".parse(), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(" 3/4 ".parse(), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "1/0", "a/4", "1", "-1/4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_row_belongs_to_exactly_one_shard_and_they_are_balanced() {
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut sizes = [0u32; 4];
        for row in 1..=10_000u64 {
            let key = format!("A{row:06}");
            let owners: Vec<_> = shards.iter().filter(|s| s.owns(&key, row)).collect();
            assert_eq!(owners.len(), 1, "{key}");
            sizes[owners[0].index as usize] += 1;
        }
        for size in sizes {
            assert!((2_300..=2_700).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn the_partition_never_changes() {
        // Pinned: a new version must put old campaigns' rows in the same shards.
        let shards: Vec<u32> = ["A00001", "A00002", "A00003", "reverify-42"]
            .iter()
            .map(|k| shard_of(k, 1, 4))
            .collect();
        assert_eq!(shards, PINNED);
    }

    const PINNED: [u32; 4] = [0, 0, 1, 3];

    #[test]
    fn rows_without_a_key_go_by_their_position() {
        assert_eq!(shard_of("", 5, 4), 1);
        assert_eq!(shard_of("", 8, 4), 0);
    }

    #[test]
    fn files_gain_the_suffix_before_their_extension() {
        let shard = Shard { index: 1, count: 4 };
        assert_eq!(
            shard.suffixed(Path::new("out/ledger.sqlite")),
            PathBuf::from("out/ledger.shard-1-of-4.sqlite")
        );
        assert_eq!(
            shard.suffixed(Path::new("out/ledger")),
            PathBuf::from("out/ledger.shard-1-of-4")
        );
    }
}
