//! One module per command. Each takes its arguments and the writer for its output, and returns
//! how the process exits.

#[cfg(feature = "simulator")]
pub mod demo;
pub mod log;
pub mod outputs;
pub mod push;
pub mod report;
pub mod serve;
pub mod sync;
pub mod tables;
pub mod users;
