//! Opening a session: the one place a session is made and registered
//! (join and embed).

use super::error::AppError;
use super::state::AppState;
use chats3_actors::domain::{ConversationId, Role, Session};
use chats3_actors::time::{now_iso, now_ms};

/// Creates and registers a session.
pub async fn open_session(
    state: &AppState,
    conversation_id: ConversationId,
    user_id: String,
    display_name: String,
    avatar_url: Option<String>,
    role: Role,
) -> Result<Session, AppError> {
    let session = Session {
        session_id: uuid::Uuid::new_v4().to_string(),
        user_id,
        display_name,
        avatar_url,
        role,
        conversation_id,
        created_at: now_iso(),
        last_active_at: now_ms(),
    };
    state.system.sessions().create(session.clone()).await?;
    Ok(session)
}
