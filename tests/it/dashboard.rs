//! The dashboard in a real browser: headless Chromium (`browser.rs`) against
//! a real `callmeter serve` with seeded calls. Signs in with each kind of
//! token, checks the pages show what the API answers, pages through the
//! request log, exports it, opens the audit, shares the usage page, and
//! checks what must be refused is refused: another account's pages (direct
//! URLs included), a form without its CSRF token, a revoked token's
//! session. Every page must load with no console error and no failed
//! request. Screenshots of each page at desktop and phone widths go to
//! `target/dashboard-screenshots/`, for people to look at.

use crate::browser::Browser;
use crate::harness::{ago, event, start, Server, ADMIN};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Seeds two accounts: `acme` with a poller, a person, an uploader and some
/// errors over the last 150 minutes (oldest first, so the account's first
/// period holds them all), and `globex` with a few calls.
pub(crate) fn seed(server: &Server) -> usize {
    let mut lines = Vec::new();
    for i in (0..150).rev() {
        let extra = r#","operation":"list","method":"GET","path":"/inbox/","api_key":"key_poll","status":200,"result_count":12,"client_ip":"203.0.113.9""#;
        lines.push((i * 60 + 30, event("acme", &format!("poll-{i}"), &ago(i * 60 + 30), "rest", extra)));
    }
    for i in 0..40 {
        let extra = format!(r#","method":"GET","path":"/docs/file{i}.pdf","user":"alice","status":200"#);
        lines.push((i * 200 + 5, event("acme", &format!("read-{i}"), &ago(i * 200 + 5), "web", &extra)));
    }
    for i in 0..30 {
        let extra = format!(r#","operation":"write","path":"/upload/batch-{i}.csv","user":"bob","status":0"#);
        lines.push((i * 250 + 7, event("acme", &format!("up-{i}"), &ago(i * 250 + 7), "sftp", &extra)));
    }
    for i in 0..6 {
        let extra = r#","method":"GET","path":"/inbox/missing","api_key":"key_poll","status":404"#;
        lines.push((i * 900 + 11, event("acme", &format!("err-{i}"), &ago(i * 900 + 11), "rest", extra)));
    }
    lines.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
    let acme: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    let (status, v) = server.post_events(ADMIN, &(acme.join("\n") + "\n"));
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(acme.len() as u64)), "{v}");
    let globex: Vec<String> = (0..20)
        .rev()
        .map(|i| event("globex", &format!("g-{i}"), &ago(i * 60 + 20), "rest", r#","path":"/g/""#))
        .collect();
    assert_eq!(server.post_events(ADMIN, &(globex.join("\n") + "\n")).0, 200);
    acme.len()
}

pub(crate) fn token(server: &Server, body: Value) -> (String, String) {
    let (s, v) = server.send(server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&body));
    assert_eq!(s, 201, "{v}");
    (v["secret"].as_str().unwrap().to_owned(), v["token"]["id"].as_str().unwrap().to_owned())
}

pub(crate) fn account_key(server: &Server, account: &str) -> (String, String) {
    let (s, v) = server.send(server.http.post(server.url(&format!("/v1/accounts/{account}/keys"))).bearer_auth(ADMIN));
    assert_eq!(s, 201, "{v}");
    (v["secret"].as_str().unwrap().to_owned(), v["token"]["id"].as_str().unwrap().to_owned())
}

/// Where the screenshots go: the target folder, which git ignores.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("dashboard-screenshots")
}

/// Screenshots of the page at desktop and phone widths, then back to desktop.
pub(crate) fn shoot(b: &mut Browser, name: &str) {
    let dir = screenshots();
    b.screenshot(&dir.join(format!("{name}-desktop.png")));
    b.viewport(390, 844, true);
    b.screenshot(&dir.join(format!("{name}-phone.png")));
    b.viewport(1280, 800, false);
}

