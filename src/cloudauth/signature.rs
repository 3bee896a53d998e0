//! POP RPC signature version 1.0 (HMAC-SHA1), as PROTOCOL.md §2 describes it.
//!
//! A request's parameters are percent-encoded exactly once, into the text that goes on the
//! wire ([`EncodedParams`]). The StringToSign is never materialised on the client: the
//! canonical string is streamed into the HMAC straight from those encoded bytes, with the
//! second round of encoding (`%` → `%25`, `=` → `%3D`, `&` → `%26`) applied on the fly. The
//! sandbox renders the same stream into a `String` to verify requests and to quote it in
//! `SignatureDoesNotMatch`, so client and server share one canonicalisation.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::percent;

/// The HTTP method, which is the first line of the StringToSign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: every parameter in the query string.
    Get,
    /// `POST`: common parameters in the query, action parameters in a form body.
    Post,
}

impl Method {
    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Request parameters, percent-encoded once into their wire form (`a=1&b=2`).
///
/// Each entry remembers its decoded name, for sorting, and where its encoded name and
/// value lie in the text, for signing.
#[derive(Debug, Clone, Default)]
pub struct EncodedParams {
    text: String,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Box<str>,
    encoded_name: Range<usize>,
    encoded_value: Range<usize>,
}

impl EncodedParams {
    /// An empty set with room for `bytes` of encoded text.
    pub fn with_capacity(bytes: usize) -> Self {
        EncodedParams {
            text: String::with_capacity(bytes),
            entries: Vec::new(),
        }
    }

    /// An empty set that writes into `buffer`, cleared, growing it past `bytes` if need be.
    pub fn in_buffer(mut buffer: String, bytes: usize) -> Self {
        buffer.clear();
        buffer.reserve_exact(bytes);
        EncodedParams {
            text: buffer,
            entries: Vec::new(),
        }
    }

    /// Gives up the encoded text, for its allocation to be used again.
    pub fn into_text(self) -> String {
        self.text
    }

    /// Appends one parameter; a blank value is kept and signed.
    pub fn push(&mut self, name: &str, value: &str) {
        self.push_with(name, |out| percent::encode_into(out, value));
    }

    /// Appends one parameter whose value `write` percent-encodes straight into the text.
    ///
    /// This lets a caller produce a large value (a base64 image) in pieces without first
    /// building it as a string of its own. `write` must append only percent-encoded text.
    pub fn push_with(&mut self, name: &str, write: impl FnOnce(&mut String)) {
        if !self.text.is_empty() {
            self.text.push('&');
        }
        let name_start = self.text.len();
        percent::encode_into(&mut self.text, name);
        let encoded_name = name_start..self.text.len();
        self.text.push('=');
        let value_start = self.text.len();
        write(&mut self.text);
        let encoded_value = value_start..self.text.len();
        self.entries.push(Entry {
            name: name.into(),
            encoded_name,
            encoded_value,
        });
    }

    /// The wire form, ready for a query string or a form body.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether no parameter has been pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn encoded(&self, entry: &Entry) -> (&str, &str) {
        (
            &self.text[entry.encoded_name.clone()],
            &self.text[entry.encoded_value.clone()],
        )
    }
}

/// Receives the StringToSign in pieces.
trait Sink {
    fn write(&mut self, bytes: &[u8]);
}

