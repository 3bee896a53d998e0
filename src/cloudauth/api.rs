//! The typed model of the four Cloudauth actions of API version 2018-09-16: their names,
//! material types, and the JSON bodies of PROTOCOL.md §3 and §5.
//!
//! The client deserialises these; the sandbox serialises the same types, and the tests
//! below pin their field names to the documented JSON, so neither side can drift alone.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The API version every request carries.
pub const API_VERSION: &str = "2018-09-16";

/// The production endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://cloudauth.aliyuncs.com";

/// The one region the service runs in.
pub const DEFAULT_REGION: &str = "cn-hangzhou";

/// Most materials one SubmitMaterials call may carry.
pub const MAX_MATERIALS: usize = 10;

/// The size one image should stay under (2 MB, read as the smaller 2,000,000 bytes).
pub const MAX_IMAGE_BYTES: usize = 2_000_000;

/// The size a request body must stay under. "8 MB" may mean 8,000,000 or 8,388,608
/// bytes; the client keeps under the smaller figure (PROTOCOL.md §7.1).
pub const MAX_BODY_BYTES: usize = 8_000_000;

/// An API action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    /// Starts a verification and returns a VerifyToken and OSS credentials.
    GetVerifyToken,
    /// Submits the materials of a ticket for review. Not idempotent.
    SubmitMaterials,
    /// Reads the status of a ticket.
    GetStatus,
    /// Reads back what was submitted for a ticket.
    GetMaterials,
}

impl Action {
    /// Every action, in the order of a verification.
    pub const ALL: [Action; 4] = [
        Action::GetVerifyToken,
        Action::SubmitMaterials,
        Action::GetStatus,
        Action::GetMaterials,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::GetVerifyToken => "GetVerifyToken",
            Action::SubmitMaterials => "SubmitMaterials",
            Action::GetStatus => "GetStatus",
            Action::GetMaterials => "GetMaterials",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownName;

    /// Parses a wire name; names are case-sensitive, as at the gateway.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
            .ok_or_else(|| UnknownName(name.to_string()))
    }
}

/// A name that is not one of the known actions or material types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

/// The materials a well-known Biz scenario needs, or `None` for a scenario this tool does
/// not know. The reference leaves the rules to the console configuration (unconfirmed), so
/// this covers only the standard scenarios whose needs are plain from their purpose: a full
/// real-person check compares a face with the authority's portrait of a name and ID
/// number, and the minimal one compares the name with the number.
pub fn required_materials(biz: &str) -> Option<&'static [MaterialType]> {
    use MaterialType::{FacePic, IdentificationNumber, Name};
    match biz {
        "RPBasic" | "RPBasicTest" => Some(&[Name, IdentificationNumber, FacePic]),
        "RPMin" => Some(&[Name, IdentificationNumber]),
        _ => None,
    }
}

/// The type of one submitted material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MaterialType {
    /// The person's name, e.g. 张三.
    Name,
    /// The 18-character PRC resident ID number.
    IdentificationNumber,
    /// A photo of the face.
    FacePic,
    /// The portrait side of the ID card.
    IdCardFrontPic,
    /// The emblem side of the ID card.
    IdCardBackPic,
    /// The portrait stored on the ID card's chip.
    #[serde(rename = "IDPic")]
    IdPic,
    /// A mobile number, used only as a risk signal.
    Mobile,
}

impl MaterialType {
    /// Every material type.
    pub const ALL: [MaterialType; 7] = [
        MaterialType::Name,
        MaterialType::IdentificationNumber,
        MaterialType::FacePic,
        MaterialType::IdCardFrontPic,
        MaterialType::IdCardBackPic,
        MaterialType::IdPic,
        MaterialType::Mobile,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialType::Name => "Name",
            MaterialType::IdentificationNumber => "IdentificationNumber",
            MaterialType::FacePic => "FacePic",
            MaterialType::IdCardFrontPic => "IdCardFrontPic",
            MaterialType::IdCardBackPic => "IdCardBackPic",
            MaterialType::IdPic => "IDPic",
            MaterialType::Mobile => "Mobile",
        }
    }

    /// Whether the value is an image address rather than text.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            MaterialType::FacePic
                | MaterialType::IdCardFrontPic
                | MaterialType::IdCardBackPic
                | MaterialType::IdPic
        )
    }
}

