//! The checks a row must pass before anything is paid for: ID numbers, mobiles and names
//! that could be real, and images that are there, decodable and of a sensible size.
//!
//! Both `check` (the pre-flight command) and `run` use these, so a row that `check` calls
//! invalid is never submitted by `run`. Every message masks the personal value it is about.

pub mod idnumber;

use std::fmt;

use crate::cloudauth::api::MaterialType;
use crate::images::{self, Depth, ImageError};
use crate::materials::{Material, Value};
use crate::pii;
use crate::spec::{Fit, ImagePolicy};

/// Why a row is invalid, as a stable code to count and filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The row cannot be read from the input.
    RowUnreadable,
    /// The key column is empty.
    KeyEmpty,
    /// An earlier row has the same key.
    KeyDuplicate,
    /// The ticket id template cannot be filled.
    TicketMissing,
    /// An earlier row has the same ticket id.
    TicketDuplicate,
    /// A required text material is empty.
    ValueMissing,
    /// An ID number is not 17 digits and a digit or X.
    IdNumberFormat,
    /// An ID number's birth date is not a real past date.
    IdNumberBirthDate,
    /// An ID number's check digit is wrong.
    IdNumberCheckDigit,
    /// A mobile is not a mainland 11-digit number.
    MobileFormat,
    /// A name is not plausible.
    NameImplausible,
    /// A required image is not there.
    ImageMissing,
    /// An image file cannot be read, or an image value is malformed.
    ImageUnreadable,
    /// An image is neither JPEG nor PNG.
    ImageNotAnImage,
    /// An image does not decode.
    ImageCorrupt,
    /// An image is too small to judge a face by.
    ImageTooSmall,
    /// An image is over the limit and the spec says to reject it.
    ImageTooLarge,
}

impl Reason {
    /// Every reason, in the order they are listed in plans.
    pub const ALL: [Reason; 17] = [
        Reason::RowUnreadable,
        Reason::KeyEmpty,
        Reason::KeyDuplicate,
        Reason::TicketMissing,
        Reason::TicketDuplicate,
        Reason::ValueMissing,
        Reason::IdNumberFormat,
        Reason::IdNumberBirthDate,
        Reason::IdNumberCheckDigit,
        Reason::MobileFormat,
        Reason::NameImplausible,
        Reason::ImageMissing,
        Reason::ImageUnreadable,
        Reason::ImageNotAnImage,
        Reason::ImageCorrupt,
        Reason::ImageTooSmall,
        Reason::ImageTooLarge,
    ];

    /// The code, such as `id_number.check_digit`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::RowUnreadable => "row.unreadable",
            Reason::KeyEmpty => "key.empty",
            Reason::KeyDuplicate => "key.duplicate",
            Reason::TicketMissing => "ticket_id.missing",
            Reason::TicketDuplicate => "ticket_id.duplicate",
            Reason::ValueMissing => "value.missing",
            Reason::IdNumberFormat => "id_number.format",
            Reason::IdNumberBirthDate => "id_number.birth_date",
            Reason::IdNumberCheckDigit => "id_number.check_digit",
            Reason::MobileFormat => "mobile.format",
            Reason::NameImplausible => "name.implausible",
            Reason::ImageMissing => "image.missing",
            Reason::ImageUnreadable => "image.unreadable",
            Reason::ImageNotAnImage => "image.not_an_image",
            Reason::ImageCorrupt => "image.corrupt",
            Reason::ImageTooSmall => "image.too_small",
            Reason::ImageTooLarge => "image.too_large",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One thing wrong with a row: its reason, and a message that names the material and the
/// place with the personal value masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The reason.
    pub reason: Reason,
    /// What is wrong, for people.
    pub detail: String,
}

impl Problem {
    /// A problem with a message.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Problem {
        Problem {
            reason,
            detail: detail.into(),
        }
    }

    /// The problems of a row as one line: `reason: detail; reason: detail`.
    pub fn join(problems: &[Problem]) -> String {
        let parts: Vec<String> = problems.iter().map(Problem::to_string).collect();
        parts.join("; ")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// Checks every resolved material of a row. `depth` says how far images are read: their
/// header in `run`, where a full decode would double the work of every row, and all of
/// them in `check`.
pub fn materials(materials: &[Material], policy: &ImagePolicy, depth: Depth) -> Vec<Problem> {
    materials
        .iter()
        .filter_map(|m| material(m, policy, depth).err())
        .collect()
}

fn material(material: &Material, policy: &ImagePolicy, depth: Depth) -> Result<(), Problem> {
    let kind = material.kind;
    match &material.value {
        Value::Text(text) if !kind.is_image() => text_value(kind, text),
        Value::Text(address) => match address.strip_prefix("base64://") {
            Some(data) => inline_image(kind, data, policy, depth),
            // The service fetches URLs and OSS objects itself; they cannot be judged here.
            None => Ok(()),
        },
        Value::File { path, bytes } => {
            let place = path.display().to_string();
            let inspected =
                images::inspect_file(path, depth).map_err(|e| image_problem(kind, &place, &e))?;
            size(kind, &place, &inspected, *bytes as usize, policy)
        }
    }
}

fn inline_image(
    kind: MaterialType,
    data: &str,
    policy: &ImagePolicy,
    depth: Depth,
) -> Result<(), Problem> {
    use base64::Engine as _;

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| Problem::new(Reason::ImageUnreadable, format!("{kind}: bad base64: {e}")))?;
    let place = "the inline value";
    let inspected = images::inspect(&bytes, depth).map_err(|e| image_problem(kind, place, &e))?;
    size(kind, place, &inspected, bytes.len(), policy)
}

