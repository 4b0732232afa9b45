//! `serve`: the HelpScout Log as a web page, from the DuckDB file while scheduled syncs keep
//! writing it. The file is opened read-only per request and never held between requests; a
//! request that meets a commit waits briefly and then says a sync is committing. Pages are
//! rendered on the server (no script at all), behind sign-in, with the log page's access
//! levels: Managers view and export, Administrators also retry and manage users.

mod auth;
mod chart;
mod export;
mod filters;
mod html;
mod intake;
mod pages;
mod retry;
mod session;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::html;

use crate::deliver::{PushSettings, Waker};
use crate::extract::SyncSettings;
use crate::store::{Outbox, Outputs, Reader, StoreError, Warehouse};
pub use intake::signature;
pub use users::{Role, UserStore, UsersError};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub outputs: Outputs,
    /// How to reach Help Scout, for retries and deliveries (None: retries say what is missing,
    /// and the intake queues what it takes).
    pub sync: Option<SyncSettings>,
    /// The forms the intake takes, and how deliveries are timed.
    pub push: PushSettings,
    pub listen: SocketAddr,
}

/// The users file beside the outputs.
pub fn user_store(outputs: &Outputs) -> UserStore {
    UserStore::new(outputs.state_dir().join("users.json"))
}

pub(crate) struct AppState {
    pub outputs: Outputs,
    pub sync: Option<SyncSettings>,
    pub users: UserStore,
    pub sessions: session::Sessions,
    pub throttle: session::Throttle,
    pub push: PushSettings,
    /// The outbox the intake writes (one connection; each write is one fsynced transaction).
    pub outbox: std::sync::Mutex<Outbox>,
    /// Wakes the background delivery.
    pub wake: Arc<Waker>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("No one can sign in yet: add a user with `helpscout-etl users add NAME --role administrator` (same --output or --config as `serve`), then start `serve` again.")]
    NoUsers,
    #[error("Cannot listen on {addr}: {reason}; choose another address with --listen.")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Outbox(#[from] StoreError),
}

/// Why a request could not be answered, as the page says it.
#[derive(Debug)]
pub(crate) enum PageError {
    Store(StoreError),
    BadRequest(String),
    Forbidden(&'static str),
    NotFound(String),
    Internal(String),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Store(e)
    }
}

impl From<UsersError> for PageError {
    fn from(e: UsersError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            PageError::Store(StoreError::Busy { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "A sync is committing", "A sync is committing to the log right now; try again in a moment.".to_string())
            }
            PageError::Store(StoreError::NotADatabase { .. } | StoreError::NoData { .. }) => {
                (StatusCode::NOT_FOUND, "No data yet", "There is no log yet: run `helpscout-etl sync` into these outputs first.".to_string())
            }
            PageError::Store(e @ StoreError::ViewMissing { .. }) => (StatusCode::NOT_FOUND, "Not installed", e.to_string()),
            PageError::Store(e) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", e.to_string()),
            PageError::BadRequest(text) => (StatusCode::BAD_REQUEST, "That request cannot be read", text),
            PageError::Forbidden(what) => (StatusCode::FORBIDDEN, "Not allowed", format!("{what} needs the Administrator access level.")),
            PageError::NotFound(text) => (StatusCode::NOT_FOUND, "Not found", text),
            PageError::Internal(text) => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", text),
        };
        let page = html::layout(title, None, html::Nav::None, html! { (html::notice("error", &text)) p { a href="/log" { "Back to the log" } } });
        (status, page).into_response()
    }
}

impl AppState {
    /// Runs `f` on a read-only view of the file, off the async threads; the file is closed
    /// when `f` returns.
    pub async fn read<T: Send + 'static>(self: &Arc<Self>, f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static) -> Result<T, PageError> {
        let path: PathBuf = self.outputs.duckdb.clone();
        tokio::task::spawn_blocking(move || {
            let reader = Warehouse::new(path).read()?;
            f(&reader)
        })
        .await
        .map_err(|e| PageError::Internal(format!("a page's query stopped: {e}")))?
        .map_err(PageError::from)
    }
}

const STYLE: &str = include_str!("assets/style.css");

/// Headers every answer carries: nothing from elsewhere, no script, no framing, no referrer.
async fn secure_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")], STYLE).into_response()
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/log") }))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/log", get(pages::log))
        .route("/events/{id}", get(pages::event))
        .route("/failures", get(pages::failures))
        .route("/retry", post(retry::retry))
        .route("/health", get(pages::health))
        .route("/usage", get(pages::usage))
        .route("/happiness", get(pages::happiness))
        .route("/productivity", get(pages::productivity))
        .route("/users", get(pages::users).post(pages::add_user))
        .route("/users/remove", post(pages::remove_user))
        .route("/export", get(export::export))
        .route("/assets/style.css", get(style))
        .route("/forms/{form}", post(intake::form).layer(axum::extract::DefaultBodyLimit::max(intake::MAX_BODY)))
        .route("/customers", post(intake::customer).layer(axum::extract::DefaultBodyLimit::max(intake::MAX_BODY)))
        .layer(axum::middleware::from_fn(secure_headers))
        .with_state(state)
}

/// A server bound to its address, not serving yet.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
}

/// Binds the address; refuses to start while no one could sign in.
pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
    let users = user_store(&config.outputs);
    if users.list()?.is_empty() {
        return Err(ServeError::NoUsers);
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| ServeError::Listen { addr: config.listen, reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen { addr: config.listen, reason: e.to_string() })?;
    let outbox = std::sync::Mutex::new(Outbox::open(config.outputs.outbox())?);
    let state = Arc::new(AppState {
        outputs: config.outputs,
        sync: config.sync,
        users,
        sessions: Default::default(),
        throttle: Default::default(),
        push: config.push,
        outbox,
        wake: Arc::new(Waker::default()),
    });
    Ok(Server { listener, addr, state })
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` completes.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let state = self.state.clone();
        crate::deliver::spawn_background(state.outputs.clone(), state.sync.as_ref().map(|s| s.client.clone()), state.push.clone(), state.wake.clone());
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app).with_graceful_shutdown(stop).await.map_err(|e| ServeError::Listen { addr: self.addr, reason: e.to_string() });
        state.wake.stop();
        served
    }

    /// Serves until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn run(self) -> Result<(), ServeError> {
        self.run_until(async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_that_meets_a_commit_says_a_sync_is_committing() {
        let response = PageError::Store(StoreError::Busy { path: "x.duckdb".into() }).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("A sync is committing to the log right now; try again in a moment."));
        let response = PageError::Forbidden("Retrying failed syncs").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = PageError::Store(StoreError::NoData { path: "x".into() }).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
