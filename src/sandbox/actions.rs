//! GetVerifyToken, GetStatus and GetMaterials, and the ticket arguments they share.
//! SubmitMaterials, which has more to it, lives in `submit.rs`.
//!
//! Error codes for these three actions are unconfirmed (PROTOCOL.md §5.2); they use the
//! likely subset: `Missing*` for an absent argument, `InvalidParam.ParamMissing` for a
//! blank one, `Error.NoPermissionAccess` for a scenario that is not configured.

use std::time::Instant;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cloudauth::api::{MaterialsData, StsToken, VerifyStatus, VerifyToken, VerifyTokenData};
use crate::cloudauth::client::timestamp;
use crate::cloudauth::percent;

use super::config::KeyState;
use super::error::ApiError;
use super::gateway::{Call, Incoming};
use super::idnumber;
use super::state::{Shared, StsGrant, Submission, TokenGrant};

/// The (Biz, TicketId) a call is about.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The scenario.
    pub biz: String,
    /// The ticket.
    pub id: String,
}

/// Reads and checks `Biz` and `TicketId`.
pub fn ticket(shared: &Shared, incoming: &Incoming, call: &Call) -> Result<Ticket, ApiError> {
    let biz = required(incoming, "Biz")?;
    let id = required(incoming, "TicketId")?;
    check_biz(shared, call, biz)?;
    Ok(Ticket {
        biz: biz.to_string(),
        id: id.to_string(),
    })
}

fn required<'a>(incoming: &'a Incoming, name: &str) -> Result<&'a str, ApiError> {
    match incoming.param(name) {
        None => Err(ApiError::missing(name)),
        Some(value) if value.trim().is_empty() => Err(ApiError::param_missing()),
        Some(value) => Ok(value),
    }
}

/// Refuses a key without the service or a scenario that is not configured.
pub fn check_biz(shared: &Shared, call: &Call, biz: &str) -> Result<(), ApiError> {
    let known = shared.config.biz_requirements.contains_key(biz);
    if call.key_state == KeyState::NoPermission || !known {
        return Err(ApiError::no_permission());
    }
    Ok(())
}

/// GetVerifyToken: issues a VerifyToken and STS credentials for the ticket. `Binding`,
/// `UserData` and `VerifyConfigs` are accepted and ignored.
pub fn get_verify_token(
    shared: &Shared,
    incoming: &Incoming,
    call: &Call,
) -> Result<Value, ApiError> {
    let ticket = ticket(shared, incoming, call)?;
    let now = Instant::now();
    let token = random_hex(32);
    let sts = issue_sts(shared, &ticket, now);
    let grant = TokenGrant {
        biz: ticket.biz,
        ticket: ticket.id,
        expires: now + shared.config.token_lifetime,
        used: false,
    };
    shared.core().tokens.insert(token.clone(), grant);

    let data = VerifyTokenData {
        verify_token: VerifyToken {
            token,
            duration_seconds: shared.config.token_lifetime.as_secs(),
        },
        sts_token: Some(sts),
        cloudauth_page_url: None,
    };
    Ok(serde_json::to_value(data).unwrap_or_default())
}

fn issue_sts(shared: &Shared, ticket: &Ticket, now: Instant) -> StsToken {
    let lifetime = shared.config.sts_lifetime;
    let expiration = OffsetDateTime::now_utc() + lifetime;
    let sts = StsToken {
        access_key_id: format!("STS.{}", random_hex(24)),
        access_key_secret: random_hex(32),
        expiration: timestamp(expiration),
        end_point: shared.base_url.clone(),
        bucket_name: shared.config.bucket_name.clone(),
        path: format!("sandbox/{}/{}/", ticket.biz, ticket.id),
        token: format!("CAIS{}", random_hex(60)),
    };
    let grant = StsGrant {
        secret: sts.access_key_secret.clone(),
        token: sts.token.clone(),
        path: sts.path.clone(),
        expires: now + lifetime,
    };
    shared.core().sts.insert(sts.access_key_id.clone(), grant);
    sts
}

/// GetStatus: -1 before any submission, 0 in review, then 1 or 2 with the scores.
pub fn get_status(shared: &Shared, incoming: &Incoming, call: &Call) -> Result<Value, ApiError> {
    let ticket = ticket(shared, incoming, call)?;
    let core = shared.core();
    let submission = core.tickets.get(&(ticket.biz, ticket.id));
    let status = status_of(submission, Instant::now());
    Ok(serde_json::to_value(status).unwrap_or_default())
}

/// The VerifyStatus of a ticket at `now`. Scores are left out until there is a verdict,
/// since whether the service sends zeros then is unconfirmed.
pub fn status_of(submission: Option<&Submission>, now: Instant) -> VerifyStatus {
    let Some(submission) = submission else {
        return blank_status(-1);
    };
    let status_code = submission.status_code(now);
    if status_code == 0 {
        return blank_status(0);
    }
    let verdict = &submission.verdict;
    VerifyStatus {
        status_code,
        similarity_score: verdict.similarity_score,
        authority_comparison_score: verdict.authority_score,
        audit_conclusions: Some(verdict.conclusions.clone().unwrap_or_default()),
        trusted_score: Some(0.0),
    }
}

fn blank_status(status_code: i32) -> VerifyStatus {
    VerifyStatus {
        status_code,
        similarity_score: None,
        authority_comparison_score: None,
        audit_conclusions: None,
        trusted_score: None,
    }
}

/// GetMaterials: what the latest submission carried, pictures as sandbox URLs. A ticket
/// never submitted answers an empty `Data`; the real answer is unconfirmed.
pub fn get_materials(shared: &Shared, incoming: &Incoming, call: &Call) -> Result<Value, ApiError> {
    let ticket = ticket(shared, incoming, call)?;
    let core = shared.core();
    let Some(submission) = core.tickets.get(&(ticket.biz, ticket.id)) else {
        return Ok(json!({}));
    };
    let submitted = &submission.materials;
    let picture = |kind: &str| {
        submitted
            .pictures
            .get(kind)
            .map(|key| object_url(shared, key))
    };
    let data = MaterialsData {
        name: submitted.name.clone(),
        identification_number: submitted.id_number.clone(),
        id_card_type: Some("identityCard".to_string()),
        sex: submitted
            .id_number
            .as_deref()
            .and_then(idnumber::sex)
            .map(str::to_string),
        face_pic: picture("FacePic"),
        id_card_front_pic: picture("IdCardFrontPic"),
        id_card_back_pic: picture("IdCardBackPic"),
        ..MaterialsData::default()
    };
    Ok(serde_json::to_value(data).unwrap_or_default())
}

/// The sandbox URL that serves an object of the emulated bucket.
pub fn object_url(shared: &Shared, key: &str) -> String {
    format!(
        "{}/_sandbox/objects/{}",
        shared.base_url,
        percent::encode(key)
    )
}

/// `digits` random lower-case hex digits.
pub fn random_hex(digits: usize) -> String {
    let mut out = String::with_capacity(digits + 32);
    while out.len() < digits {
        out.push_str(&format!("{:032x}", rand::random::<u128>()));
    }
    out.truncate(digits);
    out
}
