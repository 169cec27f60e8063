//! Tracking numbers: one at a time, or imported in bulk from a DID block or CSV.

use super::{double_option, timestamp};
use crate::auth::Account;
use crate::pagination::{ListParams, Listing};
use crate::problem::{ApiError, Json};
use crate::problem::{Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use callopt_domain::number::parse_languages;
use callopt_domain::{NumberKind, NumberStatus, TrackingNumber, ValidationError, E164};
use callopt_store::{NewNumber, NumberChange, NumberRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A tracking number as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberDto {
    /// Id.
    pub id: i64,
    /// The number, E.164.
    pub e164: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Area code, for local numbers whose plan has one.
    pub region: Option<String>,
    /// `local` or `toll_free`.
    pub kind: String,
    /// Languages (ISO 639-1).
    pub languages: Vec<String>,
    /// `active`, `quarantined` or `released`.
    pub status: String,
    /// The pool it belongs to.
    pub pool_id: Option<i64>,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<NumberRecord> for NumberDto {
    fn from(r: NumberRecord) -> Self {
        let n = r.number;
        Self {
            id: r.id,
            e164: n.e164.to_string(),
            country: n.country,
            region: n.region,
            kind: n.kind.as_str().into(),
            languages: n.languages,
            status: n.status.as_str().into(),
            pool_id: r.pool_id,
            created_at: timestamp(r.created_at),
        }
    }
}

/// A tracking number to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberInput {
    /// The number: E.164, or national form with `country`.
    pub e164: String,
    /// Country for a national-form number (ISO 3166-1 alpha-2).
    pub country: Option<String>,
    /// The pool to join.
    pub pool_id: Option<i64>,
    /// Languages of the visitors it is for.
    #[serde(default)]
    pub languages: Vec<String>,
    /// `local` or `toll_free`; from the numbering plan when absent.
    pub kind: Option<String>,
}

fn parse_number(input: &NumberInput) -> Result<TrackingNumber, ValidationError> {
    let kind = input
        .kind
        .as_deref()
        .map(|k| NumberKind::parse("kind", k))
        .transpose()?;
    TrackingNumber::parse(
        &input.e164,
        input.country.as_deref(),
        &input.languages,
        kind,
    )
}

/// Adds a tracking number.
#[utoipa::path(post, path = "/v1/numbers", tag = "numbers", request_body = NumberInput,
    responses((status = 201, body = NumberDto), (status = 400, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<NumberInput>,
) -> Result<(StatusCode, axum::Json<NumberDto>), ApiError> {
    let number = parse_number(&input)?;
    let new = NewNumber {
        number,
        pool_id: input.pool_id,
    };
    let mut rows = state
        .store
        .insert_numbers(account, &[new], crate::now_ms())
        .await
        .map_err(ApiError::store("pool"))?;
    let record = rows
        .pop()
        .expect("one row in, one out")
        .map_err(ApiError::store("number"))?;
    state.refresh(account).await?;
    Ok((StatusCode::CREATED, axum::Json(record.into())))
}

/// Filters of the number listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NumberFilter {
    /// Only the numbers of this pool.
    pub pool_id: Option<i64>,
}

/// Lists tracking numbers.
#[utoipa::path(get, path = "/v1/numbers", tag = "numbers", params(ListParams, NumberFilter),
    responses((status = 200, body = Listing<NumberDto>)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
    Query(params): Query<ListParams>,
    Query(filter): Query<NumberFilter>,
) -> Result<axum::Json<Listing<NumberDto>>, ApiError> {
    let page = state
        .store
        .numbers(account, filter.pool_id, params.page()?)
        .await
        .map_err(ApiError::store("number"))?;
    Ok(axum::Json(Listing::from_page(page, NumberDto::from)))
}

/// One tracking number.
#[utoipa::path(get, path = "/v1/numbers/{id}", tag = "numbers",
    responses((status = 200, body = NumberDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<axum::Json<NumberDto>, ApiError> {
    let n = state
        .store
        .number(account, id)
        .await
        .map_err(ApiError::store("number"))?;
    Ok(axum::Json(n.into()))
}

/// A change to a tracking number; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberPatch {
    /// Move to this pool, or `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub pool_id: Option<Option<i64>>,
    /// New languages.
    pub languages: Option<Vec<String>>,
    /// New status.
    pub status: Option<String>,
    /// New kind.
    pub kind: Option<String>,
}

/// Changes a tracking number.
#[utoipa::path(patch, path = "/v1/numbers/{id}", tag = "numbers", request_body = NumberPatch,
    responses((status = 200, body = NumberDto), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
    Json(patch): Json<NumberPatch>,
) -> Result<axum::Json<NumberDto>, ApiError> {
    let change = NumberChange {
        pool_id: patch.pool_id,
        languages: patch
            .languages
            .as_deref()
            .map(|l| parse_languages("languages", l))
            .transpose()?,
        status: patch
            .status
            .as_deref()
            .map(|s| NumberStatus::parse("status", s))
            .transpose()?,
        kind: patch
            .kind
            .as_deref()
            .map(|k| NumberKind::parse("kind", k))
            .transpose()?,
    };
    let n = state
        .store
        .update_number(account, id, &change)
        .await
        .map_err(ApiError::store("number"))?;
    state.refresh(account).await?;
    Ok(axum::Json(n.into()))
}

/// Deletes a tracking number.
#[utoipa::path(delete, path = "/v1/numbers/{id}", tag = "numbers",
    responses((status = 204), (status = 404, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_number(account, id)
        .await
        .map_err(ApiError::store("number"))?;
    state.refresh(account).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A block of consecutive numbers (a DID block).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DidBlock {
    /// The first number of the block, E.164.
    pub start: String,
    /// How many consecutive numbers (1 to 100,000).
    pub count: u32,
}

/// A bulk import: a DID block, or CSV text (header `e164[,country][,languages][,kind]`, or one
/// number per line; languages separated by spaces or `;`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportInput {
    /// The pool every imported number joins.
    pub pool_id: Option<i64>,
    /// Languages for numbers whose row gives none.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Country for national-form numbers whose row gives none.
    pub country: Option<String>,
    /// A block of consecutive numbers.
    pub block: Option<DidBlock>,
    /// CSV text.
    pub csv: Option<String>,
}

/// A row that was not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportFailure {
    /// 1-based row (CSV line, or position in the block).
    pub row: usize,
    /// The number as given.
    pub input: String,
    /// The field at fault.
    pub field: String,
    /// Why.
    pub detail: String,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// Numbers added.
    pub imported: usize,
    /// Rows not added, with reasons; the others were added.
    pub failed: Vec<ImportFailure>,
}

/// Most numbers in one import request.
pub const MAX_IMPORT: u32 = 100_000;

/// Imports many tracking numbers; bad rows are reported, good rows kept.
#[utoipa::path(post, path = "/v1/numbers/import", tag = "numbers", request_body = ImportInput,
    responses((status = 200, body = ImportResult), (status = 400, body = crate::problem::Problem)),
    security(("api_key" = [])))]
pub async fn import(
    State(state): State<AppState>,
    Account(account): Account,
    Json(input): Json<ImportInput>,
) -> Result<axum::Json<ImportResult>, ApiError> {
    let languages = parse_languages("languages", &input.languages)?;
    let rows = match (&input.block, &input.csv) {
        (Some(block), None) => block_rows(block)?,
        (None, Some(csv)) => csv_rows(csv)?,
        _ => {
            return Err(ApiError::BadBody(
                "give exactly one of \"block\" or \"csv\"".into(),
            ))
        }
    };
    let mut failed = Vec::new();
    let mut new = Vec::with_capacity(rows.len());
    let mut positions = Vec::with_capacity(rows.len());
    for row in rows {
        let langs = if row.languages.is_empty() {
            &languages
        } else {
            &row.languages
        };
        let country = row.country.as_deref().or(input.country.as_deref());
        let kind = row.kind.as_deref().map(|k| NumberKind::parse("kind", k));
        let parsed = match kind.transpose() {
            Ok(kind) => TrackingNumber::parse(&row.input, country, langs, kind),
            Err(e) => Err(e),
        };
        match parsed {
            Ok(number) => {
                positions.push((row.row, row.input));
                new.push(NewNumber {
                    number,
                    pool_id: input.pool_id,
                });
            }
            Err(e) => failed.push(ImportFailure {
                row: row.row,
                input: row.input,
                field: e.field,
                detail: e.reason,
            }),
        }
    }
    let results = state
        .store
        .insert_numbers(account, &new, crate::now_ms())
        .await
        .map_err(ApiError::store("pool"))?;
    let mut imported = 0;
    for (result, (row, input)) in results.into_iter().zip(positions) {
        match result {
            Ok(_) => imported += 1,
            Err(e) => failed.push(ImportFailure {
                row,
                input,
                field: "e164".into(),
                detail: e.to_string(),
            }),
        }
    }
    failed.sort_by_key(|f| f.row);
    state.refresh(account).await?;
    Ok(axum::Json(ImportResult { imported, failed }))
}

/// One row of an import before parsing.
struct Row {
    row: usize,
    input: String,
    country: Option<String>,
    languages: Vec<String>,
    kind: Option<String>,
}

fn block_rows(block: &DidBlock) -> Result<Vec<Row>, ApiError> {
    if !(1..=MAX_IMPORT).contains(&block.count) {
        return Err(ValidationError::new("block.count", "between 1 and 100000").into());
    }
    let start = E164::parse("block.start", &block.start, None)?;
    let cc = start.calling_code();
    let nsn = start.national_significant();
    let first: u64 = nsn.parse().expect("digits");
    let width = nsn.len();
    let last = first + u64::from(block.count) - 1;
    if last.to_string().len() > width {
        return Err(
            ValidationError::new("block.count", "the block runs past the last number").into(),
        );
    }
    Ok((0..u64::from(block.count))
        .map(|i| Row {
            row: i as usize + 1,
            input: format!("+{cc}{:0width$}", first + i),
            country: None,
            languages: Vec::new(),
            kind: None,
        })
        .collect())
}

fn csv_rows(text: &str) -> Result<Vec<Row>, ApiError> {
    let mut rows = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // One line is one record: numbers never span lines, and counting lines this way keeps
        // the row numbers in error reports equal to the file's line numbers.
        let record = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(raw.as_bytes())
            .records()
            .next()
            .transpose()
            .map_err(|e| ValidationError::new("csv", format!("line {line}: {e}")))?
            .unwrap_or_default();
        if rows.is_empty()
            && columns.is_none()
            && record.iter().any(|f| f.eq_ignore_ascii_case("e164"))
        {
            columns = Some(record.iter().map(str::to_ascii_lowercase).collect());
            continue;
        }
        let field = |name: &str, default: usize| -> Option<String> {
            let i = match &columns {
                Some(cols) => cols.iter().position(|c| c == name)?,
                None => default,
            };
            record.get(i).filter(|v| !v.is_empty()).map(str::to_string)
        };
        rows.push(Row {
            row: line,
            input: field("e164", 0).unwrap_or_default(),
            country: field("country", usize::MAX),
            languages: field("languages", usize::MAX)
                .map(|l| {
                    l.split([' ', ';'])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            kind: field("kind", usize::MAX),
        });
        if rows.len() > MAX_IMPORT as usize {
            return Err(ValidationError::new("csv", "more than 100000 rows").into());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_count_up_and_stop_at_the_plan() {
        let rows = block_rows(&DidBlock {
            start: "+14155550198".into(),
            count: 3,
        })
        .unwrap();
        let numbers: Vec<_> = rows.iter().map(|r| r.input.as_str()).collect();
        assert_eq!(numbers, ["+14155550198", "+14155550199", "+14155550200"]);
        assert!(block_rows(&DidBlock {
            start: "+14155550100".into(),
            count: 0
        })
        .is_err());
        assert!(block_rows(&DidBlock {
            start: "+19999999999".into(),
            count: 5
        })
        .is_err());
    }

    #[test]
    fn csv_with_and_without_header() {
        let rows =
            csv_rows("e164,languages,country\n+4930901820,de;en,\n\n030 901821, ,DE\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].languages, ["de", "en"]);
        assert_eq!(rows[1].country.as_deref(), Some("DE"));
        assert_eq!(rows[1].row, 4);
        let bare = csv_rows("+14155550100\n+14155550101\n").unwrap();
        assert_eq!(bare.len(), 2);
        assert_eq!(bare[1].input, "+14155550101");
    }
}
