//! Query parameters a route does not take are refused (400 naming them),
//! on every described route, by the route's own description.
//!
//! serde ignores a field it does not know, so a typo filtered nothing and
//! answered everything: `operaton=list` returned every call, and the README
//! once named a `status_class` filter that is `status` (the second review,
//! issue 12). The names a route takes are those its OpenAPI operation lists
//! (`openapi/`, generated from the same structs the handlers read), so the
//! check and the description cannot disagree. Routes not described (the
//! dashboard's pages, merged beside this router) are left to their handlers.
//!
//! The token comes first: a request without a valid token to a route that
//! needs one passes on, to be answered 401 as if its query were right. The
//! scope does not: a valid token whose scope cannot use the route is told of
//! the unknown parameter (400) before the guard's 403, which tells it nothing
//! the public description does not.

use crate::api::AppState;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::OpenApi;

/// What one operation takes.
#[derive(Debug, Clone, PartialEq)]
struct Takes {
    /// Its query parameters, in the description's order.
    names: Vec<String>,
    /// Whether it needs a token.
    needs_token: bool,
}

/// Every described operation's query parameters, by method and path template.
pub(crate) struct KnownParams {
    by_route: HashMap<(Method, String), Takes>,
    state: Arc<AppState>,
}

impl KnownParams {
    /// The table of `doc` (the description as served).
    pub fn of(doc: &OpenApi, state: Arc<AppState>) -> KnownParams {
        KnownParams { by_route: table(doc), state }
    }
}

fn table(doc: &OpenApi) -> HashMap<(Method, String), Takes> {
    let mut by_route = HashMap::new();
    for (path, item) in &doc.paths.paths {
        let operations: [(Method, &Option<Operation>); 8] = [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
            (Method::HEAD, &item.head),
            (Method::OPTIONS, &item.options),
            (Method::TRACE, &item.trace),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let names = operation
                .parameters
                .iter()
                .flatten()
                .filter(|p| p.parameter_in == ParameterIn::Query)
                .map(|p| p.name.clone())
                .collect();
            let needs_token = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            by_route.insert((method, path.clone()), Takes { names, needs_token });
        }
    }
    by_route
}

/// The middleware: 400 naming the query parameters the route does not take.
pub(crate) async fn refuse_unknown(State(known): State<Arc<KnownParams>>, request: Request, next: Next) -> Response {
    match unknown_in(&known, &request) {
        Some(e) => e.into_response(),
        None => next.run(request).await,
    }
}

/// The refusal of `request`'s query, if it names a parameter its route does not take.
fn unknown_in(known: &KnownParams, request: &Request) -> Option<ApiError> {
    request.uri().query().filter(|q| !q.is_empty())?;
    let path = request.extensions().get::<MatchedPath>()?.as_str();
    // axum answers HEAD with the GET handler.
    let method = if request.method() == Method::HEAD { Method::GET } else { request.method().clone() };
    let takes = known.by_route.get(&(method, path.to_owned()))?;
    // A query that cannot be read is the handler's to refuse (after its guard).
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(request.uri()).ok()?.0;
    let mut unknown: Vec<&str> = Vec::new();
    for (name, _) in &pairs {
        if !takes.names.contains(name) && !unknown.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    if unknown.is_empty() || (takes.needs_token && known.state.auth.caller(request.headers()).is_err()) {
        return None;
    }
    Some(refusal(&unknown, &takes.names))
}

/// `query: unknown parameter "operaton": this route takes …`.
fn refusal(unknown: &[&str], names: &[String]) -> ApiError {
    let quoted: Vec<String> = unknown.iter().map(|n| quote(n)).collect();
    let what = if unknown.len() == 1 { "parameter" } else { "parameters" };
    let takes = if names.is_empty() {
        "this route takes none".to_owned()
    } else {
        format!("this route takes {}", names.join(", "))
    };
    ApiError::BadRequest(format!("query: unknown {what} {}: {takes}", quoted.join(", ")))
}

/// A name as written, cut short: a query may be 8 KiB.
fn quote(name: &str) -> String {
    const MAX: usize = 64;
    let mut end = name.len().min(MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if end < name.len() {
        format!("{:?}…", &name[..end])
    } else {
        format!("{name:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described() -> HashMap<(Method, String), Takes> {
        let (_, doc) = crate::api::described_routes().split_for_parts();
        table(&crate::openapi::describe(doc, &crate::default_plans(), false))
    }

    #[test]
    fn each_route_takes_what_its_description_lists() {
        let table = described();
        let calls = &table[&(Method::GET, "/v1/accounts/{account}/calls".to_owned())];
        assert!(calls.needs_token);
        for name in ["from", "to", "operation", "status", "per_page", "format"] {
            assert!(calls.names.iter().any(|n| n == name), "{name}: {calls:?}");
        }
        assert!(!calls.names.iter().any(|n| n == "status_class"));
        let usage = &table[&(Method::GET, "/v1/accounts/{account}/usage".to_owned())];
        assert_eq!(usage.names, ["period", "from", "to", "group_by", "granularity"]);
        let healthz = &table[&(Method::GET, "/healthz".to_owned())];
        assert_eq!(*healthz, Takes { names: vec![], needs_token: false });
        assert!(table[&(Method::POST, "/v1/events".to_owned())].names.is_empty());
    }

    #[test]
    fn the_refusal_names_the_unknown_and_the_known() {
        let names = vec!["period".to_owned(), "format".to_owned()];
        let e = refusal(&["operaton"], &names).to_string();
        assert_eq!(e, r#"query: unknown parameter "operaton": this route takes period, format"#);
        let e = refusal(&["a", "b"], &[]).to_string();
        assert_eq!(e, r#"query: unknown parameters "a", "b": this route takes none"#);
        let long = "x".repeat(5_000);
        assert!(refusal(&[&long], &names).to_string().len() < 200);
        assert_eq!(quote("é".repeat(40).as_str()).chars().filter(|c| *c == 'é').count(), 32);
    }
}
