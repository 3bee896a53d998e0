//! HTTP wiring: the axum router (RPC at `/`, the emulated bucket on its virtual host, the
//! `/_sandbox/*` control endpoints) and the connection loop around it.
//!
//! Connections are served with hyper's HTTP/1 builder directly rather than `axum::serve`,
//! so that a response marked [`DropConnection`] can abort its connection: the client then
//! sees the connection close with no answer, as after a lost response.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method as HttpMethod, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::cloudauth::Action;

use super::error::ApiError;
use super::faults::{Decision, Faults, GatewayFault};
use super::gateway::{self, Incoming};
use super::oss::{self, Put};
use super::reply::{self, Format};
use super::state::Shared;
use super::stats::Stats;
use super::{actions, submit};

/// Marks a response whose connection must be closed instead of answered.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The error that aborts a connection marked [`DropConnection`].
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose after the call was committed")]
struct Dropped;

/// The sandbox's routes over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/faults", post(set_faults))
        .route("/_sandbox/objects/{key}", get(object))
        .fallback(entry)
        .with_state(shared)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.recorder().snapshot())
}

async fn set_faults(State(shared): State<Arc<Shared>>, Json(faults): Json<Faults>) -> Json<Faults> {
    shared.set_faults(faults.clone());
    Json(faults)
}

async fn object(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    oss::get_object(&shared, &key)
}

/// Everything else: PutObject on the bucket's virtual host, RPC otherwise.
async fn entry(
    State(shared): State<Arc<Shared>>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let bucket_prefix = format!("{}.", shared.config.bucket_name);
    if let Some(_authority) = host.strip_prefix(&bucket_prefix)
        && method == HttpMethod::PUT
    {
        let body = axum::body::to_bytes(body, shared.config.max_body_bytes)
            .await
            .unwrap_or_default();
        let bucket = shared.config.bucket_name.clone();
        let put = Put {
            bucket: &bucket,
            path: uri.path(),
            headers: &headers,
            body,
        };
        return oss::put_object(&shared, put);
    }
    rpc(&shared, method, uri, body).await
}

async fn rpc(shared: &Shared, method: HttpMethod, uri: Uri, body: Body) -> Response {
    let request_id = reply::request_id();
    let decision = shared
        .faults()
        .decide(shared.config.seed, shared.next_sequence());
    let query = uri.query().unwrap_or_default();
    let fail = |format, error: ApiError| {
        tracing::debug!(code = %error.code, status = error.status, "sandbox refused a call");
        reply::error(format, &request_id, &shared.host_id, &error)
    };
    let Ok(body) = axum::body::to_bytes(body, shared.config.max_body_bytes).await else {
        return fail(Format::from_query(query), too_large());
    };
    let incoming = match Incoming::parse(method.as_str(), query, &body) {
        Ok(incoming) => incoming,
        Err((format, error)) => return fail(format, error),
    };
    if uri.path() != "/" {
        return fail(incoming.format, ApiError::api_not_found());
    }

    let (outcome, reached) = serve(shared, &incoming, &decision).await;
    let mut response = match outcome {
        Ok((action, data)) => reply::success(incoming.format, action.as_str(), &request_id, data),
        Err(error) => fail(incoming.format, error),
    };
    if reached {
        linger(&decision, &mut response).await;
    }
    response
}

/// The gateway's answer for a body over the limit. The real code and status are
/// unconfirmed (PROTOCOL.md §7); 413 says what happened.
fn too_large() -> ApiError {
    let message = "The request body exceeds the size limit of 8 MB.";
    ApiError::gateway(413, "RequestEntityTooLarge", message)
}

/// Runs the gateway checks, the quota and the action. The flag says whether the action
/// ran, which is when slow answers and dropped connections apply.
async fn serve(
    shared: &Shared,
    incoming: &Incoming,
    decision: &Decision,
) -> (Result<(Action, Value), ApiError>, bool) {
    if let Some(action) = incoming.action() {
        shared.recorder().arrived(action, Instant::now());
    }
    let call = match admit(shared, incoming, decision) {
        Ok(call) => call,
        Err(error) => return (Err(error), false),
    };
    // The added latency is the service's own time on a call (fetching images, comparing
    // faces), so it comes after the gateway has counted the call against the quota, as a
    // call counts when it arrives. Latency in front of the gateway would be network
    // latency, which within a region is a few milliseconds; refused calls answer at once.
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let data = match call.action {
        Action::GetVerifyToken => actions::get_verify_token(shared, incoming, &call),
        Action::SubmitMaterials => {
            submit::submit_materials(shared, incoming, &call, decision).await
        }
        Action::GetStatus => actions::get_status(shared, incoming, &call),
        Action::GetMaterials => actions::get_materials(shared, incoming, &call),
    };
    (data.map(|data| (call.action, data)), true)
}

/// Authenticates, applies the quota, then the injected failures that precede any change.
fn admit(
    shared: &Shared,
    incoming: &Incoming,
    decision: &Decision,
) -> Result<gateway::Call, ApiError> {
    let call = gateway::authenticate(shared, incoming)?;
    let limit = shared.config.quotas.get(&call.action).copied();
    shared
        .recorder()
        .admit(call.action, limit, Instant::now())
        .map_err(|wait| ApiError::throttled(shared.config.retry_after_header.then_some(wait)))?;
    match decision.gateway {
        Some(GatewayFault::Internal) => return Err(ApiError::gateway_internal()),
        Some(GatewayFault::Unavailable) => return Err(ApiError::unavailable()),
        None => {}
    }
    if decision.internal {
        return Err(ApiError::internal());
    }
    Ok(call)
}

/// Applies the slow-answer and dropped-connection faults to a call that ran.
async fn linger(decision: &Decision, response: &mut Response) {
    if let Some(wait) = decision.slow {
        tokio::time::sleep(wait).await;
    }
    if decision.drop {
        response.extensions_mut().insert(DropConnection);
    }
}

/// Accepts connections until `shutdown` changes.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, router.clone()));
                }
                Err(error) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::debug!(%error, "sandbox accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, router: Router) {
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let router = router.clone();
            async move {
                let response = match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if response.extensions().get::<DropConnection>().is_some() {
                    return Err(Dropped);
                }
                Ok(response.into_response())
            }
        });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "sandbox connection ended");
    }
}
