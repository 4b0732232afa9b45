//! Exit codes, so that schedulers tell outcomes apart; chosen here and nowhere else.

use std::process::ExitCode;

use crate::extract::{FailureCause, RunStatus, SyncError, SyncReport};
use crate::web::{ServeError, UsersError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Nothing more was committed than the output says.
    Failed = 1,
    /// Configuration, credentials or arguments need fixing.
    BadInput = 2,
    /// Some tables (or records) failed; the rest is complete.
    Partial = 3,
    /// `report health`: an event type below 95 % in the last 24 hours.
    Unhealthy = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl Exit {
    /// How a run's outcome exits.
    pub fn of_run(report: &SyncReport) -> Exit {
        match (report.status, report.failure_cause) {
            (RunStatus::Success, _) => Exit::Success,
            (RunStatus::Partial, _) => Exit::Partial,
            (RunStatus::Failed, Some(FailureCause::Credentials)) => Exit::BadInput,
            (RunStatus::Failed, _) => Exit::Failed,
        }
    }

    /// How an error that stopped a command exits.
    pub fn of_error(e: &anyhow::Error) -> Exit {
        for cause in e.chain() {
            if cause.downcast_ref::<super::config::ConfigError>().is_some() || cause.downcast_ref::<clap::Error>().is_some() {
                return Exit::BadInput;
            }
            if cause.downcast_ref::<SyncError>().is_some_and(|e| e.cause() == FailureCause::Credentials) {
                return Exit::BadInput;
            }
            // Starting the page with no user, or a user command that cannot be done as asked.
            if matches!(cause.downcast_ref::<ServeError>(), Some(ServeError::NoUsers)) || cause.downcast_ref::<UsersError>().is_some_and(UsersError::is_bad_input) {
                return Exit::BadInput;
            }
        }
        Exit::Failed
    }
}
