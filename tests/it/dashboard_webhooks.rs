//! The dashboard's webhooks and alerts pages in a real browser (`browser.rs`)
//! against a real `callmeter serve` that may post to loopback, with a real
//! receiver there (`webhook_receiver.rs`) and a plan of 100 calls, so that
//! the seeded calls pass its thresholds.
//!
//! From the audit's polling finding the webhook is created (only the
//! receiver's URL typed), lands on the webhooks page with its secret shown
//! once, delivers an upload signed with that secret, shows the delivery in
//! its log, redelivers it (same `webhook-id`), rotates its secret, replays,
//! is edited, disabled and enabled; the alerts page shows the API's alerts,
//! newest first. What must be refused is: a form without its CSRF token,
//! another account's pages and forms (direct URLs), support's changes. Every
//! page loads with no console error and no failed request; screenshots go
//! where `dashboard.rs` puts its own.

use crate::browser::Browser;
use crate::dashboard::{account_key, assert_clean, rows, seed, shoot, sign_in, status_of, token};
use crate::harness::{self, ago, event, Server, ADMIN};
use crate::webhook_receiver::Receiver;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// A server whose default plan includes 100 calls, allowed to post to loopback.
fn start(dir: &std::path::Path) -> Server {
    let config = dir.join("callmeter.toml");
    std::fs::write(
        &config,
        "default_plan = \"small\"\n\
         [[plans]]\nname = \"small\"\nperiod = \"30d\"\nincluded_calls = 100\noverage_price_per_1000 = 5\n\
         [alerts]\nspike_min_calls = 1000000\n",
    )
    .unwrap();
    let flags = ["--config", config.to_str().unwrap(), "--webhooks-allow-private-targets", "true"];
    harness::start(&dir.join("data"), &flags)
}

fn webhooks(server: &Server, account: &str) -> Vec<Value> {
    let (s, v) = server.get(ADMIN, &format!("/v1/accounts/{account}/webhooks"));
    assert_eq!(s, 200, "{v}");
    v["webhooks"].as_array().unwrap().clone()
}

/// The secret the page shows this once, if it shows one.
fn shown_secret(b: &mut Browser) -> Option<String> {
    b.eval("document.getElementById('new-secret')?.value ?? null").as_str().map(str::to_owned)
}

/// At phone width the page does not scroll sideways (wide tables scroll inside their box).
fn fits_a_phone(b: &mut Browser, page: &str) {
    b.viewport(390, 844, true);
    let width = b.eval("document.documentElement.scrollWidth").as_u64().unwrap();
    b.viewport(1280, 800, false);
    assert!(width <= 390, "{page} is {width} px wide on a 390 px phone");
}