/// Fails on any console message, exception, refused resource or failed request since the last look.
pub(crate) fn assert_clean(b: &mut Browser, page: &str) {
    let problems: Vec<String> = b.take_problems().into_iter().map(|p| format!("{} (on {})", p.what, p.url)).collect();
    assert!(problems.is_empty(), "{page}: {problems:#?}");
}

/// Signs in through the form.
pub(crate) fn sign_in(b: &mut Browser, base: &str, secret: &str) {
    b.open(&format!("{base}/sign-in"));
    b.navigate_by(&format!(
        "document.getElementById('token').value = {}; document.querySelector('form').submit()",
        json!(secret)
    ));
}

/// The status of a same-origin request from the page (its cookies included).
pub(crate) fn status_of(b: &mut Browser, method: &str, path: &str, form: &str) -> u64 {
    let script = format!(
        "fetch({}, {{method: {}, redirect: 'manual', body: {}}}).then(r => r.status)",
        json!(path),
        json!(method),
        if method == "GET" { "undefined".to_owned() } else { format!("new URLSearchParams({})", json!(form)) }
    );
    b.eval(&script).as_u64().unwrap_or(0)
}

pub(crate) fn rows(b: &mut Browser, selector: &str) -> Vec<Vec<String>> {
    let script = format!(
        "[...document.querySelectorAll({})].map(tr => [...tr.children].map(td => td.innerText.trim()))",
        json!(selector)
    );
    serde_json::from_value(b.eval(&script)).unwrap_or_default()
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_dashboard_shows_what_the_api_answers_and_refuses_what_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    let seeded = seed(&server);
    let (acme_key, acme_key_id) = account_key(&server, "acme");
    let (support, _) = token(&server, json!({"scope": "support"}));
    let base = server.base.clone();
    let mut b = Browser::start();

    // The front door sends a stranger to the sign-in page; a wrong token is told so.
    b.open(&format!("{base}/"));
    assert!(b.url().ends_with("/sign-in"), "{}", b.url());
    assert_clean(&mut b, "sign-in");
    shoot(&mut b, "sign-in");
    b.navigate_by("document.getElementById('token').value = 'cm_key_wrong'; document.querySelector('form').submit()");
    assert!(b.text("[role=alert]").contains("not known"));
    let refused = b.take_problems();
    assert!(
        !refused.is_empty() && refused.iter().all(|p| p.what.contains("401")),
        "only the refused sign-in: {refused:#?}"
    );

    // An account key lands on its usage page, whose totals are the API's.
    sign_in(&mut b, &base, &acme_key);
    assert!(b.url().ends_with("/accounts/acme/usage"), "{}", b.url());
    let usage = server.usage("acme", "current");
    assert_eq!(usage["calls"].as_u64(), Some(seeded as u64));
    assert_eq!(b.text("#all-calls"), thousands(usage["calls"].as_u64().unwrap()));
    assert_eq!(b.text("#billed-calls"), thousands(usage["billed_calls"].as_u64().unwrap()));
    let (_, grouped) = server.get(ADMIN, "/v1/accounts/acme/usage?period=current&group_by=interface");
    let page_rows = rows(&mut b, "#table-interface tbody tr");
    assert_eq!(page_rows.len(), grouped["groups"].as_array().unwrap().len());
    for g in grouped["groups"].as_array().unwrap() {
        let name = g["key"]["interface"].as_str().unwrap();
        let row = page_rows.iter().find(|r| r[0] == name).unwrap_or_else(|| panic!("{name} not on the page"));
        assert_eq!(row[1], thousands(g["calls"].as_u64().unwrap()), "{name}");
    }
    assert!(b.eval("document.querySelectorAll('figure svg').length").as_u64().unwrap() >= 2, "gauge and chart");
    assert_clean(&mut b, "usage");
    shoot(&mut b, "usage");
    // A breakdown's CSV is the table's numbers.
    let csv = b.eval("fetch('/accounts/acme/usage/api_key.csv').then(r => r.text())");
    assert!(csv.as_str().unwrap().starts_with("api_key,calls,billable_calls\nkey_poll,156,156\n"), "{csv}");

    // The request log, filtered, paged through newest first: the API's calls in reverse.
    b.open(&format!("{base}/accounts/acme/calls"));
    assert_eq!(rows(&mut b, "#calls tbody tr").len(), 50, "a full first page");
    assert_clean(&mut b, "request log");
    shoot(&mut b, "calls");
    b.navigate_by(
        "document.getElementById('f-interface').value = 'rest'; document.getElementById('f-path').value = '/inbox/'; \
         document.querySelector('form.filters').submit()",
    );
    let (_, api) = server.get(ADMIN, "/v1/accounts/acme/calls?interface=rest&path_prefix=/inbox/&per_page=10000");
    let mut expected: Vec<String> =
        api["calls"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap().to_owned()).collect();
    expected.reverse();
    let mut seen = Vec::new();
    let mut times = Vec::new();
    loop {
        for r in rows(&mut b, "#calls tbody tr") {
            assert_eq!(r[1], "rest");
            seen.push(r[4].clone());
            times.push(r[0].clone());
        }
        assert_clean(&mut b, "a page of the filtered request log");
        if b.eval("!!document.getElementById('next-page')") != json!(true) {
            break;
        }
        b.navigate_by("document.getElementById('next-page').click()");
    }
    assert_eq!(seen, expected, "every matching call once, newest first");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Its CSV export is the API's CSV of the same filter, byte for byte.
    let href = b.eval("document.querySelector('a[download]').getAttribute('href')").as_str().unwrap().to_owned();
    let exported = b.eval(&format!("fetch({}).then(r => r.text())", json!(href))).as_str().unwrap().to_owned();
    let api_csv = server
        .http
        .get(server.url("/v1/accounts/acme/calls?format=csv&interface=rest&path_prefix=/inbox/"))
        .bearer_auth(&acme_key)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(exported, api_csv);
    assert_eq!(exported.lines().count(), expected.len() + 1);
    // A call's detail.
    b.navigate_by("document.querySelector('#calls tbody a').click()");
    assert!(b.text("#call").contains("/inbox/"), "{}", b.text("#call"));
    assert_clean(&mut b, "a call");
    shoot(&mut b, "call");

    // The audit: the poller found, biggest first, with the API's what-if.
    b.open(&format!("{base}/accounts/acme/audit?range=period"));
    let (_, audit) = server.get(ADMIN, "/v1/accounts/acme/audit");
    let first = &audit["findings"][0];
    assert_eq!((first["kind"].as_str(), first["path"].as_str()), (Some("polling"), Some("/inbox")), "{audit}");
    assert!(b.text("#finding-1").contains("/inbox"), "{}", b.text("#finding-1"));
    assert!(b.text("#finding-1").contains("API key key_poll"));
    let what_if = b.text("#what-if");
    for n in [&audit["what_if"]["calls"], &audit["what_if"]["calls_after"]] {
        assert!(what_if.contains(&thousands(n.as_u64().unwrap())), "{n} not in {what_if}");
    }
    assert!(b.eval("document.querySelectorAll('#finding-1 svg').length").as_u64().unwrap() >= 1, "its chart");
    assert_clean(&mut b, "audit");
    shoot(&mut b, "audit");

    // Another account's pages, by any URL, are refused; so is the operator's list.
    for path in [
        "/accounts/globex/usage",
        "/accounts/globex/calls",
        "/accounts/globex/calls.csv",
        "/accounts/globex/usage/interface.csv",
        "/accounts/globex/audit",
        "/accounts/nosuch/usage",
        "/accounts",
    ] {
        assert_eq!(status_of(&mut b, "GET", path, ""), 403, "{path}");
    }
    b.open(&format!("{base}/accounts/globex/usage"));
    assert!(b.text("main").contains("cannot see"), "{}", b.text("main"));
    assert!(!b.text("body").contains("/g/"), "nothing of globex shows");
    b.take_problems();

    // A form without this session's CSRF token is refused, and changes nothing.
    assert_eq!(status_of(&mut b, "POST", "/sign-out", "csrf=wrong"), 403);
    assert_eq!(status_of(&mut b, "POST", "/accounts/acme/share", "days=7"), 403);
    assert_eq!(status_of(&mut b, "GET", "/accounts/acme/usage", ""), 200, "still signed in");
    b.take_problems();

    // A share link: made, opened by anyone, revoked.
    b.open(&format!("{base}/accounts/acme/usage"));
    b.navigate_by("document.querySelector('#share form').submit()");
    let link = b.eval("document.querySelector('#share-links input').value").as_str().unwrap().to_owned();
    assert!(link.contains("/share/"), "{link}");
    assert_clean(&mut b, "usage with a share link");
    let shared = server.http.get(&link).send().unwrap();
    assert_eq!(shared.status(), 200);
    let shared = shared.text().unwrap();
    assert!(shared.contains("read-only view") && shared.contains(&thousands(usage["calls"].as_u64().unwrap())));
    assert!(!shared.contains("name=\"csrf\""), "no forms behind a share link");

    // Sign out; the pages then send to the sign-in page.
    b.navigate_by("document.querySelector('.who button').click()");
    assert!(b.url().ends_with("/sign-in"), "{}", b.url());
    b.open(&format!("{base}/accounts/acme/usage"));
    assert!(b.url().ends_with("/sign-in"), "{}", b.url());
    b.open(&link);
    assert_clean(&mut b, "the shared page");
    shoot(&mut b, "shared-usage");

    // A revoked key's session ends at once.
    sign_in(&mut b, &base, &acme_key);
    assert!(b.url().ends_with("/accounts/acme/usage"));
    b.navigate_by("document.querySelector('#share-links form').submit()");
    assert_eq!(server.http.get(&link).send().unwrap().status(), 404, "revoked");
    let (s, _) = server.send(server.http.delete(server.url(&format!("/v1/tokens/{acme_key_id}"))).bearer_auth(ADMIN));
    assert_eq!(s, 204);
    b.open(&format!("{base}/accounts/acme/calls"));
    assert!(b.url().ends_with("/sign-in"), "the revoked key's session ended: {}", b.url());
    b.take_problems();

    // Support sees every account and changes nothing.
    sign_in(&mut b, &base, &support);
    assert!(b.url().ends_with("/accounts"), "{}", b.url());
    let accounts: Vec<String> = rows(&mut b, "#accounts tbody tr").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(accounts, ["acme", "globex"], "sorted by usage");
    assert_clean(&mut b, "all accounts");
    shoot(&mut b, "accounts");
    b.open(&format!("{base}/accounts/globex/usage"));
    assert_eq!(b.eval("!!document.getElementById('share')"), json!(false), "support makes no share links");
    assert_clean(&mut b, "globex as support");
    assert_eq!(status_of(&mut b, "POST", "/accounts/globex/share", "days=7"), 403);
    b.take_problems();

    // The operator, with the admin token.
    b.navigate_by("document.querySelector('.who button').click()");
    sign_in(&mut b, &base, ADMIN);
    assert!(b.url().ends_with("/accounts"));
    b.open(&format!("{base}/accounts?sort=growth"));
    assert_clean(&mut b, "all accounts by growth");
    server.stop();
}

#[test]
fn an_account_with_no_calls_says_how_to_send_some() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    let (s, v) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/newco"))
            .bearer_auth(ADMIN)
            .json(&json!({"timezone": "Europe/Berlin"})),
    );
    assert!(s == 200 || s == 201, "{v}");
    let (key, _) = account_key(&server, "newco");
    let mut b = Browser::start();
    sign_in(&mut b, &server.base, &key);
    assert!(b.text("main").contains("No calls yet"), "{}", b.text("main"));
    b.open(&format!("{}/accounts/newco/calls", server.base));
    assert!(b.text("main").contains("No calls yet"));
    b.open(&format!("{}/accounts/newco/audit", server.base));
    assert!(b.text("main").contains("No calls in this range"));
    assert_clean(&mut b, "empty pages");
    shoot(&mut b, "empty-audit");
    server.stop();
}
