//! The evaluator against a real store: calls ingested, alerts evaluated at
//! instants a test clock gives (the clock moves where real time cannot be
//! waited for: a day for the projection, a night for the spike), each alert
//! fired once, with its deliveries and the top finding of the kept audit.

use super::{evaluate, FiredMemory};
use crate::options::{ServerOptions, Settings};
use callmeter_model::{local_midnight, CallEvent, Interface, Operation, PeriodKind, Plan};
use callmeter_store::{AccountChange, Alert, AlertKind, EmbeddedStore, SigningSecret, Store, Subscription, Watch};
use callmeter_webhooks::{Clock, TestClock};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// A store whose one plan, `small`, includes 1,000 calls a 30-day period.
fn setup() -> (tempfile::TempDir, EmbeddedStore, Settings) {
    let mut settings = ServerOptions::default().resolve().unwrap();
    settings.store.plans = vec![Plan {
        name: "small".into(),
        period: PeriodKind::ThirtyDays,
        included_calls: 1_000,
        ..crate::default_plans()[0].clone()
    }];
    settings.store.default_plan = "small".into();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), settings.store.clone()).unwrap();
    (dir, store, settings)
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Makes `acme` with periods from `anchor`, and an alert subscription to every alert.
fn account(store: &EmbeddedStore, anchor: NaiveDate) {
    let change = AccountChange { anchor: Some(anchor), timezone: Some(chrono_tz::UTC), ..Default::default() };
    store.upsert_account("acme", change).unwrap();
    store
        .create_subscription(Subscription {
            id: "wh_alerts".into(),
            account: "acme".into(),
            url: "http://127.0.0.1:9/hook".into(),
            watch: Watch::Alerts { events: AlertKind::ALL.to_vec() },
            actions: vec![],
            enabled: true,
            disabled_reason: None,
            headers: Default::default(),
            secrets: vec![SigningSecret { secret: "whsec_AAAA".into(), expires_at: None }],
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        })
        .unwrap();
}

/// `n` billable list calls of `path` at `at`, ids `{tag}-{i}`.
fn calls(store: &EmbeddedStore, tag: &str, n: usize, at: DateTime<Utc>) {
    let events: Vec<CallEvent> = (0..n)
        .map(|i| {
            let mut e = CallEvent::new(format!("{tag}-{i}"), "acme".into(), at, Interface::Rest, Operation::List);
            e.path = Some("/inbound".into());
            e
        })
        .collect();
    let outcomes = store.ingest(events).wait_blocking().unwrap();
    assert!(outcomes.iter().all(|o| *o == callmeter_store::Outcome::Accepted), "{outcomes:?}");
}

/// The thresholds of the alerts, in the order fired.
fn thresholds(fired: &[Alert]) -> Vec<Option<u64>> {
    fired.iter().map(|a| a.threshold_percent).collect()
}

/// A day's audit with one poller: user alice lists /inbound every 30 s, 120 times, nothing changes.
fn kept_audit(store: &EmbeddedStore, day: NaiveDate) {
    let start = day.and_hms_opt(9, 0, 0).unwrap().and_utc();
    let mut auditor = callmeter_audit::Auditor::new(Default::default()).unwrap().account("acme");
    for i in 0..120 {
        let mut e = CallEvent::new(
            format!("a{i}"),
            "acme".into(),
            start + Duration::seconds(30 * i),
            Interface::Rest,
            Operation::List,
        );
        e.path = Some("/inbound".into());
        e.user = Some("alice".into());
        auditor.push(&e);
    }
    let report = auditor.finish();
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    store.put_audit("acme", day, &serde_json::to_vec(&report).unwrap()).unwrap();
}

/// 50, 80 and 100 % crossed by one batch fire three alerts, once each, with
/// a delivery each and the kept audit's top finding; the step above 100 %
/// fires once passed; thresholds set on the account mid-period fire at once
/// when usage is already past them; the next period fires them all again.
#[test]
fn thresholds_fire_once_each_per_period_also_when_added_mid_period() {
    let (_dir, store, mut settings) = setup();
    settings.alerts.spike_min_calls = u64::MAX; // today against yesterday alone would spike
    let clock = TestClock::at(Utc::now());
    // Periods start at today's midnight: the one before (yesterday and back) is not closed yet.
    account(&store, today() - Duration::days(30));
    kept_audit(&store, today() - Duration::days(1));
    let mut memory = FiredMemory::default();
    let yesterday = local_midnight(chrono_tz::UTC, today()) - Duration::hours(2);
    calls(&store, "y", 1_000, yesterday);
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(thresholds(&fired), [Some(50), Some(80), Some(100)], "one batch past three thresholds: three alerts");
    assert!(fired.iter().all(|a| a.kind == AlertKind::ThresholdReached && a.billed_calls == 1_000));
    let previous = fired[0].period;
    assert_eq!(previous.end, local_midnight(chrono_tz::UTC, today()), "the period before, still open");
    let finding = fired[0].top_finding.as_ref().expect("the kept audit's top finding");
    assert_eq!(finding.kind, "polling");
    assert_eq!(finding.summary, "100 % of your calls are a 30 s poll of /inbound; a webhook would save 119 calls");
    assert_eq!(store.deliveries("acme", "wh_alerts").unwrap().len(), 3, "a delivery each");
    assert!(evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap().is_empty());
    assert!(
        evaluate(&store, &settings, "acme", clock.now(), &mut FiredMemory::default()).unwrap().is_empty(),
        "the store fires none twice, whatever the evaluator remembers"
    );

    // 1,260 calls: the step above 100 % (125).
    calls(&store, "y2", 260, yesterday);
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(thresholds(&fired), [Some(125)]);

    // The account's own thresholds, set mid-period: those already passed fire at once.
    let own = AccountChange { alert_thresholds: Some(vec![90, 110, 200]), ..Default::default() };
    store.upsert_account("acme", own).unwrap();
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(thresholds(&fired), [Some(90), Some(110)]);

    // The current period: the same thresholds fire again (the account's list now).
    let today_start = local_midnight(chrono_tz::UTC, today());
    calls(&store, "t", 1_100, today_start + (clock.now() - today_start) / 2);
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(thresholds(&fired), [Some(90), Some(110)]);
    assert!(fired.iter().all(|a| a.period.start == today_start));
    assert_eq!(store.alerts("acme", None, 100).unwrap().alerts.len(), 8);
    store.shutdown();
}

