//! The Guard: what keeps Callopt from serving numbers to pages their owners did not prove, or to
//! pages that behave like tech-support scams.
//!
//! # Layout
//! - [`verify`]: proving ownership of a domain by a DNS TXT record or the well-known file.
//! - [`scanner`]: the [`scanner::PageScanner`] the service's scan worker calls; the binary
//!   implements it with `callopt-scan` (kept out of this crate: oxc is large to compile, and this
//!   crate is on the HTTP face's path).

pub mod scanner;
pub mod verify;