#[test]
fn webhooks_and_alerts_are_managed_from_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    seed(&server);
    let receiver = Receiver::start();
    let (acme_key, _) = account_key(&server, "acme");
    let (support, _) = token(&server, json!({"scope": "support"}));
    let (s, v) = server.send(
        server
            .http
            .post(server.url("/v1/accounts/globex/webhooks"))
            .bearer_auth(ADMIN)
            .json(&json!({"url": receiver.url, "folder": "/g"})),
    );
    assert_eq!(s, 201, "{v}");
    let globex_hook = v["webhook"]["id"].as_str().unwrap().to_owned();
    let base = server.base.clone();
    let mut b = Browser::start();
    sign_in(&mut b, &base, &acme_key);

    // No webhooks yet: the page says what they are for.
    b.open(&format!("{base}/accounts/acme/webhooks"));
    assert!(b.text("#no-webhooks").contains("No webhooks yet"), "{}", b.text("main"));
    assert_clean(&mut b, "no webhooks yet");
    shoot(&mut b, "webhooks-empty");

    // The audit's polling finding creates its webhook: only the receiver's URL is asked.
    b.open(&format!("{base}/accounts/acme/audit?range=period"));
    assert!(b.text("#finding-1").contains("/inbox"), "{}", b.text("#finding-1"));
    assert_clean(&mut b, "audit with the webhook form");
    shoot(&mut b, "audit-webhook-form");
    b.navigate_by(&format!(
        "const f = document.querySelector('#finding-1 form.webhook-from-finding'); \
         f.querySelector('input[name=url]').value = {}; f.submit()",
        json!(receiver.url)
    ));
    assert!(b.url().contains("/accounts/acme/webhooks#wh_"), "lands on the webhooks page: {}", b.url());
    assert!(b.text("#notice").contains("from the audit's finding"), "{}", b.text("#notice"));
    let secret = shown_secret(&mut b).expect("the secret, shown once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let hooks = webhooks(&server, "acme");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let hook = &hooks[0];
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(hook["folder"], "/inbox");
    assert_eq!(hook["actions"], json!(["create", "update", "destroy", "move", "copy"]));
    let listed = rows(&mut b, "#webhooks tbody tr");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0][0], id);
    assert!(listed[0][2].contains("/inbox") && listed[0][3].contains("Enabled"), "{listed:?}");
    assert_clean(&mut b, "webhooks");
    shoot(&mut b, "webhooks");
    fits_a_phone(&mut b, "webhooks");
    b.open(&format!("{base}/accounts/acme/webhooks"));
    assert_eq!(shown_secret(&mut b), None, "a secret is shown once only");

    // An upload into the folder is delivered, signed with that secret, and is in the log.
    let upload =
        event("acme", "up-inbox-1", &ago(1), "rest", r#","operation":"write","path":"/inbox/new.csv","status":201"#);
    assert_eq!(server.post_events(ADMIN, &(upload + "\n")).0, 200);
    let got = receiver.wait_for(1, WAIT);
    assert_eq!(got.len(), 1, "one delivery");
    assert!(got[0].signed_with(&secret), "signed with the secret the page showed");
    assert_eq!(got[0].change(), ("create".into(), "/inbox/new.csv".into(), None));
    let webhook_id = got[0].header("webhook-id").to_owned();
    let hook_page = format!("{base}/accounts/acme/webhooks/{id}");
    assert!(harness::wait_for(WAIT, || {
        let (_, v) = server.get(ADMIN, &format!("/v1/accounts/acme/webhooks/{id}/deliveries"));
        v["attempts"].as_array().is_some_and(|a| !a.is_empty())
    }));
    b.navigate_by(&format!("document.querySelector('#webhooks a[href$=\"/{id}\"]').click()"));
    assert_eq!(b.url(), hook_page);
    let log = rows(&mut b, "#deliveries tbody tr");
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0][1].contains(&webhook_id), "{log:?}");
    assert_eq!((log[0][2].as_str(), log[0][3].as_str()), ("delivered", "200"), "status and response code");
    assert_clean(&mut b, "a webhook");
    shoot(&mut b, "webhook");
    fits_a_phone(&mut b, "a webhook");

    // Redeliver: sent again with the same webhook-id; the log shows both attempts.
    b.navigate_by("document.querySelector('#deliveries form button').click()");
    assert!(b.text("#notice").contains("being sent again"), "{}", b.text("#notice"));
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("webhook-id"), webhook_id, "receivers dedup on it");
    assert!(harness::wait_for(WAIT, || {
        let (_, v) = server.get(ADMIN, &format!("/v1/accounts/acme/webhooks/{id}/deliveries"));
        v["attempts"].as_array().is_some_and(|a| a.len() == 2)
    }));
    b.open(&hook_page);
    assert_eq!(rows(&mut b, "#deliveries tbody tr").len(), 2);
    assert_clean(&mut b, "a webhook after a redelivery");

    // Rotate the secret: a new one, shown once; the next delivery verifies with it.
    b.navigate_by("document.querySelector('#rotate').click()");
    let rotated = shown_secret(&mut b).expect("the new secret, shown once");
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    assert!(b.text("#webhook").contains("previous secret also signs until"), "{}", b.text("#webhook"));
    assert_clean(&mut b, "a rotated webhook");
    // Replay since the default (a day ago): the upload again, signed with both secrets.
    b.navigate_by("document.querySelector('#replay').submit()");
    assert!(b.text("#notice").contains("Sending again 1 event that arrived since"), "{}", b.text("#notice"));
    let got = receiver.wait_for(3, WAIT);
    assert_eq!(got.len(), 3);
    assert!(got[2].signed_with(&rotated) && got[2].signed_with(&secret), "both sign during the rotation");
    assert_clean(&mut b, "a replay");

    // Edit: another folder.
    b.navigate_by("document.getElementById('ew-folder').value = '/upload'; document.querySelector('#edit').submit()");
    assert!(b.text("#notice").contains("changed"), "{}", b.text("#notice"));
    assert_eq!(webhooks(&server, "acme")[0]["folder"], "/upload");

    // Disable: nothing is redelivered while disabled (the page says why); enable again.
    b.navigate_by("document.querySelector('#disable').click()");
    assert!(b.text("#webhook").contains("Disabled"), "{}", b.text("#webhook"));
    assert_eq!(webhooks(&server, "acme")[0]["enabled"], false);
    let disabled = b.eval("document.querySelector('#deliveries form button').disabled");
    assert_eq!(disabled, json!(true), "no redelivery offered while disabled");
    b.navigate_by(
        "const f = document.querySelector('#deliveries form'); f.querySelector('button').disabled = false; f.submit()",
    );
    assert!(b.text("#notice").contains("disabled: enable it first"), "{}", b.text("#notice"));
    assert_clean(&mut b, "a disabled webhook");
    shoot(&mut b, "webhook-disabled");
    b.navigate_by("document.querySelector('#enable').click()");
    assert_eq!(webhooks(&server, "acme")[0]["enabled"], true);

    // A refused field is said on the page, and creates nothing.
    b.open(&format!("{base}/accounts/acme/webhooks"));
    b.navigate_by("document.getElementById('nw-url').value = 'ftp://example.com/x'; document.querySelector('#new-webhook form').submit()");
    assert!(b.text("#notice").contains("Refused: url"), "{}", b.text("#notice"));
    assert_eq!(webhooks(&server, "acme").len(), 1);
    assert_clean(&mut b, "a refused webhook");

    // The alerts: the API's, newest first, past the plan's thresholds.
    assert!(harness::wait_for(WAIT, || {
        let (_, v) = server.get(ADMIN, "/v1/accounts/acme/alerts");
        v["alerts"].as_array().is_some_and(|a| a.len() >= 3)
    }));
    let (_, api) = server.get(ADMIN, "/v1/accounts/acme/alerts");
    let api = api["alerts"].as_array().unwrap().clone();
    b.navigate_by("document.querySelector('.subnav a[href$=\"/alerts\"]').click()");
    let shown = rows(&mut b, "#alerts tbody tr");
    assert_eq!(shown.len(), api.len(), "{shown:?}");
    for (row, alert) in shown.iter().zip(&api) {
        assert!(row[1].contains(alert["type"].as_str().unwrap()), "newest first: {row:?} {alert}");
        if let Some(t) = alert["threshold_percent"].as_u64() {
            assert!(row[2].starts_with(&format!("{t} % of the plan small")), "{row:?}");
        }
    }
    assert!(shown.iter().any(|r| r[1].contains("Threshold reached")));
    assert_clean(&mut b, "alerts");
    shoot(&mut b, "alerts");
    fits_a_phone(&mut b, "alerts");

    // Forms without this session's token are refused, and change nothing.
    for path in [
        "/accounts/acme/webhooks".to_owned(),
        format!("/accounts/acme/webhooks/{id}"),
        format!("/accounts/acme/webhooks/{id}/enabled"),
        format!("/accounts/acme/webhooks/{id}/delete"),
        format!("/accounts/acme/webhooks/{id}/rotate-secret"),
        format!("/accounts/acme/webhooks/{id}/replay"),
        format!("/accounts/acme/webhooks/{id}/deliveries/1/redeliver"),
    ] {
        assert_eq!(
            status_of(&mut b, "POST", &path, "enabled=false&confirm=yes&url=http://127.0.0.1:1/"),
            403,
            "{path}"
        );
    }
    assert_eq!(webhooks(&server, "acme").len(), 1);
    assert_eq!(webhooks(&server, "acme")[0]["enabled"], true);

    // Another account's pages and forms, by direct URL, are refused, even with this session's token.
    let csrf = b.eval("document.querySelector('input[name=csrf]').value").as_str().unwrap().to_owned();
    for path in [
        "/accounts/globex/webhooks".to_owned(),
        "/accounts/globex/alerts".to_owned(),
        format!("/accounts/globex/webhooks/{globex_hook}"),
        format!("/accounts/globex/webhooks/{id}"),
    ] {
        assert_eq!(status_of(&mut b, "GET", &path, ""), 403, "{path}");
    }
    for path in [
        format!("/accounts/globex/webhooks/{globex_hook}/enabled"),
        format!("/accounts/globex/webhooks/{globex_hook}/delete"),
    ] {
        assert_eq!(status_of(&mut b, "POST", &path, &format!("csrf={csrf}&enabled=false&confirm=yes")), 403, "{path}");
    }
    assert_eq!(webhooks(&server, "globex")[0]["enabled"], true, "globex's webhook untouched");
    b.take_problems();

    // A bad query, path or form is an error page, not the framework's plain text; nothing changes.
    let too_big = format!("csrf={csrf}&x={}", "a".repeat(20_000));
    let not_utf8 = format!("csrf={csrf}&url=http://127.0.0.1:1/&watch=folder&folder=%2Fin%ff&actions=create");
    for (method, path, body, status) in [
        ("GET", format!("/accounts/acme/webhooks/{id}?before=abc"), String::new(), 400),
        ("GET", "/accounts/acme/alerts?before=-1".to_owned(), String::new(), 400),
        ("POST", format!("/accounts/acme/webhooks/{id}/deliveries/abc/redeliver"), format!("csrf={csrf}"), 400),
        ("POST", "/accounts/acme/webhooks".to_owned(), not_utf8, 400),
        ("POST", format!("/accounts/acme/webhooks/{id}/enabled"), too_big, 413),
    ] {
        let script = format!(
            "fetch({}, {{method: {}, redirect: 'manual', headers: {{'content-type': \
             'application/x-www-form-urlencoded'}}, body: {}}}).then(r => [r.status, r.headers.get('content-type')])",
            json!(path),
            json!(method),
            if method == "GET" { "undefined".to_owned() } else { json!(body).to_string() }
        );
        let answer = b.eval(&script);
        assert_eq!(answer[0], json!(status), "{method} {path}");
        assert!(answer[1].as_str().unwrap_or("").starts_with("text/html"), "{method} {path}: {answer}");
    }
    assert_eq!((webhooks(&server, "acme").len(), &webhooks(&server, "acme")[0]["enabled"]), (1, &json!(true)));
    b.take_problems();

    // Support sees the pages, with no form but sign-out, and every change is refused.
    b.navigate_by("document.querySelector('.who button').click()");
    sign_in(&mut b, &base, &support);
    for page in [format!("{base}/accounts/acme/webhooks"), hook_page.clone(), format!("{base}/accounts/acme/alerts")] {
        b.open(&page);
        assert_eq!(b.eval("document.querySelectorAll('form[method=post]').length"), json!(1), "only sign-out: {page}");
        assert_clean(&mut b, &page);
    }
    b.open(&format!("{base}/accounts/acme/audit?range=period"));
    assert_eq!(b.eval("document.querySelectorAll('form.webhook-from-finding').length"), json!(0));
    assert!(b.text("#finding-1").contains("would replace this polling"));
    assert_clean(&mut b, "audit as support");
    let csrf = b.eval("document.querySelector('input[name=csrf]').value").as_str().unwrap().to_owned();
    let create = format!("csrf={csrf}&url={}&watch=folder&folder=/&actions=create", receiver.url);
    assert_eq!(status_of(&mut b, "POST", "/accounts/acme/webhooks", &create), 403);
    let disable = format!("csrf={csrf}&enabled=false");
    assert_eq!(status_of(&mut b, "POST", &format!("/accounts/acme/webhooks/{id}/enabled"), &disable), 403);
    assert_eq!((webhooks(&server, "acme").len(), &webhooks(&server, "acme")[0]["enabled"]), (1, &json!(true)));
    b.take_problems();

    // The operator acts on any account: deletes globex's webhook, which leaves the empty state.
    b.navigate_by("document.querySelector('.who button').click()");
    sign_in(&mut b, &base, ADMIN);
    b.open(&format!("{base}/accounts/globex/webhooks/{globex_hook}"));
    assert_clean(&mut b, "globex's webhook as the operator");
    b.navigate_by("const f = document.querySelector('#delete'); f.querySelector('input[name=confirm]').checked = true; f.submit()");
    assert!(b.url().ends_with("/accounts/globex/webhooks"), "{}", b.url());
    assert!(b.text("#notice").contains("deleted") && b.text("main").contains("No webhooks yet"), "{}", b.text("main"));
    assert!(webhooks(&server, "globex").is_empty());
    assert_clean(&mut b, "globex's webhooks, deleted");
    server.stop();
}