impl Sink for Hmac<Sha1> {
    fn write(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Collects the StringToSign so that the HMAC is fed in large blocks: a base64 value has an
/// escape every 30 bytes or so, and feeding each piece alone would cost more than hashing.
struct Staged<'a, S: Sink> {
    sink: &'a mut S,
    /// A fixed block; `buf[..len]` is staged, the rest is room for whole-word writes.
    buf: Vec<u8>,
    len: usize,
}

/// How much is staged before the HMAC gets it.
const STAGE_BYTES: usize = 16 * 1024;

/// The bytes [`reencode_word`] may write from where it starts: a word of eight `%` grows
/// to 24 bytes.
const WINDOW: usize = 24;

impl<'a, S: Sink> Staged<'a, S> {
    fn new(sink: &'a mut S) -> Self {
        Staged {
            sink,
            buf: vec![0; STAGE_BYTES],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > STAGE_BYTES {
            self.flush();
            if bytes.len() > STAGE_BYTES {
                self.sink.write(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Pushes already-encoded text encoded once more: only `%` needs escaping, since the
    /// text holds nothing but unreserved bytes and `%XY` escapes.
    fn push_reencoded(&mut self, encoded: &str) {
        let mut words = encoded.as_bytes().chunks_exact(8);
        while words.len() > 0 {
            if self.len + WINDOW > STAGE_BYTES {
                self.flush();
            }
            // A word grows to 24 bytes at most, so this many fit without a check. The
            // length is kept in a local: the compiler cannot tell that writing into the
            // buffer leaves `self.len` alone, and would reload it after every write.
            let room = (STAGE_BYTES - WINDOW - self.len) / WINDOW + 1;
            let mut len = self.len;
            for word in words.by_ref().take(room) {
                let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                len = reencode_word(&mut self.buf, len, word);
            }
            self.len = len;
        }
        for &byte in words.remainder() {
            match byte {
                b'%' => self.push(b"%25"),
                other => self.push(&[other]),
            }
        }
    }

    fn flush(&mut self) {
        if self.len > 0 {
            self.sink.write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

/// Writes the eight bytes of `word` (little-endian) at `buf[len..]`, each `%` followed by
/// `25`, and returns the new length. `buf` must have [`WINDOW`] bytes from `len`.
///
/// Most words of a base64 value hold no `%` and few hold two. A word with at most one is
/// written without branching on where the `%` is: the word, then `25` after the `%`, then
/// the rest of the word after that. Branching on it mispredicts so often that it would
/// cost more than hashing the bytes.
// Called once per eight bytes of a 6 MB body: the call itself would cost a third as much
// as the work, and the compiler does not inline it on its own.
#[inline(always)]
fn reencode_word(buf: &mut [u8], len: usize, word: u64) -> usize {
    let window = &mut buf[len..len + WINDOW];
    let marks = percent::equal_to(word, b'%');
    if marks & marks.wrapping_sub(1) != 0 {
        return len + reencode_bytes(window, word);
    }

    // Where the `%` is, or 8 if there is none: the writes after the word then land past
    // the new length, and the next word overwrites them.
    let at = (marks.trailing_zeros() / 8) as usize;
    let rest = word.checked_shr(8 * (at as u32 + 1)).unwrap_or(0);
    window[..8].copy_from_slice(&word.to_le_bytes());
    window[at + 1..at + 3].copy_from_slice(b"25");
    window[at + 3..at + 11].copy_from_slice(&rest.to_le_bytes());
    len + 8 + 2 * usize::from(marks != 0)
}

/// The plain way of [`reencode_word`], a byte at a time; returns the bytes written.
// Kept out of the loop of `reencode_word`, which it would only make larger: it runs for
// one word in forty.
#[inline(never)]
fn reencode_bytes(window: &mut [u8], word: u64) -> usize {
    let mut len = 0;
    for byte in word.to_le_bytes() {
        window[len] = byte;
        len += 1;
        if byte == b'%' {
            window[len..len + 2].copy_from_slice(b"25");
            len += 2;
        }
    }
    len
}

/// Streams the StringToSign of a request into `sink`.
///
/// Query and body parameters are merged; where a name appears in both, the body's value
/// wins, as in the official SDKs. `Signature` itself is never signed.
fn write_string_to_sign<S: Sink>(
    method: Method,
    query: &EncodedParams,
    body: &EncodedParams,
    sink: &mut S,
) {
    let mut merged: Vec<(&str, &EncodedParams, &Entry)> =
        Vec::with_capacity(query.len() + body.len());
    for params in [query, body] {
        for entry in &params.entries {
            if &*entry.name != "Signature" {
                merged.push((&entry.name, params, entry));
            }
        }
    }
    // A stable sort keeps the query entry before the body entry of the same name, so
    // dedup_by, which keeps the first of a run, must look from the end.
    merged.sort_by(|a, b| a.0.cmp(b.0));
    merged.reverse();
    merged.dedup_by(|later, earlier| later.0 == earlier.0);
    merged.reverse();

    let mut out = Staged::new(sink);
    out.push(method.as_str().as_bytes());
    out.push(b"&%2F&");
    for (i, (_, params, entry)) in merged.iter().enumerate() {
        if i > 0 {
            out.push(b"%26");
        }
        let (name, value) = params.encoded(entry);
        out.push_reencoded(name);
        out.push(b"%3D");
        out.push_reencoded(value);
    }
    out.flush();
}

/// The StringToSign of a request, as text.
pub fn string_to_sign(method: Method, query: &EncodedParams, body: &EncodedParams) -> String {
    let mut bytes = Vec::new();
    write_string_to_sign(method, query, body, &mut bytes);
    // Only ASCII is ever written: every non-ASCII byte was percent-encoded.
    String::from_utf8(bytes).unwrap_or_default()
}

/// The base64 HMAC-SHA1 signature of a request, keyed with `secret + "&"`.
pub fn sign(secret: &str, method: Method, query: &EncodedParams, body: &EncodedParams) -> String {
    let mut mac = hmac_sha1(format!("{secret}&").as_bytes());
    write_string_to_sign(method, query, body, &mut mac);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// An HMAC-SHA1 keyed with `key`.
pub(crate) fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    // HMAC accepts keys of every length, so this cannot fail.
    <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests {
    //! The known-answer vectors of PROTOCOL.md §2.2, produced by the official Python SDK.

    use super::*;

    const NONCE: &str = "3ee8c9c4-5a1f-4bb2-8a8f-6b1d7c2a9e01";

    fn common(action: &str) -> EncodedParams {
        let mut query = EncodedParams::default();
        for (name, value) in [
            ("Version", "2018-09-16"),
            ("Action", action),
            ("Format", "JSON"),
            ("RegionId", "cn-hangzhou"),
            ("Timestamp", "2019-06-01T08:00:00Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", NONCE),
            ("AccessKeyId", "testid"),
        ] {
            query.push(name, value);
        }
        query
    }

    fn ticket_query(action: &str) -> EncodedParams {
        let mut query = common(action);
        query.push("Biz", "RPBasic");
        query.push("TicketId", "ticket-0001");
        query
    }

    fn check(method: Method, query: &EncodedParams, body: &EncodedParams, sts: &str, sig: &str) {
        assert_eq!(string_to_sign(method, query, body), sts);
        assert_eq!(sign("testsecret", method, query, body), sig);
    }

    #[test]
    fn vector_a_get_verify_token() {
        let sts = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DGetVerifyToken%26Biz%3DRPBasic%26Format%3DJSON%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c9c4-5a1f-4bb2-8a8f-6b1d7c2a9e01%26SignatureType%3D%26SignatureVersion%3D1.0%26TicketId%3Dticket-0001%26Timestamp%3D2019-06-01T08%253A00%253A00Z%26Version%3D2018-09-16";
        let query = ticket_query("GetVerifyToken");
        check(
            Method::Get,
            &query,
            &EncodedParams::default(),
            sts,
            "dA2bCZvNyHBBb/wGOIAgBbC8d0M=",
        );
    }

    #[test]
    fn vector_b_submit_materials_post() {
        let mut body = EncodedParams::default();
        for (name, value) in [
            ("VerifyToken", "8eb57ce35d584cbb9724198cb0ac6b60"),
            ("Material.1.MaterialType", "Name"),
            ("Material.1.Value", "张三"),
            ("Material.2.MaterialType", "IdentificationNumber"),
            ("Material.2.Value", "630546198009090099"),
            ("Material.3.MaterialType", "FacePic"),
            ("Material.3.Value", "base64://+//Y/+A="),
        ] {
            body.push(name, value);
        }
        let wire = "VerifyToken=8eb57ce35d584cbb9724198cb0ac6b60&Material.1.MaterialType=Name&Material.1.Value=%E5%BC%A0%E4%B8%89&Material.2.MaterialType=IdentificationNumber&Material.2.Value=630546198009090099&Material.3.MaterialType=FacePic&Material.3.Value=base64%3A%2F%2F%2B%2F%2FY%2F%2BA%3D";
        assert_eq!(body.as_str(), wire);

        let sts = "POST&%2F&AccessKeyId%3Dtestid%26Action%3DSubmitMaterials%26Format%3DJSON%26Material.1.MaterialType%3DName%26Material.1.Value%3D%25E5%25BC%25A0%25E4%25B8%2589%26Material.2.MaterialType%3DIdentificationNumber%26Material.2.Value%3D630546198009090099%26Material.3.MaterialType%3DFacePic%26Material.3.Value%3Dbase64%253A%252F%252F%252B%252F%252FY%252F%252BA%253D%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c9c4-5a1f-4bb2-8a8f-6b1d7c2a9e01%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2019-06-01T08%253A00%253A00Z%26VerifyToken%3D8eb57ce35d584cbb9724198cb0ac6b60%26Version%3D2018-09-16";
        check(
            Method::Post,
            &common("SubmitMaterials"),
            &body,
            sts,
            "dbbYhVI7E6xWq/be13ggVbZpCqY=",
        );
    }

    #[test]
    fn vector_c_get_status() {
        let sts = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DGetStatus%26Biz%3DRPBasic%26Format%3DJSON%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c9c4-5a1f-4bb2-8a8f-6b1d7c2a9e01%26SignatureType%3D%26SignatureVersion%3D1.0%26TicketId%3Dticket-0001%26Timestamp%3D2019-06-01T08%253A00%253A00Z%26Version%3D2018-09-16";
        let query = ticket_query("GetStatus");
        check(
            Method::Get,
            &query,
            &EncodedParams::default(),
            sts,
            "StJI19UgMQbH/EKtQ7yzs9TbSEo=",
        );
    }

    #[test]
    fn extra_vector_without_signature_type() {
        let mut query = EncodedParams::default();
        for (name, value) in [
            ("Version", "2018-09-16"),
            ("Action", "GetStatus"),
            ("Format", "JSON"),
            ("RegionId", "cn-hangzhou"),
            ("Timestamp", "2019-06-01T08:00:00Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", NONCE),
            ("AccessKeyId", "testid"),
            ("Biz", "RPBasic"),
            ("TicketId", "ticket-0001"),
        ] {
            query.push(name, value);
        }
        let empty = EncodedParams::default();
        assert_eq!(
            sign("testsecret", Method::Get, &query, &empty),
            "KakwFw0Xi1WxCqfY90okDvVM0Wg="
        );
    }

    #[test]
    fn extra_vector_get_materials() {
        let query = ticket_query("GetMaterials");
        let empty = EncodedParams::default();
        assert_eq!(
            sign("testsecret", Method::Get, &query, &empty),
            "VC9gu6CdFJugddwJI9exnyUzTJI="
        );
    }

    #[test]
    fn extra_vector_get_verify_token_post_with_binding() {
        let mut query = common("GetVerifyToken");
        query.push("Biz", "RPBasic");
        query.push("TicketId", "ticket-0002");
        query.push("UserData", r#"{"k": "a b*c~d"}"#);
        let mut body = EncodedParams::default();
        body.push("Binding", r#"{"Name":"张三"}"#);

        let sts = string_to_sign(Method::Post, &query, &body);
        assert!(sts.contains("a%2520b%252Ac~d"), "{sts}");
        assert_eq!(
            sign("testsecret", Method::Post, &query, &body),
            "9pBycJAoa6jAUyp/QiXIP34nP+E="
        );
    }

    #[test]
    fn body_value_wins_over_query_value_of_the_same_name() {
        let mut query = ticket_query("GetStatus");
        query.push("Shared", "from-query");
        let mut body = EncodedParams::default();
        body.push("Shared", "from-body");

        let sts = string_to_sign(Method::Post, &query, &body);
        assert!(sts.contains("Shared%3Dfrom-body"), "{sts}");
        assert!(!sts.contains("from-query"), "{sts}");
    }

    #[test]
    fn signature_parameter_is_left_out_and_names_sort_by_bytes() {
        let mut query = EncodedParams::default();
        query.push("Material.2.Value", "b");
        query.push("Signature", "ignored");
        query.push("Material.10.Value", "a");
        let sts = string_to_sign(Method::Get, &query, &EncodedParams::default());
        assert_eq!(sts, "GET&%2F&Material.10.Value%3Da%26Material.2.Value%3Db");
    }

    /// The StringToSign of a body with one value, built the straightforward way.
    fn expected_string_to_sign(value: &str) -> String {
        let encoded = percent::encode(value);
        format!("POST&%2F&V%3D{}", encoded.replace('%', "%25"))
    }

    #[test]
    fn reencoding_in_words_matches_the_straightforward_way() {
        // Dense and sparse escapes, runs of them, multi-byte characters, every length
        // around a word, and values longer than the stage.
        let pieces = ["Ab", "+", "/", "=", "x9", "张", " ", "QUJD", "%"];
        let mut state: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        for len in (0..200).chain([5_000, 40_000]) {
            let value: String = (0..len).map(|_| pieces[next() % pieces.len()]).collect();
            let mut body = EncodedParams::default();
            body.push("V", &value);
            let sts = string_to_sign(Method::Post, &EncodedParams::default(), &body);
            assert_eq!(sts, expected_string_to_sign(&value), "length {len}");
        }
    }

    #[test]
    fn large_values_stream_through_the_stage_unchanged() {
        let value = "+/=".repeat(20_000);
        let mut body = EncodedParams::default();
        body.push("V", &value);
        let sts = string_to_sign(Method::Post, &EncodedParams::default(), &body);
        assert_eq!(
            sts,
            format!("POST&%2F&V%3D{}", "%252B%252F%253D".repeat(20_000))
        );
    }
}
