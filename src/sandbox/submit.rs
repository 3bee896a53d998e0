//! SubmitMaterials: checks the token and materials in the reference's order, fetches the
//! images, judges, and commits the ticket's new state.
//!
//! An unknown VerifyToken is answered like an expired one (`InvalidParam.VerifyTokenExpired`):
//! the reference has no code for it, and to the service the two are alike.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::cloudauth::MaterialType;
use crate::cloudauth::api::SubmitData;

use super::actions::{self, Ticket};
use super::error::ApiError;
use super::faults::Decision;
use super::gateway::{Call, Incoming};
use super::materials::{self, Image, Material};
use super::state::{Object, Shared, Submission, Submitted};
use super::stats::VerdictRecord;
use super::verdict::{self, Evidence, Verdict};

/// SubmitMaterials.
pub async fn submit_materials(
    shared: &Shared,
    incoming: &Incoming,
    call: &Call,
    decision: &Decision,
) -> Result<Value, ApiError> {
    let (token, ticket) = redeem(shared, incoming, call)?;
    let list = materials::parse(incoming.params())?;
    check_required(shared, &ticket, &list)?;
    check_not_duplicate(shared, &ticket)?;
    if decision.submit_error {
        return Err(ApiError::submit_failed());
    }

    let images = fetch_images(shared, incoming, &list).await?;
    let evidence = evidence(&list, &images);
    let verdict = verdict::judge(&shared.config, &evidence)?;
    let submitted = store(shared, &ticket, &list, &images);
    let status = commit(shared, &token, &ticket, verdict, submitted)?;
    let data = SubmitData {
        verify_status: actions::status_of(Some(&status), Instant::now()),
    };
    Ok(serde_json::to_value(data).unwrap_or_else(|_| json!({})))
}

/// Finds the ticket a VerifyToken was issued for.
fn redeem(shared: &Shared, incoming: &Incoming, call: &Call) -> Result<(String, Ticket), ApiError> {
    let token = incoming.param("VerifyToken").unwrap_or_default().trim();
    if token.is_empty() {
        return Err(ApiError::param_missing());
    }
    let core = shared.core();
    let grant = core.tokens.get(token).ok_or_else(ApiError::token_expired)?;
    let reuse_refused = grant.used && !shared.config.reuse_token_after_failure;
    if Instant::now() >= grant.expires || reuse_refused {
        return Err(ApiError::token_expired());
    }
    let ticket = Ticket {
        biz: grant.biz.clone(),
        id: grant.ticket.clone(),
    };
    drop(core);
    actions::check_biz(shared, call, &ticket.biz)?;
    Ok((token.to_string(), ticket))
}

fn check_required(shared: &Shared, ticket: &Ticket, list: &[Material]) -> Result<(), ApiError> {
    let required = shared.config.biz_requirements.get(&ticket.biz);
    let missing = required
        .into_iter()
        .flatten()
        .any(|kind| !list.iter().any(|m| m.kind == *kind));
    if missing {
        return Err(ApiError::insufficient());
    }
    Ok(())
}

fn check_not_duplicate(shared: &Shared, ticket: &Ticket) -> Result<(), ApiError> {
    let core = shared.core();
    let key = (ticket.biz.clone(), ticket.id.clone());
    let state = core
        .tickets
        .get(&key)
        .map(|s| s.status_code(Instant::now()));
    drop(core);
    if matches!(state, Some(0 | 1)) {
        shared.recorder().duplicate();
        return Err(ApiError::duplicated_ticket());
    }
    Ok(())
}

async fn fetch_images(
    shared: &Shared,
    incoming: &Incoming,
    list: &[Material],
) -> Result<HashMap<MaterialType, Image>, ApiError> {
    let mut images = HashMap::new();
    for material in list.iter().filter(|m| m.kind.is_image()) {
        let image = materials::fetch(shared, incoming.method, &material.value).await?;
        images.insert(material.kind, image);
    }
    Ok(images)
}

fn evidence<'a>(list: &'a [Material], images: &HashMap<MaterialType, Image>) -> Evidence<'a> {
    let text = |kind| {
        list.iter()
            .find(|m| m.kind == kind)
            .map(|m| m.value.as_str())
    };
    Evidence {
        name: text(MaterialType::Name),
        id_number: text(MaterialType::IdentificationNumber),
        face: images.get(&MaterialType::FacePic).map(|i| i.hash),
        id_card: images.get(&MaterialType::IdCardFrontPic).map(|i| i.hash),
    }
}

/// Keeps the submitted pictures in the bucket, so GetMaterials can link to them.
fn store(
    shared: &Shared,
    ticket: &Ticket,
    list: &[Material],
    images: &HashMap<MaterialType, Image>,
) -> Submitted {
    let text = |kind| {
        list.iter()
            .find(|m| m.kind == kind)
            .map(|m| m.value.clone())
    };
    let mut submitted = Submitted {
        name: text(MaterialType::Name),
        id_number: text(MaterialType::IdentificationNumber),
        pictures: HashMap::new(),
    };
    let mut core = shared.core();
    for (kind, image) in images {
        let key = format!("submitted/{}/{}/{}", ticket.biz, ticket.id, kind.as_str());
        let object = Object {
            bytes: image.bytes.clone(),
            content_type: image.content_type.to_string(),
        };
        core.bucket.insert(key.clone(), object);
        submitted.pictures.insert(kind.as_str(), key);
    }
    submitted
}

/// Records the submission, unless another one for the ticket was committed meanwhile.
fn commit(
    shared: &Shared,
    token: &str,
    ticket: &Ticket,
    verdict: Verdict,
    materials: Submitted,
) -> Result<Submission, ApiError> {
    let config = &shared.config;
    let now = Instant::now();
    let reviewed =
        verdict::goes_to_review(config.seed, config.review_share, &ticket.biz, &ticket.id);
    let visible_at = if reviewed {
        now + config.review_delay
    } else {
        now
    };
    let record = VerdictRecord {
        status_code: verdict.status_code,
        authority_comparison_score: verdict.authority_score,
        similarity_score: verdict.similarity_score,
        reviewed,
    };
    let submission = Submission {
        verdict,
        visible_at,
        materials,
    };

    let mut core = shared.core();
    let key = (ticket.biz.clone(), ticket.id.clone());
    if matches!(
        core.tickets.get(&key).map(|s| s.status_code(now)),
        Some(0 | 1)
    ) {
        drop(core);
        shared.recorder().duplicate();
        return Err(ApiError::duplicated_ticket());
    }
    core.tickets.insert(key, submission.clone());
    if let Some(grant) = core.tokens.get_mut(token) {
        grant.used = true;
    }
    drop(core);
    shared.recorder().committed(&ticket.biz, &ticket.id, record);
    Ok(submission)
}
