//! What a running sync tells whoever watches it. The CLI draws it; tests stay quiet.

use crate::api::Usage;
use crate::catalog::Table;

use super::report::TableReport;

/// How far a table's listing has got.
#[derive(Debug, Clone, Copy)]
pub struct ListingProgress {
    /// Records received so far in this run's listing of the table.
    pub rows: u64,
    /// Records the list holds, as its first page said (`totalElements`).
    pub total: Option<u64>,
    pub pages: u64,
    pub total_pages: u64,
    pub usage: Usage,
}

pub trait Observer: Sync {
    fn table_started(&self, _table: &'static Table) {}
    fn listing(&self, _table: &'static Table, _progress: &ListingProgress) {}
    fn table_finished(&self, _report: &TableReport) {}
}

/// Watches nothing.
pub struct Quiet;

impl Observer for Quiet {}
