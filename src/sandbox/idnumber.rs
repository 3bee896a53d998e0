//! PRC resident ID numbers (GB 11643-1999): the check digit and the sex they encode.
//!
//! The sandbox reads the sex for GetMaterials; tests and generated data sets complete
//! 17 digits into a valid number.

/// The weights of the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check characters, indexed by the weighted sum modulo 11.
const CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The check character of the first 17 digits of `number`, or `None` if they are not
/// 17 decimal digits.
pub fn check_digit(number: &str) -> Option<char> {
    let digits = number.get(..17)?;
    let mut sum = 0;
    for (c, weight) in digits.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * weight;
    }
    Some(CHECKS[(sum % 11) as usize])
}

/// Appends the check character to 17 digits.
pub fn complete(first17: &str) -> Option<String> {
    (first17.len() == 17).then_some(())?;
    Some(format!("{first17}{}", check_digit(first17)?))
}

/// Whether `number` is 18 characters with a correct check character.
pub fn is_valid(number: &str) -> bool {
    number.len() == 18
        && check_digit(number).is_some_and(|c| number[17..].eq_ignore_ascii_case(&c.to_string()))
}

/// `m` or `f`, from the parity of the 17th digit.
pub fn sex(number: &str) -> Option<&'static str> {
    let digit = number.get(16..17)?.parse::<u32>().ok()?;
    Some(if digit % 2 == 1 { "m" } else { "f" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_and_checks_numbers() {
        let number = complete("11010519491231002").unwrap();
        assert_eq!(number, "11010519491231002X");
        assert!(is_valid(&number));
        assert!(!is_valid("630546198009090099"));
        assert!(is_valid("630546198009090090"));
        assert_eq!(complete("1234"), None);
    }

    #[test]
    fn reads_the_sex_from_the_seventeenth_digit() {
        assert_eq!(sex("11010519491231002X"), Some("f"));
        assert_eq!(sex("110105194912310010"), Some("m"));
        assert_eq!(sex("short"), None);
    }
}