/// Overage thresholds are not bounded by a 32-bit percentage: an
/// adjustment of 10^12 calls on a 1,000-call plan fires its step
/// (100,000,000,100 %), and a second one the next.
#[test]
fn huge_overages_fire_their_own_thresholds() {
    let (_dir, store, mut settings) = setup();
    settings.alerts.spike_min_calls = u64::MAX;
    let clock = TestClock::at(Utc::now());
    account(&store, today() - Duration::days(30));
    let mut memory = FiredMemory::default();
    calls(&store, "y", 1_000, local_midnight(chrono_tz::UTC, today()) - Duration::hours(2));
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(thresholds(&fired), [Some(50), Some(80), Some(100)]);
    let period_start = fired[0].period.start;
    for expected in [100_000_000_100, 200_000_000_100] {
        let adjustment = callmeter_store::Adjustment {
            account: "acme".into(),
            period_start,
            calls: 1_000_000_000_000,
            reason: "a test".into(),
            created_at: clock.now(),
        };
        store.add_adjustment(adjustment).unwrap();
        let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
        assert_eq!(thresholds(&fired), [Some(expected)]);
    }
    store.shutdown();
}

/// The projection of a period that began today passes the included calls
/// only once a day of it has passed (the clock moves); it fires once, with
/// the date the calls run out.
#[test]
fn projected_overage_fires_once_with_its_date() {
    let (_dir, store, settings) = setup();
    let start = local_midnight(chrono_tz::UTC, today());
    account(&store, today());
    let clock = TestClock::at(Utc::now());
    calls(&store, "p", 200, start + (clock.now() - start) / 2);
    let mut memory = FiredMemory::default();
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert!(fired.is_empty(), "less than a day of the period: too early to project: {fired:?}");

    // Two days in: 200 calls in 2 days is 3,000 in 30, past the 1,000 included; they run out on day 10.
    clock.set(start + Duration::days(2));
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let a = &fired[0];
    assert_eq!(a.kind, AlertKind::ProjectedOverage);
    assert_eq!(a.projected_calls, Some(3_000));
    assert_eq!(a.projected_overage_at, Some(start + Duration::days(10)));
    assert_eq!(a.top_finding, None, "no kept audit");
    clock.advance(Duration::days(1));
    assert!(
        evaluate(&store, &settings, "acme", clock.now(), &mut FiredMemory::default()).unwrap().is_empty(),
        "once a period"
    );
    store.shutdown();
}

/// A day's calls above 3× the median of the 7 days before spike, once that
/// day; the next day (the clock moves past midnight) has none.
#[test]
fn a_spike_fires_once_for_its_day() {
    let (_dir, store, settings) = setup();
    let mut settings = settings;
    settings.store.plans[0].included_calls = 1_000_000; // no thresholds in the way
    account(&store, today() - Duration::days(20));
    for (back, n) in [(1, 100), (2, 120), (3, 90), (4, 110), (5, 80), (6, 95), (7, 105)] {
        let day = local_midnight(chrono_tz::UTC, today() - Duration::days(back));
        calls(&store, &format!("d{back}"), n, day + Duration::hours(12));
    }
    let clock = TestClock::at(Utc::now());
    let today_start = local_midnight(chrono_tz::UTC, today());
    let mut memory = FiredMemory::default();
    calls(&store, "t1", 300, today_start + (clock.now() - today_start) / 2);
    assert!(
        evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap().is_empty(),
        "300 is not above 3 × 100"
    );
    calls(&store, "t2", 1, today_start + (clock.now() - today_start) / 2);
    let fired = evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].kind, AlertKind::Spike);
    assert_eq!(
        (fired[0].day, fired[0].day_calls, fired[0].trailing_median_calls),
        (Some(today()), Some(301), Some(100.0))
    );
    calls(&store, "t3", 500, today_start + (clock.now() - today_start) / 2);
    assert!(evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap().is_empty(), "once a day");
    clock.set(today_start + Duration::days(1) + Duration::hours(1));
    assert!(evaluate(&store, &settings, "acme", clock.now(), &mut memory).unwrap().is_empty(), "a quiet next day");
    store.shutdown();
}