impl fmt::Display for MaterialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MaterialType {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        MaterialType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownName(name.to_string()))
    }
}

/// The envelope of every successful response (PROTOCOL.md §3.0).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope<D> {
    /// The service's id for the request; quote it to support.
    #[serde(default)]
    pub request_id: String,
    /// `true` on success.
    #[serde(default)]
    pub success: Option<bool>,
    /// `"1"` on success.
    #[serde(default)]
    pub code: Option<String>,
    /// Optional text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The action's payload.
    pub data: D,
}

/// `Data` of GetVerifyToken.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyTokenData {
    /// The token that ties SubmitMaterials to the ticket.
    pub verify_token: VerifyToken,
    /// Credentials for uploading images to the service's OSS bucket.
    pub sts_token: Option<StsToken>,
    /// The H5 page of browser-based scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudauth_page_url: Option<String>,
}

/// `Data.VerifyToken`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyToken {
    /// The token.
    pub token: String,
    /// Seconds the token stays valid after it was issued.
    pub duration_seconds: u64,
}

/// `Data.StsToken`: temporary OSS credentials limited to one bucket and path.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StsToken {
    /// The temporary AccessKeyId (`STS.…`).
    pub access_key_id: String,
    /// The temporary secret.
    pub access_key_secret: String,
    /// When the credentials expire, ISO 8601 UTC.
    pub expiration: String,
    /// The OSS endpoint host, with or without a scheme.
    pub end_point: String,
    /// The bucket to upload into.
    pub bucket_name: String,
    /// The key prefix uploads must lie under.
    pub path: String,
    /// The security token sent as `x-oss-security-token`.
    pub token: String,
}

impl fmt::Debug for StsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsToken")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("end_point", &self.end_point)
            .field("bucket_name", &self.bucket_name)
            .field("path", &self.path)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `Data` of SubmitMaterials.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubmitData {
    /// The verdict, or StatusCode 0 while in review.
    pub verify_status: VerifyStatus,
}

/// A ticket's state: `Data.VerifyStatus` of SubmitMaterials, `Data` of GetStatus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyStatus {
    /// -1 never submitted, 0 in review, 1 passed, 2 failed.
    pub status_code: i32,
    /// Face photo against the ID card portrait, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_score: Option<f64>,
    /// Face photo against the authority's portrait, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_comparison_score: Option<f64>,
    /// Why a submission failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_conclusions: Option<String>,
    /// Present in the SDKs' structs; its meaning is undocumented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_score: Option<f64>,
}

/// The meaning of a StatusCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// -1: nothing was ever submitted for the ticket.
    NotSubmitted,
    /// 0: submitted and not yet decided.
    InReview,
    /// 1: passed; terminal for the ticket.
    Passed,
    /// 2: failed; the ticket may be submitted again.
    Failed,
}

impl VerifyStatus {
    /// What the status code means, or `None` for a code the API does not define.
    pub fn verdict(&self) -> Option<Verdict> {
        match self.status_code {
            -1 => Some(Verdict::NotSubmitted),
            0 => Some(Verdict::InReview),
            1 => Some(Verdict::Passed),
            2 => Some(Verdict::Failed),
            _ => None,
        }
    }
}

/// `Data` of GetMaterials: what was submitted, with OCR results where there are any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MaterialsData {
    /// The submitted name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The submitted ID number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification_number: Option<String>,
    /// `identityCard` for the PRC ID card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card_type: Option<String>,
    /// Card validity start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card_start_date: Option<String>,
    /// Card expiry, `yyyyMMdd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card_expiry: Option<String>,
    /// The address as a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `m` or `f`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
    /// Ethnic group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethnic_group: Option<String>,
    /// Issuing authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// A time-limited URL of the submitted portrait side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card_front_pic: Option<String>,
    /// A time-limited URL of the submitted emblem side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_card_back_pic: Option<String>,
    /// A time-limited URL of the submitted face photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_pic: Option<String>,
}

