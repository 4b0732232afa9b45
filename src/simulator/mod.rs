//! A Help Scout Mailbox API 2.0 simulator (filled in by the simulator work).
pub mod cli;
