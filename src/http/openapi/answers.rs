//! The error answers that come from the layers rather than the handler
//! (`super::super::layers`), so any operation they apply to can get them:
//! each is a shared response in `components.responses`, referenced from
//! every operation it applies to unless the operation's own annotation
//! already describes that status. Every one is the error envelope.

use crate::http::error::ErrorEnvelope;
use crate::http::layers::rate_limit;
use utoipa::PartialSchema;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr};

/// The name of the error envelope's schema.
const ERROR_ENVELOPE: &str = "ErrorEnvelope";

/// The content type of every error envelope.
const JSON: &str = "application/json";

/// What decides whether an answer applies to an operation.
struct Operated<'a> {
    path: &'a str,
    changes_state: bool,
    operation: &'a Operation,
}

impl Operated<'_> {
    fn needs_session(&self) -> bool {
        let session =
            SecurityRequirement::new(super::security::SESSION_HEADER, Vec::<String>::new());
        self.operation
            .security
            .as_ref()
            .is_some_and(|all| all.contains(&session))
    }

    fn takes_input(&self) -> bool {
        self.operation.request_body.is_some()
            || self
                .operation
                .parameters
                .as_ref()
                .is_some_and(|p| !p.is_empty())
    }
}

/// One answer the layers give: its status, its shared response's name and
/// description, whether it carries `Retry-After`, and where it applies.
struct Common {
    status: &'static str,
    name: &'static str,
    description: &'static str,
    retry_after: bool,
    applies: fn(&Operated) -> bool,
}

const COMMON: &[Common] = &[
    Common {
        status: "400",
        name: "ValidationError",
        description: "Validation error: `details` lists the offending fields (a malformed or \
            non-object JSON body, a body not sent as `application/json`, a missing or wrongly \
            typed field, a value outside its enum or bounds, an unusable parameter)",
        retry_after: false,
        applies: |o| o.takes_input(),
    },
    Common {
        status: "401",
        name: "NoSession",
        description: "\"No session found\" or \"Invalid session\" (before the body is read)",
        retry_after: false,
        applies: |o| o.needs_session(),
    },
    Common {
        status: "403",
        name: "OriginRefused",
        description: "\"Origin not allowed\": the request's `Origin` names neither its own host, \
            `public_url` nor an integrator's origin",
        retry_after: false,
        applies: |o| o.changes_state,
    },
    Common {
        status: "404",
        name: "ConversationGone",
        description: "The session's conversation is gone",
        retry_after: false,
        applies: |o| o.needs_session(),
    },
    Common {
        status: "408",
        name: "RequestTimeout",
        description: "The request's body stalled past `request_timeout`",
        retry_after: false,
        applies: |_| true,
    },
    Common {
        status: "413",
        name: "PayloadTooLarge",
        description: "The body is over its limit (1 MiB of JSON by default), answered before \
            any other check",
        retry_after: false,
        applies: |o| o.changes_state,
    },
    Common {
        status: "429",
        name: "RateLimited",
        description: "The client's address spent its budget (all routes, or one admin route)",
        retry_after: true,
        applies: |o| !rate_limit::exempt(o.path),
    },
    Common {
        status: "431",
        name: "HeadTooLarge",
        description: "The request head is over 64 KiB",
        retry_after: false,
        applies: |_| true,
    },
    Common {
        status: "500",
        name: "InternalError",
        description: "\"Internal server error\" (never shows internals)",
        retry_after: false,
        applies: |_| true,
    },
    Common {
        status: "503",
        name: "Unavailable",
        description: "Overloaded, storage or the log unavailable, or the answer took longer \
            than `request_timeout`",
        retry_after: true,
        applies: |_| true,
    },
];

/// The error envelope's content, by reference.
fn envelope_content() -> RefOr<utoipa::openapi::Content> {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ERROR_ENVELOPE)))
        .build()
        .into()
}

/// The shared response of `common`.
fn response(common: &Common) -> Response {
    let mut response = ResponseBuilder::new()
        .description(common.description)
        .content(
            JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ERROR_ENVELOPE)))
                .build(),
        );
    if common.retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                ))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

/// Each operation of `item` with whether its method changes state.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, item.get.as_mut()),
        (true, item.post.as_mut()),
        (true, item.put.as_mut()),
        (true, item.patch.as_mut()),
        (true, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(changes, operation)| operation.map(|o| (changes, o)))
}

/// Adds the error envelope's schema, the shared responses, and their
/// references to every operation they apply to.
pub(super) fn add(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ERROR_ENVELOPE.to_owned(), ErrorEnvelope::schema());
    for common in COMMON {
        components
            .responses
            .insert(common.name.to_owned(), response(common).into());
    }
    for (path, item) in document.paths.paths.iter_mut() {
        for (changes_state, operation) in operations(item) {
            let applying: Vec<&Common> = COMMON
                .iter()
                .filter(|common| {
                    (common.applies)(&Operated {
                        path,
                        changes_state,
                        operation,
                    })
                })
                .collect();
            for common in applying {
                let answers = &mut operation.responses.responses;
                match answers.get_mut(common.status) {
                    None => {
                        let shared = Ref::new(format!("#/components/responses/{}", common.name));
                        answers.insert(common.status.to_owned(), RefOr::Ref(shared));
                    }
                    // The handler's own description stays; the layers'
                    // answer of that status is the envelope all the same.
                    Some(RefOr::T(own)) => {
                        own.content
                            .entry(JSON.to_owned())
                            .or_insert_with(envelope_content);
                    }
                    Some(RefOr::Ref(_)) => {}
                }
            }
        }
    }
}
