//! Plausible Chinese names and mobile numbers for synthetic people.

use super::rng::SplitMix64;

const NAME: u64 = 10;
const MOBILE: u64 = 11;

/// Common surnames, roughly in order of frequency.
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈",
];

/// Characters common in given names.
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "英", "华", "玉", "兰", "文", "辉", "鑫", "宇", "浩", "然", "欣",
    "怡", "子", "涵", "梓", "轩", "雨", "晨", "嘉", "博", "思", "佳", "一", "诺", "俊", "峰", "琳",
    "建", "国", "红", "海", "燕", "丹", "志", "婷", "斌", "慧", "新", "春",
];

/// The first three digits of mobile numbers from the three big carriers.
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156",
    "158", "159", "180", "181", "185", "186", "187", "188", "189",
];

/// A plausible Chinese name for `person`: a surname and one or two given characters.
pub fn chinese_name(person: u64) -> String {
    let mut rng = SplitMix64::for_purpose(person, NAME);
    let mut name = String::from(*rng.pick(SURNAMES));
    // Two-character given names are the more common form today.
    let given = if rng.below(10) < 7 { 2 } else { 1 };
    for _ in 0..given {
        name.push_str(rng.pick::<&str>(GIVEN));
    }
    name
}

/// A plausible 11-digit mainland mobile number for `person`, starting 13x, 15x or 18x.
pub fn mobile(person: u64) -> String {
    let mut rng = SplitMix64::for_purpose(person, MOBILE);
    let mut number = String::from(*rng.pick(MOBILE_PREFIXES));
    number.push_str(&format!("{:08}", rng.below(100_000_000)));
    number
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_two_or_three_characters() {
        for person in 0..500 {
            let count = chinese_name(person).chars().count();
            assert!((2..=3).contains(&count), "{}", chinese_name(person));
        }
    }

    #[test]
    fn names_vary_between_people() {
        let names: std::collections::HashSet<_> = (0..200).map(chinese_name).collect();
        assert!(names.len() > 150, "{}", names.len());
    }

    #[test]
    fn mobiles_have_eleven_digits_and_a_carrier_prefix() {
        for person in 0..500 {
            let number = mobile(person);
            assert_eq!(number.len(), 11);
            assert!(number.bytes().all(|b| b.is_ascii_digit()));
            assert!(["13", "15", "18"].contains(&&number[..2]), "{number}");
        }
    }
}
