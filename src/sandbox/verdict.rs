//! How the sandbox decides a submission: the real-name check against the authority data
//! set, the face scores, the pass threshold, and which submissions go through review.

use super::authority::FaceHash;
use super::config::{SandboxConfig, UnknownIds};
use super::error::ApiError;
use super::faults::{mix, unit};

/// The reason given when the face does not match the authority's portrait.
pub const FACE_MISMATCH: &str = "人脸与权威数据比对不一致";

/// A decision on one submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// 1 passed, 2 failed.
    pub status_code: i32,
    /// Face against the authority portrait (or the ID card, for an unknown ID number).
    pub authority_score: Option<f64>,
    /// Face against the ID card portrait, when both were sent.
    pub similarity_score: Option<f64>,
    /// Why it failed.
    pub conclusions: Option<String>,
}

/// What a submission offers to be judged on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// The submitted name.
    pub name: Option<&'a str>,
    /// The submitted ID number.
    pub id_number: Option<&'a str>,
    /// The face photo's hash.
    pub face: Option<FaceHash>,
    /// The ID card portrait side's hash.
    pub id_card: Option<FaceHash>,
}

/// Judges a submission. A name that does not match the ID number's record, or an ID
/// number without a record under [`UnknownIds::Reject`], is an error rather than a
/// verdict, as `Error.RealNameCheckFail` is in the real service.
pub fn judge(config: &SandboxConfig, evidence: &Evidence<'_>) -> Result<Verdict, ApiError> {
    let similarity = evidence
        .face
        .zip(evidence.id_card)
        .map(|(f, c)| f.score(&c));
    let record = evidence.id_number.and_then(|id| config.authority.get(id));
    let authority_score = match record {
        Some(record) => {
            if evidence.name.is_some_and(|name| name != record.name) {
                return Err(ApiError::real_name_mismatch());
            }
            evidence.face.map(|face| face.score(&record.portrait))
        }
        None if evidence.id_number.is_none() => evidence.face.and(similarity),
        None => match config.unknown_ids {
            UnknownIds::Reject => return Err(ApiError::real_name_mismatch()),
            UnknownIds::Accept => evidence
                .face
                .map(|_| similarity.unwrap_or(config.unknown_id_score)),
        },
    };
    Ok(decide(config.pass_threshold, authority_score, similarity))
}

fn decide(threshold: f64, authority_score: Option<f64>, similarity: Option<f64>) -> Verdict {
    // With no face to compare (a name and number scenario), the real-name check decides.
    let passed = authority_score.is_none_or(|score| score >= threshold);
    Verdict {
        status_code: if passed { 1 } else { 2 },
        authority_score,
        similarity_score: similarity,
        conclusions: (!passed).then(|| FACE_MISMATCH.to_string()),
    }
}

/// Whether the submission of `ticket` in `biz` goes through review first. It depends on
/// the seed and the ticket only, so a test can predict it.
pub fn goes_to_review(seed: u64, share: f64, biz: &str, ticket: &str) -> bool {
    share > 0.0 && unit(mix(seed, fnv1a(biz), fnv1a(ticket))) < share
}

/// FNV-1a over the bytes of `text`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::authority::Record;

    fn hash(seed: u8) -> FaceHash {
        let picture = image::RgbImage::from_fn(32, 32, |x, y| {
            let v = ((x * 7 + y * u32::from(seed)) % 255) as u8;
            image::Rgb([v, v, v])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut out, image::ImageFormat::Png).unwrap();
        FaceHash::of_image(out.get_ref()).unwrap()
    }

    fn config() -> SandboxConfig {
        let mut config = SandboxConfig::default();
        let record = Record {
            name: "张三".to_string(),
            portrait: hash(3),
        };
        config.authority.insert("11010519491231002X", record);
        config
    }

    fn evidence<'a>(name: &'a str, id: &'a str, face: FaceHash) -> Evidence<'a> {
        Evidence {
            name: Some(name),
            id_number: Some(id),
            face: Some(face),
            id_card: None,
        }
    }

    #[test]
    fn the_same_face_passes_and_another_fails() {
        let config = config();
        let pass = judge(&config, &evidence("张三", "11010519491231002X", hash(3))).unwrap();
        assert_eq!((pass.status_code, pass.authority_score), (1, Some(100.0)));
        let fail = judge(&config, &evidence("张三", "11010519491231002X", hash(90))).unwrap();
        assert_eq!(fail.status_code, 2);
        assert_eq!(fail.conclusions.as_deref(), Some(FACE_MISMATCH));
    }

    #[test]
    fn a_wrong_name_or_unknown_number_fails_the_real_name_check() {
        let mut config = config();
        let wrong = judge(&config, &evidence("李四", "11010519491231002X", hash(3)));
        assert_eq!(wrong.unwrap_err().code, "Error.RealNameCheckFail");
        let unknown = judge(&config, &evidence("李四", "110105194912310010", hash(3)));
        assert_eq!(unknown.unwrap_err().code, "Error.RealNameCheckFail");

        config.unknown_ids = UnknownIds::Accept;
        let accepted = judge(&config, &evidence("李四", "110105194912310010", hash(3))).unwrap();
        assert_eq!(accepted.authority_score, Some(90.0));
    }

    #[test]
    fn review_choice_is_stable_and_follows_the_share() {
        let picked = (0..1000)
            .filter(|n| goes_to_review(5, 0.25, "RPBasic", &format!("t-{n}")))
            .count();
        assert!((180..320).contains(&picked), "{picked}");
        assert_eq!(
            goes_to_review(5, 0.25, "RPBasic", "t-1"),
            goes_to_review(5, 0.25, "RPBasic", "t-1")
        );
        assert!(!goes_to_review(5, 0.0, "RPBasic", "t-1"));
    }
}
