//! Why a table or a run could not be synced, and what that means for the rest of the run.

use crate::api::{Action, ApiError};
use crate::convert::ConvertError;
use crate::store::StoreError;

use super::report::FailureCause;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error("internal error: {0}; please report it with the output of `helpscout-etl log --status Failed`.")]
    Internal(String),
    #[error("{failed} {table} record(s) could not be synced (`helpscout-etl log --status Failed --table {table}` lists them); the table's bookmark stays put and `helpscout-etl retry` re-attempts them.")]
    RecordsFailed { table: &'static str, failed: usize },
}

impl SyncError {
    /// Whether nothing else in the run can succeed after this.
    pub fn stops_run(&self) -> bool {
        match self {
            SyncError::Api(e) => e.action() == Action::FailRun,
            SyncError::Store(_) | SyncError::Internal(_) => true,
            SyncError::Convert(_) | SyncError::RecordsFailed { .. } => false,
        }
    }

    /// Whether the account's plan (or the app's role) refuses the table's own list (HTTP 403):
    /// the table is unavailable there, which is not a failure of the run.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SyncError::Api(e) if e.action() == Action::Forbidden)
    }

    pub fn cause(&self) -> FailureCause {
        match self {
            SyncError::Api(e) if e.is_credentials() => FailureCause::Credentials,
            SyncError::Api(ApiError::Unreachable { .. }) => FailureCause::Network,
            SyncError::Api(ApiError::TokenStore { .. }) | SyncError::Store(_) => FailureCause::Storage,
            SyncError::Api(_) | SyncError::Convert(_) => FailureCause::Api,
            SyncError::RecordsFailed { .. } => FailureCause::Records,
            SyncError::Internal(_) => FailureCause::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_stops_the_run_and_why() {
        let auth = SyncError::Api(ApiError::Auth("refused".into()));
        assert!(auth.stops_run());
        assert_eq!(auth.cause(), FailureCause::Credentials);
        let forbidden = SyncError::Api(ApiError::Forbidden { path: "/v2/reports".into() });
        assert!(!forbidden.stops_run(), "a plan without reports fails that table only");
        let records = SyncError::RecordsFailed { table: "conversations", failed: 2 };
        assert_eq!((records.stops_run(), records.cause()), (false, FailureCause::Records));
        let store = SyncError::Store(StoreError::Busy { path: "x".into() });
        assert_eq!((store.stops_run(), store.cause()), (true, FailureCause::Storage));
    }
}
