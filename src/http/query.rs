//! Query strings read into typed values: the first parameter of a name
//! wins (the session id: the first non-empty one), and what does not
//! validate answers a 400 in the envelope, issues collected as for JSON
//! bodies.

use super::error::AppError;
use super::validate::{Checked, Issues};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use chats3_actors::{PageQuery, SearchQuery};
use std::borrow::Cow;
use std::convert::Infallible;

/// Every `name` parameter of the query of `uri`, decoded, in order.
pub fn params<'a>(uri: &'a Uri, name: &str) -> impl Iterator<Item = Cow<'a, str>> {
    let query = uri.query().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The first `name` parameter of the query of `uri`.
fn param<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, str>> {
    params(uri, name).next()
}

/// The paging parameters [`Paging`] reads, as the OpenAPI document lists them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Messages per page (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// `older` (default) or `newer` than the cursor.
    #[param(value_type = Option<Direction>, inline)]
    pub direction: Option<String>,
}

/// Which way a page goes from its cursor.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Direction {
    /// Older messages.
    Older,
    /// Newer messages.
    Newer,
}

/// Page size when `limit` is absent.
const DEFAULT_LIMIT: usize = 50;

/// Paging of `GET /messages`: `None` when none of `limit`, `cursor`,
/// `direction` is given (the compatible unpaged answer).
pub struct Paging(pub Option<PageQuery>);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let get = |name| param(&parts.uri, name);
        let (limit, cursor, direction) = (get("limit"), get("cursor"), get("direction"));
        if limit.is_none() && cursor.is_none() && direction.is_none() {
            return Ok(Paging(None));
        }
        let mut issues = Issues::default();
        let limit = match limit.as_deref().map(str::parse::<usize>) {
            None => Checked::valid(DEFAULT_LIMIT),
            Some(Ok(n @ 1..=100)) => Checked::valid(n),
            Some(_) => issues.fail("limit", "too_big", "Must be an integer from 1 to 100"),
        };
        let cursor = match cursor.filter(|c| !c.is_empty()).map(|c| c.parse::<u64>()) {
            None => Checked::valid(None),
            Some(Ok(c)) => Checked::valid(Some(c)),
            Some(Err(_)) => issues.fail("cursor", "invalid_format", "Unknown cursor"),
        };
        let newer = match direction.as_deref() {
            None | Some("older") => Checked::valid(false),
            Some("newer") => Checked::valid(true),
            Some(_) => issues.fail(
                "direction",
                "invalid_enum_value",
                "Must be one of: older, newer",
            ),
        };
        let (limit, cursor, newer) = issues.finish((limit, cursor, newer))?;
        Ok(Paging(Some(PageQuery {
            limit,
            cursor,
            newer,
        })))
    }
}

/// The parameters [`Searching`] reads, as the OpenAPI document lists them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What the messages' text (or file name) holds, compared
    /// case-insensitively; spaces around it are ignored.
    #[param(min_length = 1, max_length = 100)]
    pub q: String,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Hits per page (default 20).
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

/// Longest search query, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Most hits per search page.
pub const MAX_SEARCH_LIMIT: usize = 50;
/// Hits per search page when `limit` is absent.
const DEFAULT_SEARCH_LIMIT: usize = 20;

/// The query of `GET /messages/search`.
pub struct Searching(pub SearchQuery);

impl<S: Send + Sync> FromRequestParts<S> for Searching {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let get = |name| param(&parts.uri, name);
        let mut issues = Issues::default();
        let text = match get("q").as_deref().map(str::trim) {
            None | Some("") => issues.fail("q", "too_small", "Required: what to search for"),
            Some(q) if q.chars().count() > MAX_SEARCH_CHARS => {
                issues.fail("q", "too_big", "Must be at most 100 characters")
            }
            Some(q) => Checked::valid(q.to_owned()),
        };
        let limit = match get("limit").as_deref().map(str::parse::<usize>) {
            None => Checked::valid(DEFAULT_SEARCH_LIMIT),
            Some(Ok(n @ 1..=MAX_SEARCH_LIMIT)) => Checked::valid(n),
            Some(_) => issues.fail("limit", "too_big", "Must be an integer from 1 to 50"),
        };
        let cursor = match get("cursor")
            .filter(|c| !c.is_empty())
            .map(|c| c.parse::<u64>())
        {
            None => Checked::valid(None),
            Some(Ok(c)) => Checked::valid(Some(c)),
            Some(Err(_)) => issues.fail("cursor", "invalid_format", "Unknown cursor"),
        };
        let (text, limit, cursor) = issues.finish((text, limit, cursor))?;
        Ok(Searching(SearchQuery {
            text,
            cursor,
            limit,
        }))
    }
}

/// Where an event stream resumes: the `Last-Event-ID` header when sent,
/// else the `cursor` parameter; empty or over 64 bytes, from the start.
pub struct ResumeFrom(pub Option<String>);

impl ResumeFrom {
    fn of(headers: &HeaderMap, uri: &Uri) -> Self {
        let resume_from = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| param(uri, "cursor").map(Cow::into_owned))
            .filter(|v| !v.is_empty() && v.len() <= 64);
        ResumeFrom(resume_from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ResumeFrom {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ResumeFrom::of(&parts.headers, &parts.uri))
    }
}
