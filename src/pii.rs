//! Personal data as it may be shown: names, ID numbers and mobiles masked for logs,
//! messages and rejects files, or replaced by a keyed hash in reports that auditors join on.
//!
//! Masking keeps just enough to tell two values apart by eye (`张*`,
//! `6305**********0099`, `139****2930`) and never the part that identifies a person.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::cloudauth::api::MaterialType;

/// `value` of material `kind`, masked for display. Images are never shown at all.
pub fn mask(kind: MaterialType, value: &str) -> String {
    match kind {
        MaterialType::Name => mask_name(value),
        MaterialType::IdentificationNumber => mask_id_number(value),
        MaterialType::Mobile => mask_mobile(value),
        _ => "<image>".to_string(),
    }
}

/// The first character of a name, then one `*` per character left: `张*`, `欧阳**`
/// becomes `欧***`.
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// The first and last four characters of an ID number, the rest starred:
/// `6305**********0099`. Anything shorter than ten characters is starred entirely, since
/// showing eight of its characters would show most of it.
pub fn mask_id_number(number: &str) -> String {
    keep_ends(number.trim(), 4, 4)
}

/// The first three and last four digits of a mobile: `139****2930`.
pub fn mask_mobile(mobile: &str) -> String {
    keep_ends(mobile.trim(), 3, 4)
}

fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < head + tail + 2 {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - head - tail;
    chars[..head]
        .iter()
        .copied()
        .chain(std::iter::repeat_n('*', hidden))
        .chain(chars[chars.len() - tail..].iter().copied())
        .collect()
}

/// A keyed SHA-256 (HMAC) of `value`, lower-case hex. The same key and value always give
/// the same hash, so reports made with one key can be joined; without the key the hash
/// cannot be reversed by trying every ID number.
pub fn keyed_hash(key: &[u8], value: &str) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(value.trim().as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_the_usual_shapes() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name(" 欧阳娜娜 "), "欧***");
        assert_eq!(mask_name(""), "");
        assert_eq!(mask_id_number("630546198009090099"), "6305**********0099");
        assert_eq!(mask_mobile("13912342930"), "139****2930");
    }

    #[test]
    fn short_values_are_starred_whole() {
        assert_eq!(mask_id_number("12345678"), "********");
        assert_eq!(mask_mobile("1391234"), "*******");
    }

    #[test]
    fn images_are_never_shown() {
        assert_eq!(mask(MaterialType::FacePic, "base64://AAAA"), "<image>");
        assert_eq!(mask(MaterialType::Mobile, "13912342930"), "139****2930");
    }

    #[test]
    fn keyed_hashes_match_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            keyed_hash(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(keyed_hash(b"a", "x"), keyed_hash(b"b", "x"));
    }
}
