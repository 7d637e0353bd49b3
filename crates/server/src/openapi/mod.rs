//! The API's OpenAPI description, generated from the code: each handler in
//! `routes/` carries its operation (`#[utoipa::path]`: path, parameters,
//! body, answers), the router registers the handler and its operation
//! together (`api.rs`, through `utoipa_axum`), and the schemas derive from
//! the request and answer types or, where those live in other crates, from
//! mirrors that tests hold to them (`answers.rs`). A handler cannot be routed
//! without being described, and a limit changed in the code changes the
//! description with it. Served at `/openapi.json`; the copy checked in at
//! `crates/server/openapi.json` is the one a default configuration serves,
//! and a test keeps it so.
//!
//! - `params.rs`: the schemas of parameters and body fields, exactly the values the server takes.
//! - `answers.rs`: the schemas of answers whose types live elsewhere.
//! - `responses.rs`: the error answers, and those every route shares.
//! - `webhooks.rs`: the bodies of the webhook routes, and the schemas of attempts and alerts.
//!
//! The configuration adds what only it knows: the plans an account may be
//! put on, and whether `/metrics` needs a token.

/// Schemas as types, for `value_type = …` in the derives (which keep the
/// fields' doc comments as descriptions, where `schema_with` drops them).
macro_rules! schema_types {
    ($($(#[$doc:meta])* $name:ident => $json:expr;)+) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                    $crate::openapi::schema($json)
                }
            }

            impl utoipa::ToSchema for $name {}
        )+
    };
}

pub(crate) use schema_types;

mod answers;
pub(crate) mod params;
pub(crate) mod responses;
pub(crate) mod webhooks;

pub(crate) use answers::{
    AccountDoc, AccountsAnswer, AdjustmentDoc, AdjustmentsAnswer, AllUsageAnswer, AuditReportDoc, AuditsAnswer,
    BackupAnswer, CallEventDoc, CallsPage, CreatedToken, ErrorAnswer, FindingKindName, IngestAnswer, PlansAnswer,
    RotatedToken, SourceKeyDoc, TokensAnswer,
};

use callmeter_model::Plan;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr, Schema};
use utoipa::Modify;

/// A schema written as JSON (with the code's constants in it).
pub(crate) fn schema(json: Value) -> RefOr<Schema> {
    RefOr::T(serde_json::from_value(json).expect("a schema the code writes is a valid schema"))
}

/// The parts of the description that no handler owns.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "callmeter",
        description = "Meters billable API calls exactly once, and finds the calls that are waste. \
The call event is DESIGN §3; who may do what, DESIGN §8: send a token as `Authorization: Bearer …`. \
Every error answers `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "ingest", description = "Calls in: JSON, NDJSON and CloudEvents"),
        (name = "usage", description = "Usage against plans, per account and for all"),
        (name = "calls", description = "The request log"),
        (name = "audits", description = "Where the calls go and which are waste (DESIGN §6)"),
        (name = "accounts", description = "Accounts, plans and adjustments"),
        (name = "tokens", description = "Tokens and account keys (DESIGN §8)"),
        (name = "webhooks", description = "Webhook subscriptions: a folder's changes, or usage alerts (DESIGN §7)"),
        (name = "alerts", description = "Usage alerts fired (DESIGN §7)"),
        (name = "admin", description = "The admin token and backups"),
        (name = "operations", description = "Health, readiness, metrics and this description"),
    ),
    components(schemas(ErrorAnswer, CallEventDoc)),
    modifiers(&BearerTokens)
)]
pub(crate) struct ApiDoc;

/// The one security scheme: a token as a bearer token.
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some(
                "A token: the admin token, or one made with POST /v1/tokens or POST /v1/accounts/{account}/keys",
            )).build()),
        );
    }
}

/// The description of the routes as this configuration serves them: the
/// shared answers added to every operation, the configured plans as the
/// values an account's `plan` takes, and `/metrics` public when configured so.
pub(crate) fn describe(mut doc: OpenApi, plans: &[Plan], metrics_public: bool) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, response) in responses::all() {
        components.responses.insert(name.to_owned(), response);
    }
    if let Some(put) = components.schemas.get_mut("AccountPut") {
        // The plan's schema is `PlanName`, made with an empty enum for the names only the configuration knows.
        let mut json = serde_json::to_value(&*put).expect("a schema is JSON");
        let names: Vec<Value> = plans.iter().map(|p| Value::String(p.name.clone())).collect();
        fill_empty_enums(&mut json["properties"]["plan"], &names);
        *put = serde_json::from_value(json).expect("still a schema");
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            if path == "/metrics" && metrics_public {
                operation.security = None;
            }
            responses::add_shared_answers(operation);
        }
    }
    doc
}

/// Puts `values` in every empty `enum` under `schema`.
fn fill_empty_enums(schema: &mut Value, values: &[Value]) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::Array(a) if key == "enum" && a.is_empty() => *a = values.to_vec(),
                    _ => fill_empty_enums(value, values),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| fill_empty_enums(v, values)),
        _ => {}
    }
}

