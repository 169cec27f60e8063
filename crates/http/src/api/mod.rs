//! The management API under `/v1`: one module per resource, DTOs beside their handlers.

pub mod campaigns;
pub mod domains;
pub mod numbers;
pub mod pools;
pub mod sessions;

use serde::{Deserialize, Deserializer};

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
