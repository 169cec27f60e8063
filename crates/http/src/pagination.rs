//! Cursor pagination: `?limit=&cursor=`, with opaque cursors that encode the last id seen.

use crate::problem::ApiError;
use base64::Engine as _;
use callopt_domain::ValidationError;
use callopt_store::{Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Listing parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// How many objects per page (1 to 500, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl ListParams {
    /// The store's page request, or a validation error naming `limit` or `cursor`.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(ValidationError::new("limit", "between 1 and 500").into());
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| {
                ValidationError::new("cursor", "not a cursor returned by this API")
            })?),
        };
        Ok(PageRequest { after, limit })
    }
}

fn decode(cursor: &str) -> Option<i64> {
    let bytes = B64.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.strip_prefix("after:")?.parse().ok()
}

fn encode(after: i64) -> String {
    B64.encode(format!("after:{after}"))
}

/// A page of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listing<T> {
    /// The objects.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Listing<T> {
    /// Converts a store page.
    pub fn from_page<R>(page: Page<R>, f: impl Fn(R) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(f).collect(),
            next_cursor: page.next_after.map(encode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode(&encode(42)), Some(42));
        assert_eq!(decode("garbage!"), None);
        let p = ListParams {
            limit: Some(0),
            cursor: None,
        };
        assert!(p.page().is_err());
    }
}
