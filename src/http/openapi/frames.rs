//! The frames of the event streams, for the document's components: what
//! the SSE stream carries in its `data:` lines, and the WebSocket's frames
//! both ways. Events are [`chats3_actors::EventJson`] (`StreamEvent`); the
//! opening frames are built by the conversation actor, so their schemas
//! are written here from its shapes.

use chats3_actors::EventJson;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// Adds `StreamEvent`: [`EventJson`] under the name the frames use (its
/// derived name carries the type of its `data`).
pub(super) fn add_events(document: &mut OpenApi) {
    document
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            "StreamEvent".to_owned(),
            EventJson::<'static, serde_json::Value>::schema(),
        );
}

/// A string that is always `value`.
fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
}

/// A reference to the component `name`.
fn component(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

/// A frame of the opening: `{"type": kind, "data": data}`.
fn opening(kind: &str, data: impl Into<RefOr<Schema>>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(description))
        .property("type", constant(kind))
        .property("data", data)
        .required("type")
        .required("data")
        .into()
}

/// Declares a schema component written with the builders.
macro_rules! frame {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub(super) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {}
    };
}

frame!(
    /// `{"type":"system","data":"connected"}`, the first frame.
    Connected => opening(
        "system",
        constant("connected"),
        "The first frame of every stream",
    )
);

frame!(
    /// `{"type":"room-state","data":{"participants":[…]}}`, the second.
    RoomState => opening(
        "room-state",
        ObjectBuilder::new()
            .property(
                "participants",
                ArrayBuilder::new().items(component("Participant")),
            )
            .required("participants"),
        "The second frame: each active participant once, the subscriber included (`isMe`)",
    )
);

frame!(
    /// `{"type":"resync","data":{"lastEventId":…}}`, after the opening of a
    /// resume that cannot be served in full.
    Resync => opening(
        "resync",
        ObjectBuilder::new()
            .property(
                "lastEventId",
                ObjectBuilder::new().schema_type(Type::String),
            )
            .required("lastEventId"),
        "After the opening of a resume that cannot be served in full: reload history",
    )
);

frame!(
    /// The event every stream of a conversation gets when it is closed.
    ConversationClosed => ObjectBuilder::new()
        .description(Some(
            "A `StreamEvent` sent to every stream of a conversation when an admin closes it: \
             `fromUserId` is `system`, `toUserId` null, `data` the closed conversation's \
             metadata (`status: \"closed\"`, `closedAt` set). Existing sessions go on \
             reading; joins and embeds are refused from then on.",
        ))
        .property("id", ObjectBuilder::new().schema_type(Type::String))
        .property("type", constant(chats3_actors::CLOSED_EVENT))
        .property("fromUserId", constant("system"))
        .property("toUserId", ObjectBuilder::new().schema_type(Type::Null))
        .property("data", component("Conversation"))
        .property("timestamp", ObjectBuilder::new().schema_type(Type::Integer))
        .required("id")
        .required("type")
        .required("fromUserId")
        .required("data")
        .required("timestamp")
        .into()
);

frame!(
    /// Any frame of a stream.
    StreamFrame => OneOfBuilder::new()
        .description(Some(
            "One `data:` line of the SSE stream (the `event` of a WebSocket frame); \
             `ConversationClosed` is the `StreamEvent` a close sends",
        ))
        .item(component("Connected"))
        .item(component("RoomState"))
        .item(component("Resync"))
        .item(component("StreamEvent"))
        .into()
);

frame!(
    /// Server to client over WebSocket: `{"seq", "event"}`.
    WsServerFrame => ObjectBuilder::new()
        .description(Some(
            "One WebSocket text frame per event: `event` is exactly what the SSE stream \
             carries in `data:`, `seq` its SSE `id:` (`null` where SSE sends none)",
        ))
        .property(
            "seq",
            ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::Integer,
                Type::Null,
            ])),
        )
        .property("event", component("StreamFrame"))
        .required("seq")
        .required("event")
        .into()
);

frame!(
    /// Client to server over WebSocket: `{"op", "ref", "body"}`.
    WsCommand => ObjectBuilder::new()
        .description(Some(
            "A command: `send` takes the body of `POST /api/v1/messages`, `signal` of \
             `POST /api/v1/signaling`, `react` of `POST /api/v1/reactions`, `presence` of \
             `POST /api/v1/presence`, `read` `{\"messageId\"}` as `POST /api/v1/messages/:id/read`. \
             A frame over 64 KiB closes the socket with 1009.",
        ))
        .property(
            "op",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["send", "signal", "react", "presence", "read"])),
        )
        .property(
            "ref",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(64))
                .description(Some("Echoed in the answer's `ack`")),
        )
        .property("body", ObjectBuilder::new().schema_type(Type::Object))
        .required("op")
        .into()
);

frame!(
    /// The answer to a command: `{"ack", "status", "response"}`.
    WsAck => ObjectBuilder::new()
        .description(Some(
            "The status and envelope the HTTP route answers for that body, rate limits \
             included; a frame that is not JSON, lacks `op` or names an unknown one is \
             answered 400 \"Validation error\" (`ack` null when there is no `ref`) and the \
             socket stays open",
        ))
        .property(
            "ack",
            ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ])),
        )
        .property("status", ObjectBuilder::new().schema_type(Type::Integer))
        .property(
            "response",
            ObjectBuilder::new().description(Some("The envelope the HTTP route answers")),
        )
        .required("ack")
        .required("status")
        .required("response")
        .into()
);
