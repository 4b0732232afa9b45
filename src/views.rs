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

/// `helpscout-etl views`: installs the views into an existing file, in one transaction.
pub fn install_into(outputs: &crate::config::Outputs) -> Result<(), WarehouseError> {
    let warehouse = crate::sinks::duckdb::Warehouse::new(&outputs.duckdb);
    let mut stats = Default::default();
    warehouse.commit(&mut stats, |tx| install(tx))
}