/// The body of an error response (PROTOCOL.md §5.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    /// The service's id for the request.
    #[serde(default)]
    pub request_id: String,
    /// The host that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// The error code, e.g. `Throttling.User`. Classify by this, not by HTTP status.
    #[serde(default)]
    pub code: String,
    /// The English description.
    #[serde(default)]
    pub message: String,
    /// A link to the error centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommend: Option<String>,
    /// `false`; business errors may carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
        for kind in MaterialType::ALL {
            assert_eq!(kind.as_str().parse::<MaterialType>(), Ok(kind));
        }
        assert!("getstatus".parse::<Action>().is_err());
        assert!("IdPic".parse::<MaterialType>().is_err());
    }

    #[test]
    fn reads_the_documented_get_verify_token_response() {
        let json = r#"{"RequestId":"0A5A8C2E","Success":true,"Code":"1","Data":{
            "VerifyToken":{"Token":"8eb5","DurationSeconds":1800},
            "StsToken":{"AccessKeyId":"STS.N","AccessKeySecret":"s","Expiration":"2019-06-01T08:30:00Z",
              "EndPoint":"oss-cn-hangzhou.aliyuncs.com","BucketName":"b","Path":"prod/x","Token":"CAIS"},
            "CloudauthPageUrl":"https://h5.example/"}}"#;
        let parsed: Envelope<VerifyTokenData> = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.data.verify_token.duration_seconds, 1800);
        let sts = parsed.data.sts_token.unwrap();
        assert_eq!(sts.bucket_name, "b");
        assert!(!format!("{sts:?}").contains("CAIS"));
    }

    #[test]
    fn reads_submit_and_status_responses() {
        let submit = r#"{"RequestId":"5C1E","Success":true,"Code":"1","Data":{"VerifyStatus":
            {"StatusCode":1,"SimilarityScore":93.12,"AuthorityComparisonScore":98.13,"AuditConclusions":"","TrustedScore":0}}}"#;
        let parsed: Envelope<SubmitData> = serde_json::from_str(submit).unwrap();
        assert_eq!(parsed.data.verify_status.verdict(), Some(Verdict::Passed));
        assert_eq!(
            parsed.data.verify_status.authority_comparison_score,
            Some(98.13)
        );

        let status = r#"{"RequestId":"9F7A","Success":true,"Code":"1","Data":
            {"StatusCode":2,"SimilarityScore":41.5,"AuthorityComparisonScore":12.0,"AuditConclusions":"身份证照片模糊"}}"#;
        let parsed: Envelope<VerifyStatus> = serde_json::from_str(status).unwrap();
        assert_eq!(parsed.data.verdict(), Some(Verdict::Failed));
        assert_eq!(
            parsed.data.audit_conclusions.as_deref(),
            Some("身份证照片模糊")
        );
    }

    #[test]
    fn reads_get_materials_and_error_bodies() {
        let materials = r#"{"RequestId":"1B2C","Success":true,"Code":"1","Data":{"Name":"张三",
            "IdentificationNumber":"630546198009090099","IdCardType":"identityCard","Sex":"m","FacePic":"https://x"}}"#;
        let parsed: Envelope<MaterialsData> = serde_json::from_str(materials).unwrap();
        assert_eq!(parsed.data.name.as_deref(), Some("张三"));
        assert_eq!(parsed.data.id_card_type.as_deref(), Some("identityCard"));

        let error = r#"{"RequestId":"540C","HostId":"cloudauth.aliyuncs.com","Code":"SignatureDoesNotMatch",
            "Message":"m","Recommend":"https://e"}"#;
        let parsed: ErrorBody = serde_json::from_str(error).unwrap();
        assert_eq!(parsed.code, "SignatureDoesNotMatch");
    }

    #[test]
    fn id_pic_keeps_its_upper_case_wire_name_in_json() {
        assert_eq!(
            serde_json::to_string(&MaterialType::IdPic).unwrap(),
            "\"IDPic\""
        );
    }
}
