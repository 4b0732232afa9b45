//! The HTTP side: routing, authentication, rate limiting, fault injection, request
//! accounting and the admin endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::sync::oneshot;
use url::form_urlencoded;

use super::api::{self, Ctx};
use super::dates::{fmt_ts, http_date};
use super::faults::{FaultKind, FaultPlan};
use super::mutate::MutationPlan;
use super::paging::ListRequest;
use super::rate_limit::Decision;
use super::reply::Reply;
use super::{Inner, Plan, lock, writes};

pub async fn serve(
    listener: tokio::net::TcpListener,
    inner: Arc<Inner>,
    stop: oneshot::Receiver<()>,
) {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route("/_admin/advance", post(admin_advance))
        .route("/_admin/now", get(admin_now))
        .route("/_admin/mutate", post(admin_mutate))
        .route("/_admin/faults", post(admin_faults))
        .route("/_admin/expire-tokens", post(admin_expire))
        .route("/_admin/truth", get(admin_truth))
        .route("/_admin/created", get(admin_created))
        .route("/_admin/stats", get(admin_stats))
        .route("/_admin/stats/reset", post(admin_stats_reset))
        .route("/_admin/requests", get(admin_requests))
        .fallback(api_entry)
        .with_state(inner);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await;
}

// ---------------------------------------------------------------- admin

async fn admin_advance(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(secs) = q.get("seconds").and_then(|s| s.parse::<i64>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "seconds=N is required"})),
        )
            .into_response();
    };
    inner.clock.advance_ms(secs * 1000);
    axum::Json(json!({"now": fmt_ts(inner.clock.now_ts())})).into_response()
}

async fn admin_now(State(inner): State<Arc<Inner>>) -> Response {
    axum::Json(json!({"now": fmt_ts(inner.clock.now_ts())})).into_response()
}

