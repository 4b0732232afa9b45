//! The bundled SQL views (`sql/*.sql`), installed into the DuckDB file by every sync.

use crate::sinks::duckdb::{Tx, WarehouseError};

/// (name, SQL) of every bundled view file, in dependency order.
pub const VIEWS: &[(&str, &str)] = &[];

pub fn install(tx: &Tx<'_>) -> Result<(), WarehouseError> {
    for (name, sql) in VIEWS {
        tx.execute_batch(sql, &format!("installing the view file {name}"))?;
    }
    Ok(())
}
