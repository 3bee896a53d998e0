//! RFC 3986 percent-encoding as the Alibaba Cloud RPC gateway expects it, and the
//! form decoding the gateway applies to what it receives.
//!
//! The signer, the request builder and the sandbox's verifier all go through this module,
//! so that the bytes on the wire and the bytes that are signed cannot drift apart.

/// Whether `byte` is left as it is: `A-Z a-z 0-9 - _ . ~`.
const fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// The escape of every byte, `%00%01…%FF` with upper-case hex: the escape of `b` starts
/// at `3 * b`.
const ESCAPES: &str = match std::str::from_utf8(&ESCAPE_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("hex escapes are ASCII"),
};

/// The bytes of [`ESCAPES`].
const ESCAPE_BYTES: [u8; 3 * 256] = {
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [0u8; 3 * 256];
    let mut byte = 0;
    while byte < 256 {
        table[3 * byte] = b'%';
        table[3 * byte + 1] = HEX_UPPER[byte >> 4];
        table[3 * byte + 2] = HEX_UPPER[byte & 0x0f];
        byte += 1;
    }
    table
};

/// The escape of `byte`, `%XY`.
fn escape(byte: u8) -> &'static str {
    let at = 3 * usize::from(byte);
    &ESCAPES[at..at + 3]
}

/// `n` in every byte of a word.
const fn splat(n: u8) -> u64 {
    u64::from_ne_bytes([n; 8])
}

/// The high bit of every byte of a word.
const HIGH: u64 = splat(0x80);

/// Marks, with the high bit of each byte, the bytes of `word` that are not ASCII letters or
/// digits: the only ones that may need escaping.
///
/// This tests eight bytes at once with plain arithmetic (no branch, no `unsafe`). With the
/// high bit cleared, a byte plus `0x80 - n` reaches `0x80` exactly when it is at least `n`,
/// and never carries into the next byte.
pub(crate) fn not_alphanumeric(word: u64) -> u64 {
    let at_least = |low7: u64, n: u8| low7.wrapping_add(splat(0x80 - n)) & HIGH;

    let low7 = word & !HIGH;
    let digit = at_least(low7, b'0') & !at_least(low7, b'9' + 1);
    // Setting bit 5 folds upper case onto lower case, and moves no other ASCII byte
    // into `a..=z`.
    let folded = low7 | splat(0x20);
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    !((digit | letter) & !word) & HIGH
}

/// Marks, with the high bit of each byte, the bytes of `word` equal to `byte`.
///
/// Exact for every byte: the sum of the low seven bits and `0x7F` reaches `0x80` for any
/// non-zero byte without carrying into the next one.
pub(crate) fn equal_to(word: u64, byte: u8) -> u64 {
    let diff = word ^ splat(byte);
    !((diff & !HIGH).wrapping_add(splat(0x7f)) | diff) & HIGH
}

/// Input bytes escaped into the stack buffer of [`encode_into`] at a time.
const BLOCK: usize = 1024;

/// The bytes [`escape_word`] may write from where it starts: the word, an escape inside
/// it, and the rest of the word again after the escape.
const WINDOW: usize = 24;

/// Values shorter than this are escaped a byte at a time, straight into the output.
const SHORT: usize = 64;

/// Appends `value` to `out`, percent-encoded with upper-case hex.
///
/// Eight bytes are checked at a time for anything but letters and digits, and written
/// into a stack buffer without branching on where an escape falls: most words of a
/// base64 value hold no byte to escape and most others hold one, so encoding one costs
/// little more than a copy. A byte at a time, the letter/digit branches mispredict on
/// base64 and cost more than encoding the base64 itself. The buffer holds nothing but
/// ASCII, which `push_str` takes after a check that runs at memory speed.
pub fn encode_into(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    if bytes.len() < SHORT {
        for &byte in bytes {
            push_escaped(out, byte);
        }
        return;
    }
    out.reserve(bytes.len() + bytes.len() / 8);
    let mut buf = [0u8; 3 * BLOCK + WINDOW];
    for block in bytes.chunks(BLOCK) {
        let len = escape_block(block, &mut buf);
        match std::str::from_utf8(&buf[..len]) {
            Ok(text) => out.push_str(text),
            // Every byte written is an unreserved ASCII byte or part of a `%XY` escape.
            Err(_) => unreachable!("percent-encoded text is ASCII"),
        }
    }
}

/// Appends one byte, escaped if it is reserved.
fn push_escaped(out: &mut String, byte: u8) {
    if is_unreserved(byte) {
        out.push(char::from(byte));
    } else {
        out.push_str(escape(byte));
    }
}

/// Writes `block` (at most [`BLOCK`] bytes) percent-encoded into `buf`; returns the bytes
/// written.
fn escape_block(block: &[u8], buf: &mut [u8; 3 * BLOCK + WINDOW]) -> usize {
    let mut words = block.chunks_exact(8);
    let mut len = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        len = escape_word(buf, len, word);
    }
    for &byte in words.remainder() {
        len = escape_byte(buf, len, byte);
    }
    len
}

/// Writes the eight bytes of `word` (little-endian) at `buf[len..]`, escaped, and returns
/// the new length. `buf` must have [`WINDOW`] bytes from `len`.
///
/// A word with at most one byte to escape is written whole, then the escape over that
/// byte, then the rest of the word after the escape; writes past the new length are
/// overwritten by the next word.
// Called once per eight bytes of every image: the call would cost a third of the work.
#[inline(always)]
fn escape_word(buf: &mut [u8], len: usize, word: u64) -> usize {
    let window = &mut buf[len..len + WINDOW];
    window[..8].copy_from_slice(&word.to_le_bytes());
    let marks = not_alphanumeric(word);
    if marks == 0 {
        return len + 8;
    }
    if marks & (marks - 1) != 0 {
        return escape_bytes(buf, len, word);
    }
    let at = (marks.trailing_zeros() / 8) as usize;
    let byte = word.to_le_bytes()[at];
    if is_unreserved(byte) {
        return len + 8;
    }
    let rest = word.checked_shr(8 * (at as u32 + 1)).unwrap_or(0);
    window[at..at + 3].copy_from_slice(escape(byte).as_bytes());
    window[at + 3..at + 11].copy_from_slice(&rest.to_le_bytes());
    len + 10
}