async fn admin_mutate(
    State(inner): State<Arc<Inner>>,
    axum::Json(plan): axum::Json<MutationPlan>,
) -> Response {
    let inner2 = inner.clone();
    match tokio::task::spawn_blocking(move || inner2.mutate(&plan)).await {
        Ok(rep) => axum::Json(rep).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn admin_faults(
    State(inner): State<Arc<Inner>>,
    axum::Json(plan): axum::Json<FaultPlan>,
) -> Response {
    lock(&inner.faults).set(plan);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_expire(State(inner): State<Arc<Inner>>) -> Response {
    lock(&inner.auth).expire_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_truth(State(inner): State<Arc<Inner>>) -> Response {
    match tokio::task::spawn_blocking(move || serde_json::to_vec(&inner.ground_truth())).await {
        Ok(Ok(body)) => ([("content-type", "application/json")], body).into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn admin_created(State(inner): State<Arc<Inner>>) -> Response {
    axum::Json(lock(&inner.state).created.clone()).into_response()
}

async fn admin_stats(State(inner): State<Arc<Inner>>) -> Response {
    axum::Json(lock(&inner.stats).snapshot()).into_response()
}

/// Clears the counters and the request journal.
async fn admin_stats_reset(State(inner): State<Arc<Inner>>) -> Response {
    lock(&inner.stats).reset();
    StatusCode::NO_CONTENT.into_response()
}

/// The journal: every API GET's path and query, in the order received (a JSON array).
async fn admin_requests(State(inner): State<Arc<Inner>>) -> Response {
    let body = serde_json::to_vec(lock(&inner.stats).journal_entries());
    match body {
        Ok(body) => ([("content-type", "application/json")], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

// ---------------------------------------------------------------- routing

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Token,
    Conversations,
    Conversation(i64),
    ConversationThreads(i64),
    Customers,
    Customer(i64),
    Mailboxes,
    MailboxFields(i64),
    MailboxFolders(i64),
    Users,
    Teams,
    TeamMembers(i64),
    Workflows,
    Tags,
    Ratings,
    Unknown,
}

/// The route of a path and its endpoint template (for request accounting).
fn route(path: &str) -> (Route, &'static str) {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<i64>().ok();
    match segs.as_slice() {
        ["", "v2", "oauth2", "token"] => (Route::Token, "/v2/oauth2/token"),
        ["", "v2", "conversations"] => (Route::Conversations, "/v2/conversations"),
        ["", "v2", "conversations", x] => match id(x) {
            Some(i) => (Route::Conversation(i), "/v2/conversations/{id}"),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "conversations", x, "threads"] => match id(x) {
            Some(i) => (
                Route::ConversationThreads(i),
                "/v2/conversations/{id}/threads",
            ),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "customers"] => (Route::Customers, "/v2/customers"),
        ["", "v2", "customers", x] => match id(x) {
            Some(i) => (Route::Customer(i), "/v2/customers/{id}"),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "mailboxes"] => (Route::Mailboxes, "/v2/mailboxes"),
        ["", "v2", "mailboxes", x, "fields"] => match id(x) {
            Some(i) => (Route::MailboxFields(i), "/v2/mailboxes/{id}/fields"),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "mailboxes", x, "folders"] => match id(x) {
            Some(i) => (Route::MailboxFolders(i), "/v2/mailboxes/{id}/folders"),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "users"] => (Route::Users, "/v2/users"),
        ["", "v2", "teams"] => (Route::Teams, "/v2/teams"),
        ["", "v2", "teams", x, "members"] => match id(x) {
            Some(i) => (Route::TeamMembers(i), "/v2/teams/{id}/members"),
            None => (Route::Unknown, "other"),
        },
        ["", "v2", "workflows"] => (Route::Workflows, "/v2/workflows"),
        ["", "v2", "tags"] => (Route::Tags, "/v2/tags"),
        ["", "v2", "reports", "happiness", "ratings"] => {
            (Route::Ratings, "/v2/reports/happiness/ratings")
        }
        _ => (Route::Unknown, "other"),
    }
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Token parameters: query string, then a form or JSON body on top.
fn token_params(query: &str, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut p: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.contains("json") || body.first() == Some(&b'{') {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(body)
        {
            for (k, v) in m {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                p.insert(k, s);
            }
        }
    } else if !body.is_empty() {
        p.extend(form_urlencoded::parse(body).into_owned());
    }
    p
}

// ---------------------------------------------------------------- the API pipeline

/// What to do to the response after the handler ran.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    Drop,
    Truncate,
    /// Send this status's error answer instead of the handler's.
    Status(u16),
    /// Hold the answer this many milliseconds.
    Hold(u64),
}

async fn api_entry(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let method = req.method().as_str().to_string();
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let (route, template) = route(&path);
    if !path.starts_with("/v2/") && path != "/v2" {
        return Reply::not_found("Not found").into_response_parts_only();
    }
    // Journaled on arrival, before any fault or wait: a request the client gave up on was
    // still made, and the order is the order of arrival.
    if method == "GET" && route != Route::Token {
        lock(&inner.stats).journal(path_and_query.as_deref().unwrap_or(&path));
    }

    let mut remaining: Option<u32> = None;
    let mut faulted = false;
    let mut after = After::Nothing;
    let reply = 'reply: {
        if route == Route::Token {
            let fault = lock(&inner.faults).on_request(&method, &path, true);
            if let Some(k) = fault {
                faulted = true;
                if let Some(reply) = transport_fault(&k, &mut remaining, &mut after).await {
                    break 'reply reply;
                }
            }
            if method != "POST" {
                break 'reply Reply::json(
                    405,
                    &json!({"error": "invalid_request", "error_description": "POST required"}),
                );
            }
            let p = token_params(&query, &headers, &body);
            let now_ms = inner.clock.now_ms();
            break 'reply match lock(&inner.auth).token_request(&p, now_ms) {
                Ok(v) => Reply::json(200, &v),
                Err(e) => Reply::json(e.status, &e.body),
            };
        }

        // Authentication.
        let token = bearer(&headers);
        let authed = token
            .as_deref()
            .is_some_and(|t| lock(&inner.auth).check(t, inner.clock.now_ms()));
        if !authed {
            break 'reply Reply::unauthorized();
        }
        let token = token.unwrap_or_default();

        // Rate limit.
        let weight = if is_write(&method) { 2 } else { 1 };
        match lock(&inner.limiter).check(inner.clock.now_ms(), weight) {
            Decision::Allowed { remaining: r } => remaining = Some(r),
            Decision::Limited { retry_after_secs } => {
                remaining = Some(0);
                break 'reply Reply::rate_limited(retry_after_secs);
            }
        }

        // Faults.
        let mut drift = None;
        let fault = lock(&inner.faults).on_request(&method, &path, false);
        if let Some(k) = fault {
            faulted = true;
            if let Some(reply) = transport_fault(&k, &mut remaining, &mut after).await {
                break 'reply reply;
            }
            match k {
                FaultKind::ExpireToken => {
                    lock(&inner.auth).revoke(&token);
                    break 'reply Reply::unauthorized();
                }
                FaultKind::PageDrift { rows } => drift = Some(rows),
                _ => {}
            }
        }

        let base = inner.base_url();
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let inner2 = inner.clone();
        let m = method.clone();
        // Handlers are synchronous and hold the state lock: run them off the async workers.
        let r = tokio::task::spawn_blocking(move || {
            let ctx = Ctx {
                base: &base,
                list: ListRequest {
                    origin: inner2.origin(),
                    path: path.clone(),
                    params,
                },
                now: inner2.clock.now_ts(),
            };
            handle(&inner2, &m, route, &ctx, &body, drift)
        })
        .await;
        r.unwrap_or_else(|_| Reply::internal_error())
    };
    let reply = match after {
        After::Status(s) => status_fault(s),
        _ => reply,
    };
    // Accounted before the hold: a client that gives up waiting still made the request.
    let response = finish(&inner, &method, template, reply, remaining, faulted, after);
    if let After::Hold(ms) = after {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    response
}

/// The part of a fault that any route can suffer: an error answer instead of the real one
/// (returned), a delay, or something done to the handler's answer (`after`).
async fn transport_fault(
    kind: &FaultKind,
    remaining: &mut Option<u32>,
    after: &mut After,
) -> Option<Reply> {
    match kind {
        FaultKind::Status(s) => return Some(status_fault(*s)),
        FaultKind::RateLimitBurst => {
            *remaining = Some(0);
            return Some(Reply::rate_limited(1));
        }
        FaultKind::Delay(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        FaultKind::DropConnection => *after = After::Drop,
        FaultKind::TruncatedBody => *after = After::Truncate,
        FaultKind::StatusAfterWrite(s) => *after = After::Status(*s),
        FaultKind::DelayAfter(ms) => *after = After::Hold(*ms),
        FaultKind::ExpireToken | FaultKind::PageDrift { .. } => {}
    }
    None
}

fn status_fault(status: u16) -> Reply {
    match status {
        500 => Reply::internal_error(),
        502..=504 => Reply::gateway(status),
        429 => Reply::rate_limited(1),
        s => Reply::json(
            s,
            &json!({"logRef": super::reply::log_ref(), "message": "Injected error"}),
        ),
    }
}

fn handle(
    inner: &Inner,
    method: &str,
    route: Route,
    ctx: &Ctx,
    body: &[u8],
    drift: Option<usize>,
) -> Reply {
    let mut st = lock(&inner.state);
    let st = &mut *st;
    let now = ctx.now;
    match (method, route) {
        ("GET", Route::Conversations) => api::list_conversations(st, ctx, drift),
        ("POST", Route::Conversations) => writes::create_conversation(st, ctx.base, body, now),
        ("GET", Route::Conversation(id)) => api::get_conversation(st, ctx, id),
        ("GET", Route::ConversationThreads(id)) => api::list_threads(st, ctx, id),
        ("GET", Route::Customers) => api::list_customers(st, ctx, drift),
        ("POST", Route::Customers) => writes::create_customer(st, ctx.base, body, now),
        ("GET", Route::Customer(id)) => api::get_customer(st, ctx, id),
        ("PUT", Route::Customer(id)) => writes::update_customer(st, id, body, now, true),
        ("PATCH", Route::Customer(id)) => writes::update_customer(st, id, body, now, false),
        ("GET", Route::Mailboxes) => api::list_mailboxes(st, ctx),
        ("GET", Route::MailboxFields(id)) => api::list_fields(st, ctx, id),
        ("GET", Route::MailboxFolders(id)) => api::list_folders(st, ctx, id),
        ("GET", Route::Users) => api::list_users(st, ctx),
        ("GET", Route::Teams) => api::list_teams(st, ctx),
        ("GET", Route::TeamMembers(id)) => api::list_team_members(st, ctx, id),
        ("GET", Route::Workflows) => api::list_workflows(st, ctx),
        ("GET", Route::Tags) => api::list_tags(st, ctx),
        ("GET", Route::Ratings) => {
            if inner.cfg.plan == Plan::Standard {
                Reply::json(
                    403,
                    &json!({"logRef": super::reply::log_ref(), "message": "Reports are not available on the Standard plan"}),
                )
            } else {
                api::happiness_ratings(st, ctx)
            }
        }
        (_, Route::Unknown) => Reply::not_found("Not found"),
        _ => Reply::json(
            405,
            &json!({"logRef": super::reply::log_ref(), "message": "Method not allowed"}),
        ),
    }
}

/// Adds the `Date` and rate-limit headers, applies body faults, records the request.
fn finish(
    inner: &Inner,
    method: &str,
    template: &str,
    reply: Reply,
    remaining: Option<u32>,
    faulted: bool,
    after: After,
) -> Response {
    let now_ms = inner.clock.now_ms();
    let (limit, remaining) = {
        let mut l = lock(&inner.limiter);
        let r = remaining.unwrap_or_else(|| l.remaining(now_ms));
        (l.limit(), r)
    };
    lock(&inner.stats).record(method, template, reply.status, faulted);

    let mut b = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    let hs = b.headers_mut().expect("builder");
    let mut put = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            hs.append(k, v);
        }
    };
    put("date", &http_date(now_ms.div_euclid(1000)));
    put("x-ratelimit-limit-minute", &limit.to_string());
    put("x-ratelimit-remaining-minute", &remaining.to_string());
    if let Some(ct) = reply.content_type {
        put("content-type", ct);
    }
    for (k, v) in &reply.headers {
        put(k, v);
    }
    let body = Bytes::from(reply.body);
    let body = match after {
        After::Nothing | After::Status(_) | After::Hold(_) => Body::from(body),
        After::Truncate => Body::from(body.slice(0..body.len() / 2)),
        After::Drop => {
            put("content-length", &body.len().to_string());
            let half = body.slice(0..body.len() / 2);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "connection dropped by fault injection",
                )),
            ];
            Body::from_stream(futures::stream::iter(chunks))
        }
    };
    b.body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl Reply {
    /// A reply outside the API pipeline (no accounting, no rate-limit headers).
    fn into_response_parts_only(self) -> Response {
        let mut r = Response::new(Body::from(self.body));
        *r.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::NOT_FOUND);
        if let Some(ct) = self.content_type {
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static(ct));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_templates() {
        assert_eq!(
            route("/v2/conversations/12/threads"),
            (
                Route::ConversationThreads(12),
                "/v2/conversations/{id}/threads"
            )
        );
        assert_eq!(
            route("/v2/conversations/"),
            (Route::Conversations, "/v2/conversations")
        );
        assert_eq!(route("/v2/conversations/abc").0, Route::Unknown);
        assert_eq!(route("/v2/reports/happiness/ratings").0, Route::Ratings);
        assert_eq!(
            route("/v2/teams/3/members"),
            (Route::TeamMembers(3), "/v2/teams/{id}/members")
        );
    }

    #[test]
    fn token_parameters_from_every_place() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let p = token_params(
            "client_id=a",
            &h,
            b"grant_type=client_credentials&client_secret=s%20x",
        );
        assert_eq!(p["client_id"], "a");
        assert_eq!(p["client_secret"], "s x");
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let p = token_params(
            "",
            &h,
            br#"{"grant_type":"refresh_token","refresh_token":"r"}"#,
        );
        assert_eq!(p["refresh_token"], "r");
    }
}
