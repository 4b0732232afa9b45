//! The Help Scout API: the HTTP client (auth, throttling, retries), the paginators, and the one
//! classification of every failure into what the caller does (`Action`).

pub mod auth;
pub mod client;
pub mod error;
pub mod paging;
pub mod throttle;
pub mod transport;

pub use auth::{Credentials, TokenStore};
pub use client::{ApiResponse, Client, ClientConfig, Usage};
pub use error::{Action, ApiError, WriteOutcome};
pub use paging::{IdCollector, Listing, Page, PageSink};
pub use transport::api_date;