/// The plain way of [`escape_word`], a byte at a time, for words with several bytes to
/// escape or keep.
// Kept out of the loop of `escape_word`, which it would only make larger.
#[inline(never)]
fn escape_bytes(buf: &mut [u8], mut len: usize, word: u64) -> usize {
    for byte in word.to_le_bytes() {
        len = escape_byte(buf, len, byte);
    }
    len
}

/// Writes one byte at `buf[len..]`, escaped if it is reserved; returns the new length.
fn escape_byte(buf: &mut [u8], len: usize, byte: u8) -> usize {
    if is_unreserved(byte) {
        buf[len] = byte;
        len + 1
    } else {
        buf[len..len + 3].copy_from_slice(escape(byte).as_bytes());
        len + 3
    }
}

/// Returns `value` percent-encoded.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    encode_into(&mut out, value);
    out
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space and `%XY`
/// a byte. A malformed escape is kept literally, as lenient servers do.
pub fn form_decode(component: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(|h| hex_pair(h[0], h[1])) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
}

/// Splits a form-encoded string into decoded `(name, value)` pairs, keeping blank values.
pub fn parse_form(input: &str) -> Result<Vec<(String, String)>, std::string::FromUtf8Error> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    u8::try_from(digit(high)? * 16 + digit(low)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_with_the_rfc_3986_allow_list() {
        assert_eq!(encode("a-z_A.Z~09"), "a-z_A.Z~09");
        assert_eq!(encode("a b*c+d/e=f:g"), "a%20b%2Ac%2Bd%2Fe%3Df%3Ag");
        assert_eq!(encode("张"), "%E5%BC%A0");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn form_decoding_turns_plus_into_space_and_keeps_blanks() {
        let pairs = parse_form("a=1+2&b=&c=%2B%2F%3D&d").unwrap();
        let expected = [("a", "1 2"), ("b", ""), ("c", "+/="), ("d", "")];
        let expected: Vec<_> = expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn malformed_escapes_stay_literal() {
        assert_eq!(form_decode("100%").unwrap(), "100%");
        assert_eq!(form_decode("%zz1").unwrap(), "%zz1");
        assert_eq!(form_decode("%E5%BC%A0").unwrap(), "张");
    }

    /// The byte-at-a-time encoder the fast one must agree with.
    fn straightforward(value: &str) -> String {
        let mut out = String::new();
        for &byte in value.as_bytes() {
            if is_unreserved(byte) {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    /// A small xorshift, so that the random cases are the same on every run.
    fn random(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Every byte value at every position of a word, beside random neighbours.
    fn words_with_every_byte() -> impl Iterator<Item = ([u8; 8], usize)> {
        let mut state = 0x2545_f491_4f6c_dd1d;
        (0..=255u8).flat_map(move |byte| {
            let background = random(&mut state).to_le_bytes();
            (0..8).map(move |at| {
                let mut word = background;
                word[at] = byte;
                (word, at)
            })
        })
    }

    #[test]
    fn word_marks_agree_with_the_byte_tests_for_every_byte() {
        for (word, at) in words_with_every_byte() {
            let byte = word[at];
            let flagged = |marks: u64| marks >> (8 * at + 7) & 1 == 1;
            let value = u64::from_le_bytes(word);
            assert_eq!(
                flagged(not_alphanumeric(value)),
                !byte.is_ascii_alphanumeric(),
                "{byte:#04x}"
            );
            assert_eq!(flagged(equal_to(value, b'%')), byte == b'%', "{byte:#04x}");
        }
    }

    #[test]
    fn fast_encoding_matches_the_straightforward_one_on_every_byte_value() {
        // Every ASCII byte, then characters whose UTF-8 bytes cover 0x80..=0xF4.
        let mut text: String = (0..128u8).map(char::from).collect();
        text.extend([
            '\u{80}',
            '\u{7ff}',
            'é',
            '张',
            '\u{ffff}',
            '😀',
            '\u{10ffff}',
        ]);
        text.extend((0x80..0x800).step_by(7).filter_map(char::from_u32));
        text.extend((0x800..0x10000).step_by(251).filter_map(char::from_u32));
        text.extend((0x10000..0x110000).step_by(4093).filter_map(char::from_u32));
        // Each start shifts the text against the eight-byte words.
        for start in text.char_indices().map(|(i, _)| i).take(16) {
            assert_eq!(encode(&text[start..]), straightforward(&text[start..]));
        }
    }

    #[test]
    fn fast_encoding_matches_the_straightforward_one_on_random_text() {
        let pieces = [
            "A", "z", "9", "+", "/", "=", "%", "-", "_", ".", "~", " ", "张", "é", "😀",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for len in (0..300).chain([700, 2_000, 5_000]) {
            let text: String = (0..len)
                .map(|_| pieces[random(&mut state) as usize % pieces.len()])
                .collect();
            assert_eq!(encode(&text), straightforward(&text), "{text}");
        }
    }

    #[test]
    fn round_trips_through_encode_and_decode() {
        let value = "base64://+//Y/+A= 张三 *~";
        assert_eq!(form_decode(&encode(value)).unwrap(), value);
    }
}
