//! The live view: the account's calls in progress and the latest finished, then every change of
//! its calls as it happens, as Server-Sent Events.

use super::calls::CallDto;
use crate::auth::Account;
use crate::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

/// How many finished calls the first event lists.
const RECENT: usize = 20;

/// The first event: where things stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotDto {
    /// Calls ringing or connected now, oldest first.
    pub in_progress: Vec<CallDto>,
    /// The latest finished calls, newest first.
    pub recent: Vec<CallDto>,
}

fn event<T: Serialize>(name: &str, body: &T) -> Event {
    Event::default()
        .event(name)
        .json_data(body)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// Live calls: a `snapshot` event ([`SnapshotDto`]), then a `call` event ([`CallDto`]) for every
/// change of one of the account's calls (started, routed to the next target, answered, ended).
/// A watcher too slow to keep up gets a `lagged` event and should re-open the stream.
#[utoipa::path(get, path = "/v1/calls/live", tag = "calls",
    responses((status = 200, description = "text/event-stream of `snapshot` and `call` events")),
    security(("api_key" = [])))]
pub async fn live(
    State(state): State<AppState>,
    Account(account): Account,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe first, so that no change between the snapshot and the stream is missed.
    let changes = state.switchboard.watch();
    let snapshot = SnapshotDto {
        in_progress: state
            .switchboard
            .in_progress(account)
            .into_iter()
            .map(CallDto::from)
            .collect(),
        recent: state
            .switchboard
            .recent(account, RECENT)
            .into_iter()
            .map(CallDto::from)
            .collect(),
    };
    let first = stream::once(async move { Ok(event("snapshot", &snapshot)) });
    let rest = stream::unfold(Some(changes), move |rx| async move {
        let mut rx = rx?;
        loop {
            match rx.recv().await {
                Ok(record) if record.account == account => {
                    let e = event("call", &CallDto::from(record));
                    return Some((Ok(e), Some(rx)));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    let e = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(e), None));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(futures_util::StreamExt::chain(first, rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
