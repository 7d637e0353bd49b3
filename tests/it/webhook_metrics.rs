//! `/metrics` for webhooks, from a real server and a real receiver: attempts
//! by outcome, what the delivery engine holds, and the change processor's
//! backlog (held up by a failpoint, so that it is seen).

use crate::harness::{self, event, ADMIN};
use crate::webhook_receiver::{Receiver, Reply};
use crate::webhooks::{subscribe, ALLOW_PRIVATE};
use serde_json::json;
use std::time::Duration;

fn upload(id: &str, path: &str) -> String {
    event("acme", id, &harness::ago(5), "rest", &format!(r#","operation":"write","path":"{path}""#)) + "\n"
}

#[test]
fn attempts_by_outcome_what_the_engine_holds_and_the_change_backlog() {
    let dir = tempfile::tempdir().unwrap();
    // The processor's first batch waits 3 s before it commits.
    let slow_processor = [("CALLMETER_FAILPOINTS", "processor.before_commit=1:sleep-3000")];
    let server = harness::start_with(&dir.path().join("data"), "127.0.0.1:0", ALLOW_PRIVATE, &slow_processor);
    // The first attempt is answered 500, its retry (5 s later) 204.
    let receiver = Receiver::answering(Reply::Status(204, String::new()), vec![Reply::Status(500, String::new())]);
    subscribe(&server, "acme", json!({"url": receiver.url, "folder": "/in"}));
    let metric = |name: &str| server.metric(&format!("callmeter_webhook_{name}"));
    assert_eq!(metric("changes_unprocessed"), 0);

    server.post_events(ADMIN, &upload("m1", "/in/a.csv"));
    assert!(
        harness::wait_for(Duration::from_secs(2), || metric("changes_unprocessed") == 1),
        "the stored change waits for the processor"
    );
    assert_eq!(receiver.wait_for(1, Duration::from_secs(10)).len(), 1);
    assert!(harness::wait_for(Duration::from_secs(2), || metric("attempts_failed_total") == 1));
    assert_eq!(metric("changes_unprocessed"), 0, "processed once its batch committed");
    assert_eq!(metric("attempts_delivered_total"), 0);

    assert_eq!(receiver.wait_for(2, Duration::from_secs(15)).len(), 2);
    assert!(harness::wait_for(Duration::from_secs(2), || metric("attempts_delivered_total") == 1));
    assert!(harness::wait_for(Duration::from_secs(2), || metric("rows_claimed") == 0), "nothing held once recorded");
    assert_eq!(metric("attempts_failed_total"), 1);
    assert_eq!(metric("attempts_in_flight"), 0);
    assert_eq!((metric("deliveries_given_up_total"), metric("subscriptions_disabled_total")), (0, 0));
    // (Claims also come once a second with nothing due: only the writes say something here.)
    assert!(metric("completion_writes_total") >= 2, "a write per attempt at least");
    server.stop();
}
