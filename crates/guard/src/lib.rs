//! The Guard: what keeps Callopt from serving numbers to pages their owners did not prove.
//!
//! # Layout
//! - [`verify`]: proving ownership of a domain through the well-known file.
//!
//! Page scanning and abuse reports come next; they will live here too.

pub mod verify;
