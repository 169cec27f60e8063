//! SQLite rows of carrier connections and the server's secrets.

use crate::*;
use serde_json::json;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::{conflict, corrupt, not_found_if_zero};

/// The carrier connections table.
pub(super) const CONNECTIONS: super::routing::Table = ("carrier_connections", COLUMNS);

const COLUMNS: &str =
    "id, account_id, key, name, carrier, carrier_account, secret, numbers, created_at, updated_at";

pub(super) fn connection_row(r: SqliteRow) -> Result<CarrierConnectionRecord> {
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
    db: &SqlitePool,
    account: AccountId,
    c: &CarrierConnection,
    key: &str,
    now: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO carrier_connections (account_id, key, name, carrier, carrier_account, \
         secret, numbers, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    db: &SqlitePool,
    account: AccountId,
    id: i64,
    c: &CarrierConnection,
    now: i64,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE carrier_connections SET name = ?, carrier = ?, carrier_account = ?, secret = ?, \
         numbers = ?, updated_at = ? WHERE id = ? AND account_id = ?",
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

pub(super) async fn delete(db: &SqlitePool, account: AccountId, id: i64) -> Result<()> {
    let done = sqlx::query("DELETE FROM carrier_connections WHERE id = ? AND account_id = ?")
        .bind(id)
        .bind(account.0)
        .execute(db)
        .await?;
    not_found_if_zero(done.rows_affected())
}

pub(super) async fn by_key(db: &SqlitePool, key: &str) -> Result<CarrierConnectionRecord> {
    let sql = format!("SELECT {COLUMNS} FROM carrier_connections WHERE key = ?");
    let row = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    connection_row(row)
}

pub(super) async fn server_secret(db: &SqlitePool, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    sqlx::query("INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?, ?)")
        .bind(name)
        .bind(fresh)
        .execute(db)
        .await?;
    let row = sqlx::query("SELECT value FROM server_secrets WHERE name = ?")
        .bind(name)
        .fetch_one(db)
        .await?;
    Ok(row.get(0))
}