fn size(
    kind: MaterialType,
    place: &str,
    inspected: &images::Inspected,
    bytes: usize,
    policy: &ImagePolicy,
) -> Result<(), Problem> {
    images::check_size(inspected, policy.min_side).map_err(|e| image_problem(kind, place, &e))?;
    if bytes > policy.max_bytes && policy.fit == Fit::Reject {
        let detail = format!(
            "{kind}: {place} is {bytes} bytes, over the {} byte limit (images.fit: reject)",
            policy.max_bytes
        );
        return Err(Problem::new(Reason::ImageTooLarge, detail));
    }
    Ok(())
}

fn image_problem(kind: MaterialType, place: &str, error: &ImageError) -> Problem {
    let reason = match error {
        ImageError::NotAnImage { .. } => Reason::ImageNotAnImage,
        ImageError::TooSmall { .. } => Reason::ImageTooSmall,
        ImageError::Io { .. } => Reason::ImageUnreadable,
        _ => Reason::ImageCorrupt,
    };
    Problem::new(reason, format!("{kind}: {place}: {error}"))
}

/// Checks a text material: ID numbers, mobiles and names by their rules.
pub fn text_value(kind: MaterialType, value: &str) -> Result<(), Problem> {
    let masked = || pii::mask(kind, value);
    match kind {
        MaterialType::IdentificationNumber => idnumber::validate(value).map_err(|e| {
            let reason = match e {
                idnumber::IdNumberError::Format => Reason::IdNumberFormat,
                idnumber::IdNumberError::BirthDate => Reason::IdNumberBirthDate,
                idnumber::IdNumberError::CheckDigit => Reason::IdNumberCheckDigit,
            };
            Problem::new(reason, format!("{kind} {}: {e}", masked()))
        }),
        MaterialType::Mobile if !is_mobile(value) => Err(Problem::new(
            Reason::MobileFormat,
            format!(
                "{kind} {}: not a mainland mobile (11 digits from 13 to 19)",
                masked()
            ),
        )),
        MaterialType::Name => plausible_name(value).map_err(|why| {
            Problem::new(
                Reason::NameImplausible,
                format!("{kind} {}: {why}", masked()),
            )
        }),
        _ => Ok(()),
    }
}

/// A mainland mobile: 11 digits, the first 1 and the second 3 to 9.
pub fn is_mobile(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'1'
        && (b'3'..=b'9').contains(&bytes[1])
}

/// The most characters a name may have: long transliterated names of minorities run to
/// about 30, with their separating dots.
const MAX_NAME_CHARS: usize = 40;

/// Whether `name` could be a person's name as written on an ID card: Chinese characters,
/// or Latin letters for the names of foreigners, with the middle dot that separates the
/// parts of transliterated names, and spaces between Latin words.
pub fn plausible_name(name: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() < 2 {
        return Err("too short for a name");
    }
    if chars.len() > MAX_NAME_CHARS {
        return Err("too long for a name");
    }
    if chars.iter().any(char::is_ascii_digit) {
        return Err("a name has no digits");
    }
    if !chars
        .iter()
        .all(|&c| is_ideograph(c) || c.is_ascii_alphabetic() || is_separator(c))
    {
        return Err("holds characters that are not in names");
    }
    let (first, last) = (chars[0], chars[chars.len() - 1]);
    let doubled = chars
        .windows(2)
        .any(|w| is_separator(w[0]) && is_separator(w[1]));
    if is_separator(first) || is_separator(last) || doubled {
        return Err("has a separator out of place");
    }
    Ok(())
}

/// A CJK unified ideograph, in the main block or its extensions.
fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{20000}'..='\u{3134F}')
}

/// The middle dots used between the parts of a transliterated name, and the space and
/// hyphen of Latin names.
fn is_separator(c: char) -> bool {
    matches!(c, '·' | '•' | '・' | '．' | ' ' | '-' | '\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_are_eleven_digits_from_13_to_19() {
        assert!(is_mobile("13912342930"));
        assert!(is_mobile("19912342930"));
        assert!(!is_mobile("12912342930"));
        assert!(!is_mobile("1391234293"));
        assert!(!is_mobile("+8613912342930"));
        assert!(!is_mobile("1391234293a"));
    }

    #[test]
    fn names_of_people_are_plausible() {
        for name in [
            "张三",
            "欧阳娜娜",
            "买买提·艾力",
            "John Smith",
            "Anne-Marie O'Neil",
        ] {
            assert_eq!(plausible_name(name), Ok(()), "{name}");
        }
        for name in ["张", "张三3", "N/A", "·张三", "张··三", "张三@", "  "] {
            assert!(plausible_name(name).is_err(), "{name}");
        }
        assert!(plausible_name(&"张".repeat(41)).is_err());
    }

    #[test]
    fn text_problems_mask_the_value() {
        let problem =
            text_value(MaterialType::IdentificationNumber, "630546198009090099").unwrap_err();
        assert_eq!(problem.reason, Reason::IdNumberCheckDigit);
        assert!(problem.detail.contains("6305**********0099"), "{problem}");
        assert!(!problem.detail.contains("630546198009090099"));

        let problem = text_value(MaterialType::Mobile, "23912342930").unwrap_err();
        assert_eq!(problem.reason, Reason::MobileFormat);
        assert!(problem.detail.contains("239****2930"), "{problem}");

        let problem = text_value(MaterialType::Name, "张3").unwrap_err();
        assert_eq!(
            problem.to_string(),
            "name.implausible: Name 张*: a name has no digits"
        );
    }

    #[test]
    fn reason_codes_are_distinct() {
        let mut codes: Vec<_> = Reason::ALL.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }
}
