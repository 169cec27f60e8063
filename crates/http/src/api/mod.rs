//! The management API under `/v1`: one module per resource, DTOs beside their handlers.

pub mod calls;
pub mod campaigns;
pub mod carriers;
pub mod conversions;
pub mod domains;
pub mod guard;
pub mod live;
pub mod numbers;
pub mod plans;
pub mod pools;
pub mod reports;
pub mod sessions;
pub mod targets;
pub mod webhooks;

use callopt_domain::ValidationError;
use serde::{Deserialize, Deserializer};

/// A trimmed name of 1 to 200 characters, or a validation error naming `name`.
pub fn valid_name(name: &str) -> Result<String, ValidationError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ValidationError::new("name", "1 to 200 characters"));
    }
    Ok(name.to_string())
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds precision).
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Deserialises a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
