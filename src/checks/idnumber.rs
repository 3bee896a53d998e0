//! PRC resident ID numbers (GB 11643-1999).
//!
//! An ID number is 18 characters: a 6-digit region code, the birth date as `YYYYMMDD`, a
//! 3-digit sequence (odd for men, even for women) and a check character computed with
//! ISO 7064 MOD 11-2, which is `X` when the check value is 10.

/// The weights of the first 17 digits, 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each remainder of the weighted sum mod 11.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// The earliest birth year accepted: the standard dates from 1999, and no one alive was born
/// before 1890.
const FIRST_BIRTH_YEAR: u32 = 1890;

/// What is wrong with an ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 17 digits followed by a digit or X.
    #[error("not 18 characters of 17 digits and a digit or X")]
    Format,
    /// The birth date is not a real date, or lies in the future or before 1890.
    #[error("the birth date is not a valid date")]
    BirthDate,
    /// The last character does not match the first 17.
    #[error("the check digit is wrong")]
    CheckDigit,
}

/// The check character for the first 17 digits, or `None` if `first17` is not 17 ASCII
/// digits.
pub fn check_digit(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    Some(char::from(CHECK_CHARS[(sum % 11) as usize]))
}

/// Whether `number` is 18 characters with a correct check character.
///
/// Only the checksum is verified, not the region or the date: the sandbox uses this to
/// judge what it is sent, as the service would.
pub fn is_valid(number: &str) -> bool {
    matches!(
        validate_at(number, None),
        Ok(()) | Err(IdNumberError::BirthDate)
    )
}

/// Checks the format, the birth date (a real day, not in the future) and the check digit,
/// in that order. A lower-case `x` is accepted.
pub fn validate(number: &str) -> Result<(), IdNumberError> {
    let today = time::OffsetDateTime::now_utc().date();
    let today = (
        today.year() as u32,
        u32::from(u8::from(today.month())),
        u32::from(today.day()),
    );
    validate_at(number, Some(today))
}

/// [`validate`] against a given today; `None` skips the date.
fn validate_at(number: &str, today: Option<(u32, u32, u32)>) -> Result<(), IdNumberError> {
    let bytes = number.as_bytes();
    let well_formed = bytes.len() == 18
        && bytes[..17].iter().all(u8::is_ascii_digit)
        && (bytes[17].is_ascii_digit() || bytes[17] == b'X' || bytes[17] == b'x');
    if !well_formed {
        return Err(IdNumberError::Format);
    }
    if let Some(today) = today {
        let field = |range: std::ops::Range<usize>| number[range].parse::<u32>().unwrap_or(0);
        let born = (field(6..10), field(10..12), field(12..14));
        let (year, month, day) = born;
        let real_day = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        if year < FIRST_BIRTH_YEAR || !real_day || born > today {
            return Err(IdNumberError::BirthDate);
        }
    }
    let expected = check_digit(&number[..17]);
    if expected != Some(char::from(bytes[17].to_ascii_uppercase())) {
        return Err(IdNumberError::CheckDigit);
    }
    Ok(())
}

/// Appends the check character to 17 digits.
pub fn complete(first17: &str) -> Option<String> {
    Some(format!("{first17}{}", check_digit(first17)?))
}

/// The number of days in `month` of `year`, under the Gregorian rules.
pub fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Option<(u32, u32, u32)> = Some((2026, 12, 3));

    #[test]
    fn check_digit_of_known_numbers() {
        // 1·7+1·9+0·10+1·5+0·8+5·4+1·2+9·1+4·6+9·3+1·7+2·9+3·10+1·5+0·8+0·4+2·2 = 167,
        // 167 mod 11 = 2, which maps to X.
        assert_eq!(check_digit("11010519491231002"), Some('X'));
        // Weighted sum 195, 195 mod 11 = 8, which maps to 4.
        assert_eq!(check_digit("44052418800101001"), Some('4'));
        // Weighted sum 353, 353 mod 11 = 1, which maps to 0.
        assert_eq!(check_digit("63054619800909009"), Some('0'));
    }

    #[test]
    fn completes_numbers() {
        assert_eq!(
            complete("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
        assert_eq!(complete("1234"), None);
    }

    #[test]
    fn the_reference_example_has_a_wrong_check_digit() {
        assert!(!is_valid("630546198009090099"));
        assert_eq!(
            validate_at("630546198009090099", TODAY),
            Err(IdNumberError::CheckDigit)
        );
        assert!(is_valid("630546198009090090"));
        assert!(is_valid("11010519491231002X"));
        assert!(is_valid("11010519491231002x"));
        assert_eq!(validate_at("11010519491231002x", TODAY), Ok(()));
    }

    #[test]
    fn malformed_numbers_are_a_format_error() {
        for number in [
            "",
            "11010519491231002",
            "1101051949123100A2",
            "1101051949123100２X",
        ] {
            assert_eq!(
                validate_at(number, TODAY),
                Err(IdNumberError::Format),
                "{number}"
            );
            assert!(!is_valid(number));
        }
        assert_eq!(check_digit("1101051949123100A"), None);
    }

    #[test]
    fn birth_dates_must_be_real_past_days() {
        let with_date = |date: &str| complete(&format!("110105{date}002")).unwrap();
        assert_eq!(
            validate_at(&with_date("19810229"), TODAY),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(validate_at(&with_date("19840229"), TODAY), Ok(()));
        assert_eq!(
            validate_at(&with_date("19801301"), TODAY),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate_at(&with_date("19800100"), TODAY),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate_at(&with_date("18000101"), TODAY),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            validate_at(&with_date("20261204"), TODAY),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(validate_at(&with_date("20261203"), TODAY), Ok(()));
        // The sandbox judges by the checksum alone.
        assert!(is_valid(&with_date("19801301")));
    }

    #[test]
    fn february_follows_the_leap_year_rules() {
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2004, 2), 29);
        assert_eq!(days_in_month(2003, 2), 28);
    }
}
