//! SQLite rows of carrier connections and the server's secrets.

use super::db::*;
use crate::*;
use serde_json::json;
use sqlx::Row;

use super::{conflict, corrupt, not_found_if_zero};

/// The carrier connections table.
pub(super) const CONNECTIONS: super::routing::Table = ("carrier_connections", COLUMNS);

const COLUMNS: &str =
    "id, account_id, key, name, carrier, carrier_account, secret, numbers, created_at, updated_at";

pub(super) fn connection_row(r: DbRow) -> Result<CarrierConnectionRecord> {
    let numbers: Vec<String> =
        serde_json::from_str(r.get::<&str, _>("numbers")).map_err(|_| corrupt("numbers"))?;
    Ok(CarrierConnectionRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        key: r.get("key"),
        connection: CarrierConnection {
            name: r.get("name"),
            carrier: r.get("carrier"),
            carrier_account: r.get("carrier_account"),
            secret: Secret(r.get("secret")),
            numbers,
        },
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

pub(super) async fn create(
    db: &DbPool,
    account: AccountId,
    c: &CarrierConnection,
    key: &str,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO carrier_connections (account_id, key, name, carrier, carrier_account, \
         secret, numbers, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(account.0)
    .bind(key)
    .bind(&c.name)
    .bind(&c.carrier)
    .bind(&c.carrier_account)
    .bind(&c.secret.0)
    .bind(json!(c.numbers).to_string())
    .bind(now)
    .bind(now)
    .fetch_one(db)
    .await
    .map_err(|e| conflict(e, "key"))?;
    Ok(row.get(0))
}

pub(super) async fn update(
    db: &DbPool,
    account: AccountId,
    id: i64,
    c: &CarrierConnection,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE carrier_connections SET name = $1, carrier = $2, carrier_account = $3, secret = $4, \
         numbers = $5, updated_at = $6 WHERE id = $7 AND account_id = $8",
    )
    .bind(&c.name)
    .bind(&c.carrier)
    .bind(&c.carrier_account)
    .bind(&c.secret.0)
    .bind(json!(c.numbers).to_string())
    .bind(now)
    .bind(id)
    .bind(account.0)
    .execute(db)
    .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn delete(db: &DbPool, account: AccountId, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM carrier_connections WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account.0)
        .execute(db)
        .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn by_key(db: &DbPool, key: &str) -> Result<CarrierConnectionRecord> {
    let sql = format!("SELECT {COLUMNS} FROM carrier_connections WHERE key = $1");
    let row = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    connection_row(row)
}

pub(super) async fn server_secret(db: &DbPool, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(fresh)
        .execute(db)
        .await?;
    let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(db)
        .await?;
    Ok(row.get(0))
}
