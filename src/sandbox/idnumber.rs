//! ID numbers in the sandbox: the sex a number encodes (for GetMaterials), and generation
//! of valid numbers for synthetic people. Validation lives in [`crate::checks::idnumber`],
//! shared with the client's pre-flight checks.

use super::synthetic::SplitMix64;
use crate::checks::idnumber::{check_digit, days_in_month};

const ID_NUMBER: u64 = 12;

/// Region codes of real districts, so generated numbers look ordinary.
const REGIONS: &[&str] = &[
    "110101", "110105", "120101", "210102", "230103", "310104", "310115", "320102", "330106",
    "340104", "350203", "360102", "370202", "410105", "420106", "430104", "440103", "440305",
    "450103", "500103", "510107", "530102", "610113", "630104", "650102",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sex_of_a_number() {
        assert_eq!(sex("11010519491231002X"), Some("f"));
        assert_eq!(sex("110105194912310010"), Some("m"));
        assert_eq!(sex("short"), None);
    }

    #[test]
    fn generated_numbers_are_valid_with_plausible_dates() {
        for person in 0..2000 {
            let number = id_number(person);
            assert_eq!(
                crate::checks::idnumber::validate(&number),
                Ok(()),
                "{number}"
            );
            let year: u32 = number[6..10].parse().unwrap();
            assert!((1950..=2005).contains(&year), "{number}");
        }
    }
}
