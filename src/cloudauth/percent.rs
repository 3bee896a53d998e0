//! RFC 3986 percent-encoding as the Alibaba Cloud RPC gateway expects it, and the
//! form decoding the gateway applies to what it receives.
//!
//! The signer, the request builder and the sandbox's verifier all go through this module,
//! so that the bytes on the wire and the bytes that are signed cannot drift apart.

/// Whether `byte` is left as it is: `A-Z a-z 0-9 - _ . ~`.
const fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `value` to `out`, percent-encoded with upper-case hex.
///
/// Runs of unreserved bytes are copied in one piece: base64 image values are mostly
/// unreserved, and this keeps encoding them close to a plain copy.
pub fn encode_into(out: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if is_unreserved(byte) {
            continue;
        }
        // A run of unreserved bytes is ASCII, so its ends are character boundaries.
        if start < i {
            out.push_str(&value[start..i]);
        }
        out.push('%');
        out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
        start = i + 1;
    }
    out.push_str(&value[start..]);
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

    #[test]
    fn round_trips_through_encode_and_decode() {
        let value = "base64://+//Y/+A= 张三 *~";
        assert_eq!(form_decode(&encode(value)).unwrap(), value);
    }
}
