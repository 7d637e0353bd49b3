//! A call for a closed period is stored as late, not billed, and the closed
//! period's totals never move (DESIGN §2).

use crate::harness::{self, event, ADMIN};
use chrono::{Duration, NaiveTime, Utc};

#[test]
fn late_calls_are_stored_but_do_not_move_a_closed_period() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    // The period ends at today's UTC midnight; it closes 8 seconds from now.
    let end = now.date_naive().and_time(NaiveTime::MIN).and_utc();
    let grace = (now - end) + Duration::seconds(8);
    let grace_hours = grace.num_milliseconds() as f64 / 3_600_000.0;
    let server = harness::start(&dir.path().join("data"), &["--grace-hours", &grace_hours.to_string()]);
    let anchor = (end - Duration::days(30)).date_naive();
    let (s, v) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/acme"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"plan": "starter", "period_anchor": anchor, "timezone": "UTC"})),
    );
    assert_eq!(s, 200, "{v}");
    let in_period = (end - Duration::hours(1)).to_rfc3339();

    let (_, v) = server.post_events(ADMIN, &(event("acme", "on-time", &in_period, "rest", "") + "\n"));
    assert_eq!(v["accepted"], 1);
    let before = server.usage("acme", "previous");
    assert_eq!(before["period"]["closed"], false);
    assert_eq!(before["billable_calls"], 1);

    // Wait for the period to close.
    let closes_at = chrono::DateTime::parse_from_rfc3339(before["period"]["closes_at"].as_str().unwrap()).unwrap();
    while Utc::now() < closes_at {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, v) = server.post_events(
        ADMIN,
        &(event("acme", "late-1", &in_period, "rest", "") + "\n" + &event("acme", "on-time", &in_period, "rest", "")),
    );
    assert_eq!(harness::statuses(&v), vec!["accepted", "duplicate"], "a late copy of a counted call is a duplicate");
    let after = server.usage("acme", "previous");
    assert_eq!(after["period"]["closed"], true);
    assert_eq!(after["billable_calls"], 1, "closed total must not move");
    assert_eq!(after["billed_calls"], 1);
    assert_eq!(after["calls"], 2, "the late call is still counted as a call");
    assert_eq!(after["late_calls"], 1);
    // Asked again, the same numbers.
    assert_eq!(server.usage("acme", "previous"), after);
    // The request log shows it, marked late and not billable... by period.
    let (_, log) = server.get(ADMIN, "/v1/accounts/acme/calls");
    let late: Vec<_> = log["calls"].as_array().unwrap().iter().filter(|c| c["late"] == true).collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["id"], "late-1");
    // The billing export of a closed period is stable too.
    let csv1 = server
        .http
        .get(server.url("/v1/usage?period=previous&format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csv2 = server
        .http
        .get(server.url("/v1/usage?period=previous&format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(csv1, csv2);
    assert!(csv1.contains("acme,starter,"));
}

#[test]
fn bill_in_open_period_carries_late_calls_into_the_current_period() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        harness::start(&dir.path().join("data"), &["--grace-hours", "0", "--late-calls", "bill_in_open_period"]);
    let now = Utc::now();
    let anchor = (now - Duration::days(45)).date_naive();
    let (s, _) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/acme"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"period_anchor": anchor})),
    );
    assert_eq!(s, 200);
    let old = (now - Duration::days(44)).to_rfc3339();
    let (_, v) = server.post_events(ADMIN, &(event("acme", "old", &old, "rest", "") + "\n"));
    assert_eq!(v["accepted"], 1);
    let prev = server.usage("acme", "previous");
    assert_eq!(
        (prev["calls"].as_u64(), prev["late_calls"].as_u64(), prev["billable_calls"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    let cur = server.usage("acme", "current");
    assert_eq!((cur["calls"].as_u64(), cur["billable_calls"].as_u64()), (Some(0), Some(1)));
}
