//! The error answers, one reusable response per code of the table in
//! `error.rs`, and the answers that every route shares because they come
//! from the machinery around the handlers rather than the handlers
//! themselves: the route guards (401, 403), the body reader (400, 413, 415,
//! 503 `busy`), the connection limit (503 `busy`), the refusal of a query
//! parameter the route does not take (400, `known_params.rs`) and the
//! envelope of the framework's own refusals (405, 500). Those are added to each operation by
//! [`add_shared_answers`], from what the operation says of itself (whether
//! it needs a token, whether it takes a body), so that no route can forget them.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{PartialSchema, ToResponse};

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build())
}

macro_rules! error_responses {
    ($($name:ident: $description:literal,)+) => {
        $(
            #[doc = $description]
            pub(crate) struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description).build().into())
                }
            }
        )+
    };
}

error_responses! {
    BadRequest: "`bad_request`: a parameter, query or body that cannot be used (syntax, types, a value out of its range, a string too long, a parameter given twice or not taken by the route, parameters that exclude each other); the message names it",
    Unauthorized: "`unauthorized`: no token, or one that is not known; answered from the headers, before the query or body is read",
    Forbidden: "`forbidden`: the token's scope does not cover the request; answered before the body is read",
    NotFound: "`not_found`: no such account, token, webhook or delivery",
    MethodNotAllowed: "`method_not_allowed`: the route does not take this method (`Allow` lists those it does)",
    UnknownPlan: "`unknown_plan`: the account's plan for the period is no longer configured, so its usage cannot be priced until the plan is back in `[[plans]]`",
    Conflict: "`conflict`: the request is well formed, but what it names is not in a state to take it (the message says why)",
    TooLarge: "`too_large`: a body over 16 MiB (declared or read), or more than 10,000 events",
    UnsupportedMediaType: "`unsupported_media_type`: a body whose content type this route does not read",
    DiskFull: "`disk_full`: too little free space; nothing of the request was stored",
    Internal: "`internal`: anything else",
}

/// 503: `busy` (with `Retry-After`) or `unavailable`.
pub(crate) struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(u32::schema())
            .description(Some("seconds after which a retry is likely to be taken (`busy` only)"))
            .build();
        let response = error_response(
            "`busy`: too much in flight (connections, request bodies, events waiting for the store, live audits): nothing of the request was taken, retry after `Retry-After` seconds; or `unavailable`: the store takes no writes now, or the server is stopping",
        )
        .header("Retry-After", retry_after)
        .build();
        ("Unavailable", response.into())
    }
}

/// Every reusable response, for the document's components.
pub(crate) fn all() -> Vec<(&'static str, RefOr<Response>)> {
    vec![
        BadRequest::response(),
        Unauthorized::response(),
        Forbidden::response(),
        NotFound::response(),
        MethodNotAllowed::response(),
        UnknownPlan::response(),
        Conflict::response(),
        TooLarge::response(),
        UnsupportedMediaType::response(),
        Unavailable::response(),
        DiskFull::response(),
        Internal::response(),
    ]
}

/// Adds to an operation the answers of the machinery around its handler
/// (module doc), unless it lists them itself.
pub(crate) fn add_shared_answers(operation: &mut Operation) {
    // 400 on every route: a query parameter it does not take.
    let mut shared =
        vec![("400", "BadRequest"), ("405", "MethodNotAllowed"), ("500", "Internal"), ("503", "Unavailable")];
    let needs_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if needs_token {
        shared.extend([("401", "Unauthorized"), ("403", "Forbidden")]);
    }
    if operation.request_body.is_some() {
        shared.extend([("413", "TooLarge"), ("415", "UnsupportedMediaType")]);
    }
    for (status, name) in shared {
        operation.responses.responses.entry(status.to_owned()).or_insert_with(|| Ref::from_response_name(name).into());
    }
}
