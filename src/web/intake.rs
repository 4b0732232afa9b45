//! The intake: `POST /forms/{form}` (contact-form submissions) and `POST /customers`
//! (customer records) for the business's own systems. An answer of 202 means the record is
//! durable in the outbox (fsynced), whatever the DuckDB file is doing; delivery runs beside the
//! server and is woken at once.
//!
//! Each form has its own secret, shown as the `X-Form-Secret` header or as an HMAC-SHA256 of
//! the exact body (`X-Signature: sha256=HEX`, the form services' webhook convention).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::AppState;
use crate::deliver::{self, DeliverError, intake};
use crate::store::Received;

/// The largest body taken (a contact form is a few kilobytes).
pub const MAX_BODY: usize = 64 * 1024;

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

fn refused(status: StatusCode, error: &str) -> Response {
    answer(status, json!({ "error": error }))
}

/// Whether the poster knows the secret: the header itself, or a signature of the body.
fn authentic(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    if let Some(given) = headers.get("x-form-secret").and_then(|v| v.to_str().ok()) {
        return bool::from(given.as_bytes().ct_eq(secret.as_bytes()));
    }
    let Some(signature) = headers.get("x-signature").and_then(|v| v.to_str().ok()) else { return false };
    let hex = signature.trim().strip_prefix("sha256=").unwrap_or(signature.trim());
    let Some(bytes) = decode_hex(hex) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The HMAC a poster sends for `body` (for tests and for documenting the convention).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The fields of a body by its content type.
fn fields(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, Box<Response>> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let parsed = if content_type.starts_with("application/json") {
        intake::json_fields(body)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Ok(intake::form_fields(body))
    } else {
        Err(intake::IntakeError::ContentType(content_type.clone()))
    };
    parsed.map_err(|e| {
        let status = if matches!(e, intake::IntakeError::ContentType(_)) { StatusCode::UNSUPPORTED_MEDIA_TYPE } else { StatusCode::BAD_REQUEST };
        Box::new(refused(status, &e.to_string()))
    })
}

pub(crate) async fn form(State(state): State<Arc<AppState>>, Path(form): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(settings) = state.push.forms.get(&form) else {
        return refused(StatusCode::NOT_FOUND, "No such form.");
    };
    let Some(secret) = settings.secret.clone() else {
        return refused(StatusCode::NOT_FOUND, "This form takes no posts over HTTP: give it a secret in the configuration.");
    };
    if !authentic(&secret, &headers, &body) {
        return refused(StatusCode::UNAUTHORIZED, "Send the form's secret in X-Form-Secret, or sign the body: X-Signature: sha256=HMAC-SHA256(secret, body).");
    }
    let fields = match fields(&headers, &body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let (submission, given) = match intake::submission(&form, fields) {
        Ok(s) => s,
        Err(e) => return refused(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let problem = submission.problem();
    let app = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut outbox = app.outbox.lock().unwrap_or_else(|e| e.into_inner());
        deliver::receive(&mut outbox, &app.push, &submission, given).map(|r| (r, submission.id))
    })
    .await;
    let (received, id) = match stored {
        Ok(Ok(done)) => done,
        Ok(Err(DeliverError::UnknownForm { .. })) => return refused(StatusCode::NOT_FOUND, "No such form."),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a submission could not be stored");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "The submission could not be stored; send it again.");
        }
        Err(_) => return refused(StatusCode::SERVICE_UNAVAILABLE, "The submission could not be stored; send it again."),
    };
    state.wake.notify_one();
    match (received, problem) {
        (Received::Duplicate { of, .. }, _) => answer(StatusCode::OK, json!({ "submission_id": id, "status": "duplicate", "duplicate_of": of })),
        // Kept and logged as failed, so an Administrator can correct and retry it; the poster
        // learns at once what to fix.
        (Received::New { .. }, Some(reason)) => answer(StatusCode::UNPROCESSABLE_ENTITY, json!({ "submission_id": id, "status": "failed", "error": reason.message(), "fix": reason.fix() })),
        (Received::New { .. }, None) => answer(StatusCode::ACCEPTED, json!({ "submission_id": id, "status": "queued" })),
    }
}

pub(crate) async fn customer(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.push.customers_secret.clone() else {
        return refused(StatusCode::NOT_FOUND, "Customer records are not taken over HTTP: set HELPSCOUT_CUSTOMERS_SECRET.");
    };
    if !authentic(&secret, &headers, &body) {
        return refused(StatusCode::UNAUTHORIZED, "Send the customers secret in X-Form-Secret, or sign the body: X-Signature: sha256=HMAC-SHA256(secret, body).");
    }
    let record = match fields(&headers, &body).map(intake::customer) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return refused(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(response) => return *response,
    };
    let problem = record.problem();
    let app = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut outbox = app.outbox.lock().unwrap_or_else(|e| e.into_inner());
        deliver::receive_customer(&mut outbox, &record)
    })
    .await;
    let Ok(Ok(id)) = stored else {
        return refused(StatusCode::SERVICE_UNAVAILABLE, "The record could not be stored; send it again.");
    };
    state.wake.notify_one();
    match problem {
        Some(reason) => answer(StatusCode::UNPROCESSABLE_ENTITY, json!({ "record_id": id, "status": "failed", "error": reason.message(), "fix": reason.fix() })),
        None => answer(StatusCode::ACCEPTED, json!({ "record_id": id, "status": "queued" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_or_a_signature_of_the_exact_body_is_needed() {
        let secret = "0123456789abcdef-secret";
        let mut h = HeaderMap::new();
        assert!(!authentic(secret, &h, b"{}"));
        h.insert("x-form-secret", secret.parse().unwrap());
        assert!(authentic(secret, &h, b"{}"));
        h.insert("x-form-secret", "0123456789abcdef-secreT".parse().unwrap());
        assert!(!authentic(secret, &h, b"{}"));
        let mut h = HeaderMap::new();
        h.insert("x-signature", signature(secret, b"{\"a\":1}").parse().unwrap());
        assert!(authentic(secret, &h, b"{\"a\":1}"));
        assert!(!authentic(secret, &h, b"{\"a\":2}"));
        h.insert("x-signature", "sha256=zz".parse().unwrap());
        assert!(!authentic(secret, &h, b"{\"a\":1}"));
    }
}
