//! Sign-in, sign-out, and who is signed in (`Signed`, an extractor every page takes).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use maud::{Markup, html};
use serde::Deserialize;

use super::html::{Nav, Viewer, layout, notice};
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, cookie, over_https, same, set_cookie, token};
use super::{AppState, PageError};

/// The signed-in user of a request; pages without one send the browser to sign in.
pub(crate) struct Signed(pub Viewer);

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Response> {
        let session = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| state.sessions.get(&id));
        // The role is read afresh: a removed user or a changed role takes effect at once.
        let user = match &session {
            Some(s) => state.users.get(&s.user).map_err(|e| PageError::from(e).into_response())?,
            None => None,
        };
        match (session, user) {
            (Some(s), Some(u)) => Ok(Signed(Viewer { name: u.name, role: u.role, csrf: s.csrf })),
            _ => {
                let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/log");
                let next = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", here).finish();
                Err(Redirect::to(&format!("/login?{next}")).into_response())
            }
        }
    }
}

impl Viewer {
    /// A form's CSRF token must be this session's.
    pub fn check(&self, csrf: &str) -> Result<(), PageError> {
        if same(csrf, &self.csrf) { Ok(()) } else { Err(PageError::BadRequest("This form has expired; reload the page and try again.".into())) }
    }

    pub fn require_admin(&self, what: &'static str) -> Result<(), PageError> {
        if self.role.is_admin() { Ok(()) } else { Err(PageError::Forbidden(what)) }
    }
}

/// Only paths of this site (no `//host`, no scheme) are followed after sign-in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/log",
    }
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

fn form(next: &str, login_token: &str, message: Option<(&str, &str)>) -> Markup {
    layout(
        "Sign in",
        None,
        Nav::None,
        html! {
            @if let Some((kind, text)) = message { (notice(kind, text)) }
            form.signin method="post" action="/login" {
                input type="hidden" name="login_token" value=(login_token);
                input type="hidden" name="next" value=(next);
                div.field { label for="username" { "Username" } input #username name="username" autocomplete="username" required; }
                div.field { label for="password" { "Password" } input #password type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            p.hint { "Access level: Manager and above. Users are added with " code { "helpscout-etl users add" } "." }
        },
    )
}

fn with_login_cookie(status: StatusCode, headers: &HeaderMap, page: Markup, login_token: &str) -> Response {
    let cookie_value = set_cookie(LOGIN_COOKIE, login_token, over_https(headers), None);
    (status, [(header::SET_COOKIE, cookie_value)], page).into_response()
}

pub(crate) async fn login_page(headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let t = token();
    with_login_cookie(StatusCode::OK, &headers, form(safe_next(q.next.as_deref()), &t, None), &t)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    login_token: String,
    next: Option<String>,
}

pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref()).to_string();
    let fresh = token();
    let refuse = |status: StatusCode, text: &str| with_login_cookie(status, &headers, form(&next, &fresh, Some(("error", text))), &fresh);
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(&c, &f.login_token)) {
        return refuse(StatusCode::BAD_REQUEST, "This sign-in form has expired; please sign in again.");
    }
    if let Some(wait) = state.throttle.wait(&f.username, peer.ip()) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, &format!("Too many failed sign-in attempts; try again in {} seconds.", wait.as_secs().max(1)));
    }
    let users = state.users.clone();
    let (name, password) = (f.username.clone(), f.password);
    // Hashing is deliberately slow: off the async threads.
    let verified = tokio::task::spawn_blocking(move || users.verify(&name, &password)).await;
    match verified {
        Ok(Ok(Some(user))) => {
            state.throttle.succeeded(&user.name, peer.ip());
            let id = state.sessions.start(&user.name);
            let secure = over_https(&headers);
            // Both cookies: a plain array of headers would keep only the last.
            let cookies = AppendHeaders([
                (header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, secure, None)),
                (header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", secure, Some(std::time::Duration::ZERO))),
            ]);
            (cookies, Redirect::to(&next)).into_response()
        }
        Ok(Ok(None)) => {
            state.throttle.failed(&f.username, peer.ip());
            refuse(StatusCode::UNAUTHORIZED, "The username or password is wrong.")
        }
        Ok(Err(e)) => PageError::from(e).into_response(),
        Err(e) => PageError::Internal(format!("sign-in stopped: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn logout(State(state): State<Arc<AppState>>, Signed(viewer): Signed, headers: HeaderMap, Form(f): Form<CsrfForm>) -> Result<Response, PageError> {
    viewer.check(&f.csrf)?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.end(&id);
    }
    let clear = set_cookie(SESSION_COOKIE, "", over_https(&headers), Some(std::time::Duration::ZERO));
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(super::safe_next(Some("/events/3?x=1")), "/events/3?x=1");
        for bad in ["//evil.example", "https://evil.example", "javascript:alert(1)", "/\\evil"] {
            assert_eq!(super::safe_next(Some(bad)), "/log", "{bad}");
        }
        assert_eq!(super::safe_next(None), "/log");
    }
}
