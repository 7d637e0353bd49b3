//! What follows an attempt (see `engine.rs`): a 2xx delivers; a 410
//! disables the subscription at once and holds the row; anything else is
//! tried again on the schedule until the tenth attempt, and five days of
//! failures with no success disable the subscription.

use crate::schedule;
use crate::sender::Sent;
use callmeter_store::{ClaimedDelivery, NextStep, SubscriptionUpdate};
use chrono::{DateTime, Utc};

/// What follows an attempt: the row's next step, and a change to its
/// subscription (failures begun or ended, or disabled).
pub(super) fn decide(c: &ClaimedDelivery, sent: &Sent, now: DateTime<Utc>) -> (NextStep, Option<SubscriptionUpdate>) {
    let sub = &c.subscription;
    if sent.delivered {
        let update =
            sub.failing_since.is_some().then(|| SubscriptionUpdate { failing_since: Some(None), ..Default::default() });
        return (NextStep::Delivered, update);
    }
    if !sub.enabled {
        // Disabled while this attempt ran (a 410 to another row): kept, for replay.
        return (NextStep::Hold, None);
    }
    // (The disable is logged where it is written, once: `update_after_attempt`.)
    if sent.response_code == Some(410) {
        return (NextStep::Hold, Some(disable("the target answered 410 Gone")));
    }
    let failing_since = sub.failing_since.unwrap_or(now);
    if now - failing_since >= schedule::disable_after() {
        return (NextStep::Hold, Some(disable("deliveries failed for five days")));
    }
    let update = sub
        .failing_since
        .is_none()
        .then(|| SubscriptionUpdate { failing_since: Some(Some(now)), ..Default::default() });
    let attempts = c.delivery.attempts + 1;
    let next = match schedule::next_attempt(attempts, now, sent.retry_after, schedule::jitter()) {
        Some(at) => NextStep::RetryAt(at),
        None => NextStep::GiveUp,
    };
    (next, update)
}

fn disable(reason: &str) -> SubscriptionUpdate {
    SubscriptionUpdate {
        enabled: Some(false),
        disabled_reason: Some(reason.to_owned()),
        if_enabled: true,
        ..Default::default()
    }
}