/// The description as JSON, as served and checked in.
///
/// utoipa 5 writes a link's fields in snake_case (`operation_id`,
/// `request_body`); OpenAPI names them in camelCase. utoipa 6 fixes that but
/// wraps every described field whose schema is given (`value_type`) in an
/// `allOf` with `"type": "object"`, which no string matches; so the names are
/// put right here. Its schema model has no `propertyNames` either: schemas
/// written as JSON carry it as the extension `x-property-names`, renamed here.
pub(crate) fn to_json(doc: &OpenApi) -> Value {
    let mut json = serde_json::to_value(doc).expect("the description is JSON");
    rename_keys(&mut json, "x-property-names", "propertyNames");
    for item in json["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        for operation in item.as_object_mut().into_iter().flat_map(|ops| ops.values_mut()) {
            let responses = operation.get_mut("responses").and_then(Value::as_object_mut);
            for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                let links = response.get_mut("links").and_then(Value::as_object_mut);
                for link in links.into_iter().flat_map(|l| l.values_mut()).filter_map(Value::as_object_mut) {
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(snake) {
                            link.insert(camel.to_owned(), v);
                        }
                    }
                }
            }
        }
    }
    json
}

/// Renames every key `from` to `to`, at any depth.
fn rename_keys(json: &mut Value, from: &str, to: &str) {
    match json {
        Value::Object(map) => {
            if let Some(v) = map.remove(from) {
                map.insert(to.to_owned(), v);
            }
            map.values_mut().for_each(|v| rename_keys(v, from, to));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_keys(v, from, to)),
        _ => {}
    }
}

/// The description as served, made once when the router is.
#[derive(Clone)]
pub(crate) struct OpenApiJson(pub std::sync::Arc<str>);

#[cfg(test)]
mod tests {
    use super::*;

    /// The description a default configuration serves.
    fn default_description() -> OpenApi {
        let (_, doc) = crate::api::described_routes().split_for_parts();
        describe(doc, &crate::default_plans(), false)
    }

    fn operations(doc: &OpenApi) -> Vec<(String, &'static str, &utoipa::openapi::path::Operation)> {
        let mut all = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("patch", &item.patch),
                ("delete", &item.delete),
            ];
            for (method, op) in methods {
                if let Some(op) = op {
                    all.push((path.clone(), method, op));
                }
            }
        }
        all
    }

    #[test]
    fn the_checked_in_copy_is_what_a_default_configuration_serves() {
        let generated = serde_json::to_string_pretty(&to_json(&default_description())).unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("CALLMETER_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "crates/server/openapi.json is not the generated description: \
             run `CALLMETER_UPDATE_OPENAPI=1 cargo test -p callmeter-server openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_described_with_its_answers() {
        let doc = default_description();
        let ops = operations(&doc);
        assert!(ops.len() >= 32, "{} operations", ops.len());
        for path in
            ["/v1/accounts/{account}/webhooks/{id}/deliveries/{delivery}/redeliver", "/v1/accounts/{account}/alerts"]
        {
            assert!(ops.iter().any(|(p, _, _)| p == path), "{path} is described");
        }
        for (path, method, op) in ops {
            let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            assert!(statuses.iter().any(|s| s.starts_with('2')), "{method} {path}: no success answer");
            for shared in ["400", "405", "500", "503"] {
                assert!(statuses.contains(&shared), "{method} {path}: no {shared}");
            }
            let public = ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str());
            assert_eq!(op.security.is_none(), public, "{method} {path}: security");
            if !public {
                assert!(statuses.contains(&"401") && statuses.contains(&"403"), "{method} {path}");
            }
            if path.contains("{account}") && method != "put" {
                assert!(statuses.contains(&"404"), "{method} {path}: an unknown account is 404");
            }
            if path.contains("{account}") {
                let params = op.parameters.as_deref().unwrap_or_default();
                assert!(params.iter().any(|p| p.name == "account"), "{method} {path}: no account parameter");
            }
        }
    }

    #[test]
    fn links_name_their_fields_as_openapi_does() {
        let json = to_json(&default_description());
        let link = &json["paths"]["/v1/tokens"]["post"]["responses"]["201"]["links"]["Revoke"];
        assert_eq!(link["operationId"], "delete_token", "{link}");
        assert!(link.get("operation_id").is_none());
    }

    #[test]
    fn the_configuration_adds_its_plans_and_public_metrics() {
        let (_, doc) = crate::api::described_routes().split_for_parts();
        let plans = vec![Plan { name: "gold".into(), ..crate::default_plans()[0].clone() }];
        let doc = describe(doc, &plans, true);
        let json = to_json(&doc);
        let plan = &json["components"]["schemas"]["AccountPut"]["properties"]["plan"];
        let names = plan["oneOf"].as_array().unwrap().iter().find_map(|s| s.get("enum"));
        assert_eq!(names, Some(&serde_json::json!(["gold"])), "{plan}");
        assert!(json["paths"]["/metrics"]["get"].get("security").is_none());
        assert!(json["paths"]["/metrics"]["get"]["responses"].get("401").is_none());
    }
}
