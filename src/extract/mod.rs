//! Extraction: a run over the selected tables, one strategy per way the API lists a table
//! (`modified`, `whole`, `per_parent`, with `gather` for embedded children and `removals` for
//! what vanished), commits (`commit`), retries of failed records (`retry`), a typed run report
//! and a progress observer. Commands call `sync` and `retry`; nothing here prints.

mod census;
mod commit;
mod context;
mod error;
mod events;
mod gather;
mod modified;
mod per_parent;
pub mod progress;
mod removals;
pub mod report;
mod retry;
mod run;
pub mod settings;
mod whole;

pub use error::SyncError;
pub use progress::{ListingProgress, Observer, Quiet};
pub use report::{FailureCause, RunStatus, SyncReport, TableReport};
pub use retry::{RecordOutcome, retry, retry_records};
pub use run::sync;
pub use settings::{Method, SyncSettings, TableChoice};
#[cfg(test)]
mod testing;
