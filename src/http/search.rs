//! Searching the caller's conversation: every message, stored ones
//! included, newest first.

use super::envelope::{Envelope, ok};
use super::error::{ApiResult, ErrorEnvelope};
use super::extract::CurrentSession;
use super::query::{SearchParams, Searching};
use super::state::AppState;
use axum::extract::State;
use chats3_actors::domain::Message;
use serde::Serialize;
use utoipa::ToSchema;

/// What `GET /api/v1/messages/search` answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// The messages found, newest first. A page may hold fewer than
    /// `limit` (none, even) while `hasMore` is true: each page looks at a
    /// bounded number of messages.
    results: Vec<SearchResult>,
    /// Where the next (older) page starts; `null` once the start of the
    /// conversation was searched.
    next_cursor: Option<String>,
    /// Whether older messages are left to search.
    has_more: bool,
}

/// One message found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// The message, as history shows it (edits applied).
    message: Message,
    /// Its place in history, for its context: `GET /api/v1/messages`
    /// with `cursor` set to this and `direction=newer` answers the
    /// messages after it, `direction=older` those before it.
    cursor: String,
}

/// Searches the whole history of the caller's conversation.
///
/// Case-insensitive substring search over each message's text and file
/// name, newest first, deleted messages excluded; stored history is read
/// one object at a time, and each page looks at no more than 20,000
/// messages (follow `nextCursor` while `hasMore`).
#[utoipa::path(
    get,
    path = "/api/v1/messages/search",
    operation_id = "search_messages",
    tag = "messages",
    security(("sessionHeader" = []), ("sessionQuery" = []), ("sessionCookie" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "Messages found", body = Envelope<SearchResults>),
        (status = 400, description = "Missing or too long `q`, unusable `limit` or `cursor`", body = ErrorEnvelope),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    session: CurrentSession,
    Searching(query): Searching,
) -> ApiResult {
    let page = session.conversation(&state).search(query).await?;
    Ok(ok(
        "Messages found",
        SearchResults {
            results: page
                .hits
                .into_iter()
                .map(|hit| SearchResult {
                    message: hit.message,
                    cursor: hit.seq.to_string(),
                })
                .collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
            has_more: page.has_more,
        },
    ))
}
