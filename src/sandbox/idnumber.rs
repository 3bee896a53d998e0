//! PRC resident ID numbers (GB 11643-1999): the check digit, validation, the sex a
//! number encodes (for GetMaterials), and generation of valid numbers for synthetic people.
//!
//! An ID number is 18 characters: a 6-digit region code, the birth date as `YYYYMMDD`, a
//! 3-digit sequence (odd for men, even for women) and a check character computed with
//! ISO 7064 MOD 11-2, which is `X` when the check value is 10.

use super::synthetic::SplitMix64;

const ID_NUMBER: u64 = 12;

/// The weights of the first 17 digits, 2^(17-i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each remainder of the weighted sum mod 11.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Region codes of real districts, so generated numbers look ordinary.
const REGIONS: &[&str] = &[
    "110101", "110105", "120101", "210102", "230103", "310104", "310115", "320102", "330106",
    "340104", "350203", "360102", "370202", "410105", "420106", "430104", "440103", "440305",
    "450103", "500103", "510107", "530102", "610113", "630104", "650102",
];

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
/// Only the checksum is verified, not the region or the date: the service is the judge of
/// those, and a client that second-guesses it would reject numbers it accepts.
pub fn is_valid(number: &str) -> bool {
    if number.len() != 18 || !number.is_ascii() {
        return false;
    }
    let (first17, last) = number.split_at(17);
    let last = last.chars().next().map(|c| c.to_ascii_uppercase());
    check_digit(first17).is_some() && check_digit(first17) == last
}

/// Appends the check character to 17 digits.
pub fn complete(first17: &str) -> Option<String> {
    Some(format!("{first17}{}", check_digit(first17)?))
}

/// `m` or `f`, from the parity of the 17th digit.
pub fn sex(number: &str) -> Option<&'static str> {
    let digit = number.get(16..17)?.parse::<u32>().ok()?;
    Some(if digit % 2 == 1 { "m" } else { "f" })
}

/// A valid ID number for `person`: a real region code, a birth date from 1950 to 2005, a
/// sequence number and the right check character.
pub fn id_number(person: u64) -> String {
    let mut rng = SplitMix64::for_purpose(person, ID_NUMBER);
    let region = rng.pick(REGIONS);
    let year = 1950 + rng.below(56) as u32;
    let month = 1 + rng.below(12) as u32;
    let day = 1 + rng.below(u64::from(days_in_month(year, month))) as u32;
    let sequence = rng.below(1000);
    let first17 = format!("{region}{year:04}{month:02}{day:02}{sequence:03}");
    let check = check_digit(&first17).expect("17 digits by construction");
    format!("{first17}{check}")
}

/// The number of days in `month` of `year`, under the Gregorian rules.
fn days_in_month(year: u32, month: u32) -> u32 {
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
    fn completes_numbers_and_reads_their_sex() {
        assert_eq!(
            complete("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
        assert_eq!(complete("1234"), None);
        assert_eq!(sex("11010519491231002X"), Some("f"));
        assert_eq!(sex("110105194912310010"), Some("m"));
        assert_eq!(sex("short"), None);
    }

    #[test]
    fn the_reference_example_is_invalid() {
        assert!(!is_valid("630546198009090099"));
        assert!(is_valid("630546198009090090"));
        assert!(is_valid("11010519491231002X"));
        assert!(is_valid("11010519491231002x"));
        assert!(is_valid("440524188001010014"));
    }

    #[test]
    fn malformed_input_has_no_check_digit() {
        assert_eq!(check_digit("1101051949123100"), None);
        assert_eq!(check_digit("1101051949123100A"), None);
        assert!(!is_valid("11010519491231002"));
        assert!(!is_valid("1101051949123100２X"));
    }

    #[test]
    fn generated_numbers_are_valid_with_plausible_dates() {
        for person in 0..2000 {
            let number = id_number(person);
            assert!(is_valid(&number), "{number}");
            let year: u32 = number[6..10].parse().unwrap();
            let month: u32 = number[10..12].parse().unwrap();
            let day: u32 = number[12..14].parse().unwrap();
            assert!((1950..=2005).contains(&year), "{number}");
            assert!((1..=12).contains(&month), "{number}");
            assert!(day >= 1 && day <= days_in_month(year, month), "{number}");
        }
    }

    #[test]
    fn february_follows_the_leap_year_rules() {
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2004, 2), 29);
        assert_eq!(days_in_month(2003, 2), 28);
    }
}
