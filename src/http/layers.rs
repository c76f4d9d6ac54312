//! The layers every request passes, outermost first: [`context`] (request
//! id, tracing span, security headers), [`cors`], the panic answer
//! ([`super::error::panic_response`]), then [`admission`] (head size,
//! [`rate_limit`], [`csrf`], declared body size, [`deadline`]).

pub mod admission;
pub mod context;
pub mod cors;
pub mod csrf;
pub mod deadline;
pub mod rate_limit;
pub mod security_headers;
