//! Signing in and out, and the dashboard's front door.
//!
//! A token signs in: an account key, the admin token or a support token
//! (an ingest token only posts calls, so it is refused). The sign-in form
//! has no session yet to hold its CSRF token, so the form's GET sets a
//! short-lived SameSite=Strict cookie with a random value and the POST must
//! carry the same value back: another site can neither read the cookie nor
//! make the browser send it (login CSRF).

use super::layout::{self, Frame, Section};
use super::page::{html_page_with, PageError};
use super::page_extract::Form;
use super::session::{cookie, random_token, same_secret, set_cookie, SESSION_COOKIE, SIGN_IN_COOKIE};
use super::viewer::Viewer;
use super::{Dashboard, Ds};
use crate::auth::{hash_secret, Caller};
use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

/// How long the sign-in form may stay open before it must be reloaded.
const SIGN_IN_FORM_SECS: u64 = 3_600;

/// Where a caller lands after signing in.
fn home_of(caller: &Caller) -> String {
    match caller {
        Caller::Account(a) => format!("/accounts/{}/usage", layout::urlencode(a)),
        _ => "/accounts".into(),
    }
}

/// `GET /`: the caller's home, or the sign-in page.
pub async fn home(viewer: Result<Viewer, PageError>) -> Redirect {
    match viewer {
        Ok(v) => Redirect::to(&home_of(&v.caller)),
        Err(_) => Redirect::to("/sign-in"),
    }
}

/// `GET /sign-in`.
pub async fn form(State(d): Ds) -> Response {
    sign_in_page(&d, StatusCode::OK, None)
}

fn sign_in_page(d: &Dashboard, status: StatusCode, problem: Option<&str>) -> Response {
    let csrf = random_token();
    let body = html! {
        div class="sign-in" {
            h1 { "Sign in to callmeter" }
            p class="lede" { "See your API calls: what you use, where it comes from, and which calls are waste." }
            @if let Some(problem) = problem {
                p class="callout warn" role="alert" { (problem) }
            }
            form method="post" action="/sign-in" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Token" }
                input id="token" name="token" type="password" autocomplete="current-password" required
                    autofocus aria-describedby="token-help";
                p id="token-help" class="muted" {
                    "Your account key (" code { "cm_key_…" } "), or, for operators, the admin or a support token."
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    let frame = Frame { title: "Sign in".into(), viewer: None, account: None, section: Section::None };
    let mut response = html_page_with(status, layout::page(frame, body));
    let cookie = set_cookie(SIGN_IN_COOKIE, &csrf, SIGN_IN_FORM_SECS, d.app.settings.secure_cookies);
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-in`.
pub async fn submit(State(d): Ds, headers: HeaderMap, Form(f): Form<SignInForm>) -> Result<Response, PageError> {
    let expected = cookie(&headers, SIGN_IN_COOKIE).ok_or(PageError::Csrf)?;
    if !same_secret(expected, &f.csrf) {
        return Err(PageError::Csrf);
    }
    let hash = hash_secret(f.token.trim());
    let caller = match d.app.auth.caller_of_hash(&hash) {
        None => {
            Metrics::add(&d.app.metrics.refused_unauthorized, 1);
            return Ok(sign_in_page(&d, StatusCode::UNAUTHORIZED, Some("That token is not known here.")));
        }
        Some(Caller::Ingest) => {
            return Ok(sign_in_page(
                &d,
                StatusCode::FORBIDDEN,
                Some("An ingest token only posts calls: sign in with an account key, a support or the admin token."),
            ))
        }
        Some(caller) => caller,
    };
    let id = d.sessions.open(hash);
    let secure = d.app.settings.secure_cookies;
    let mut response = Redirect::to(&home_of(&caller)).into_response();
    for c in
        [set_cookie(SESSION_COOKIE, &id, d.sessions.lifetime_secs(), secure), set_cookie(SIGN_IN_COOKIE, "", 0, secure)]
    {
        if let Ok(v) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    tracing::info!(caller = ?caller, "dashboard sign-in");
    Ok(response)
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`.
pub async fn sign_out(State(d): Ds, viewer: Viewer, Form(f): Form<CsrfForm>) -> Result<Response, PageError> {
    viewer.check_csrf(&f.csrf)?;
    d.sessions.close(&viewer.session_id);
    let mut response = Redirect::to("/sign-in").into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", 0, d.app.settings.secure_cookies).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
