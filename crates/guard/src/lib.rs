//! The Guard: what keeps Callopt from serving numbers to pages their owners did not prove.
//!
//! # Layout
//! - [`verify`]: proving ownership of a domain through the well-known file.
//!
//! Abuse reports come next and will live here too; page scanning is `callopt-scan`.

pub mod verify;
