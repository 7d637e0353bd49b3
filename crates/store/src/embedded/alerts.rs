//! Usage alerts: each fired once, with its deliveries, in one synced batch.
//!
//! | keyspace | key                                              | value             |
//! |----------|--------------------------------------------------|-------------------|
//! | `alerts` | account, `a`, alert id u64 BE                    | JSON `Alert`      |
//! | `alerts` | account, `f`, fired key (kind, period, detail)   | alert id u64 BE   |
//!
//! An account's alerts are one prefix (newest last), and so are its "fired"
//! marks. [`fire`] leaves out every alert whose mark is there, and writes
//! the others' records, their marks, one outbox row per alert subscription
//! of the account that wants them, and the next ids, in one batch, synced
//! before the outbox lock is let go. So the delivery engine never claims a
//! row that a crash could take back, and a crash leaves an alert fired with
//! all its deliveries, or not fired at all (then it is found due again and
//! fired after the restart): none lost, none fired twice.
//!
//! Like the change processor's rows, these are written straight into the
//! engine, not through the writer: they come from a thread of their own, are
//! rare (a few per account and period), and need no undo (a batch is synced
//! before anyone reads it).
//!
//! The records and marks of a period are kept as long as calls are (the
//! retention): a mark must outlive every evaluation of its period, and a
//! period older than the retention takes no more calls.

use super::outbox::{self, NEXT_DELIVERY_ID_KEY};
use super::{Engine, Shared};
use crate::alert_records::{Alert, AlertPage};
use crate::disk;
use crate::failpoint;
use crate::keys;
use crate::webhook_records::{Delivery, DeliveryState, OutboxEvent};
use crate::StoreError;
use fjall::PersistMode;
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;

pub(crate) const NEXT_ALERT_ID_KEY: &str = "next_alert_id";

const RECORD: u8 = b'a';
const FIRED: u8 = b'f';

fn record_prefix(account: &str) -> Vec<u8> {
    let mut k = keys::account_prefix(account);
    k.push(RECORD);
    k
}

fn record_key(account: &str, id: u64) -> Vec<u8> {
    let mut k = record_prefix(account);
    keys::push_u64(&mut k, id);
    k
}

fn fired_key(alert: &Alert) -> Vec<u8> {
    let mut k = keys::account_prefix(&alert.account);
    k.push(FIRED);
    k.extend_from_slice(&alert.fired_key());
    k
}

fn next_alert_id(engine: &Engine) -> Result<u64, StoreError> {
    Ok(match engine.meta.get(NEXT_ALERT_ID_KEY)? {
        Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt(NEXT_ALERT_ID_KEY.into()))?,
        None => 0,
    })
}

/// Fires the alerts not fired before, with their deliveries; the ones fired, with their ids.
pub(crate) fn fire(
    engine: &Engine,
    shared: &Shared,
    data: &Path,
    min_free_bytes: u64,
    alerts: Vec<Alert>,
) -> Result<Vec<Alert>, StoreError> {
    // Most evaluations find every due alert fired already: settle that without the lock.
    let mut fresh = Vec::new();
    let mut seen = HashSet::new();
    for a in alerts {
        let key = fired_key(&a);
        if seen.insert(key.clone()) && !engine.alerts.contains_key(&key)? {
            fresh.push((key, a));
        }
    }
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    if !shared.writable.load(Ordering::Relaxed) {
        return Err(StoreError::Unavailable("the store takes no writes after a failed sync".into()));
    }
    // The outbox lock orders delivery ids and claims, and makes this the only firing at a time.
    let mut locked = shared.outbox.locked.lock();
    let mut next_id = next_alert_id(engine)?;
    let mut next_delivery = locked.next_delivery_id;
    let mut batch = engine.db.batch();
    let mut fired = Vec::new();
    let mut pending = false;
    let subscriptions = shared.subscriptions.read().clone();
    for (key, mut alert) in fresh {
        // Looked at again under the lock: a firing that ran meanwhile may have taken it.
        if engine.alerts.contains_key(&key)? {
            continue;
        }
        alert.id = next_id;
        next_id += 1;
        batch.insert(&engine.alerts, record_key(&alert.account, alert.id), outbox::to_json(&alert));
        batch.insert(&engine.alerts, key, alert.id.to_be_bytes());
        for listed in subscriptions.of_account(&alert.account).filter(|l| l.sub.wants_alert(alert.kind)) {
            let sub = &listed.sub;
            let row = Delivery {
                id: next_delivery,
                account: sub.account.clone(),
                subscription: sub.id.clone(),
                event: OutboxEvent::Alert { id: alert.id },
                state: if sub.enabled { DeliveryState::Pending } else { DeliveryState::Held },
                attempts: 0,
                next_attempt_at: alert.fired_at,
                created_at: alert.fired_at,
            };
            pending |= sub.enabled;
            next_delivery += 1;
            outbox::put_row(engine, &mut locked, &mut batch, listed.number, &row);
        }
        fired.push(alert);
    }
    if fired.is_empty() {
        return Ok(fired);
    }
    batch.insert(&engine.meta, NEXT_ALERT_ID_KEY, next_id.to_be_bytes());
    batch.insert(&engine.meta, NEXT_DELIVERY_ID_KEY, next_delivery.to_be_bytes());
    disk::require_free(data, min_free_bytes)?;
    failpoint::check("alerts.before_commit")?;
    batch.commit()?;
    // Taken once committed, whether or not the sync that follows fails: the
    // rows are in the engine, and their ids must never be given again.
    locked.next_delivery_id = next_delivery;
    failpoint::check("alerts.sync")?;
    engine.db.persist(PersistMode::SyncAll)?;
    drop(locked);
    failpoint::hit("alerts.after_sync");
    if pending {
        shared.outbox.notify.notify_one();
    }
    Ok(fired)
}

/// The alert of `account` with id `id`, if it is kept.
pub(crate) fn get(engine: &Engine, account: &str, id: u64) -> Result<Option<Alert>, StoreError> {
    match engine.alerts.get(record_key(account, id))? {
        Some(v) => Ok(Some(decode(&v)?)),
        None => Ok(None),
    }
}

/// A page of an account's alerts, newest first, before the id `before`.
pub(crate) fn page(engine: &Engine, account: &str, before: Option<u64>, limit: usize) -> Result<AlertPage, StoreError> {
    let start = record_prefix(account);
    let end = record_key(account, before.unwrap_or(u64::MAX));
    let mut alerts = Vec::new();
    for item in engine.alerts.range(start..end).rev() {
        let (_, v) = item.into_inner()?;
        if alerts.len() == limit {
            let next_before = alerts.last().map(|a: &Alert| a.id);
            return Ok(AlertPage { alerts, next_before });
        }
        alerts.push(decode(&v)?);
    }
    Ok(AlertPage { alerts, next_before: None })
}

/// Removes the alerts (records and marks) of periods that ended before `cutoff`; how many.
pub(crate) fn expire(engine: &Engine, cutoff: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError> {
    let mut batch = engine.db.batch();
    let mut removed = 0;
    for item in engine.alerts.iter() {
        let (k, v) = item.into_inner()?;
        // The tag byte follows the length-prefixed account.
        let tag_at = 1 + usize::from(k.first().copied().unwrap_or_default());
        if k.get(tag_at) != Some(&RECORD) {
            continue;
        }
        let alert = decode(&v)?;
        if alert.period.end < cutoff {
            batch.remove(&engine.alerts, fired_key(&alert));
            batch.remove(&engine.alerts, k);
            removed += 1;
        }
    }
    if !batch.is_empty() {
        batch.commit()?;
    }
    Ok(removed)
}

fn decode(v: &[u8]) -> Result<Alert, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("alert: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::alert_records::{Alert, AlertKind};
    use crate::webhook_records::{DeliveredEvent, DeliveryState, Watch};
    use crate::{EmbeddedStore, SigningSecret, Store, StoreOptions, Subscription};
    use callmeter_model::UsagePeriod;
    use chrono::{DateTime, Utc};

    fn alert(threshold: u64, start: DateTime<Utc>) -> Alert {
        Alert {
            id: 0,
            account: "acme".into(),
            kind: AlertKind::ThresholdReached,
            fired_at: Utc::now(),
            period: UsagePeriod { start, end: start + chrono::Duration::days(30) },
            plan: "starter".into(),
            included_calls: 1000,
            billed_calls: 1000,
            percent_used: 100.0,
            threshold_percent: Some(threshold),
            projected_calls: None,
            projected_overage_at: None,
            day: None,
            day_calls: None,
            trailing_median_calls: None,
            top_finding: None,
        }
    }

    fn subscription(id: &str, events: Vec<AlertKind>, enabled: bool) -> Subscription {
        Subscription {
            id: id.into(),
            account: "acme".into(),
            url: "http://127.0.0.1:9/hook".into(),
            watch: Watch::Alerts { events },
            actions: vec![],
            enabled,
            disabled_reason: None,
            headers: Default::default(),
            secrets: vec![SigningSecret { secret: "whsec_AAAA".into(), expires_at: None }],
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    /// A firing whose sync fails has its rows in the engine: their delivery
    /// ids are taken, and the processor's next rows get others (a reuse
    /// wrote over the alert's row, or was taken for the other's). Run in a
    /// child process: failpoints are read once a process.
    #[cfg(feature = "failpoints")]
    #[test]
    fn a_failed_alert_sync_gives_no_delivery_id_twice() {
        const NAME: &str = "embedded::alerts::tests::a_failed_alert_sync_gives_no_delivery_id_twice";
        if !crate::failpoint::in_child(NAME, "alerts.sync=1:error") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(subscription("wh_alerts", AlertKind::ALL.to_vec(), true)).unwrap();
        let watch = (Watch::Folder { folder: "/in".into() }, vec![callmeter_model::Action::Create]);
        let files = Subscription::new(("acme", "wh_files"), "http://127.0.0.1:9/hook", watch, "whsec_AAAA", Utc::now());
        store.create_subscription(files).unwrap();
        let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        assert!(store.fire_alerts(vec![alert(50, start)]).is_err(), "the failpoint");
        let mut upload = super::super::test_event("c1".into(), Utc::now());
        upload.operation = callmeter_model::Operation::Write;
        upload.path = Some("/in/a".into());
        store.ingest(vec![upload]).wait_blocking().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.deliveries("acme", "wh_files").unwrap().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let alert_rows = store.deliveries("acme", "wh_alerts").unwrap();
        let file_rows = store.deliveries("acme", "wh_files").unwrap();
        assert_eq!((alert_rows.len(), file_rows.len()), (1, 1));
        assert_ne!(alert_rows[0].id, file_rows[0].id, "one delivery id a row");
        store.shutdown();
    }

    /// Each alert fires once, also after a reopen; its rows go to the alert
    /// subscriptions that want its kind (held for a disabled one), and a
    /// claim carries the alert itself.
    #[test]
    fn alerts_fire_once_with_a_row_per_subscription_that_wants_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(subscription("wh_all", AlertKind::ALL.to_vec(), true)).unwrap();
        store.create_subscription(subscription("wh_spikes", vec![AlertKind::Spike], true)).unwrap();
        store.create_subscription(subscription("wh_off", vec![AlertKind::ThresholdReached], false)).unwrap();
        let start: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let fired = store.fire_alerts(vec![alert(50, start), alert(80, start), alert(50, start)]).unwrap();
        assert_eq!(
            fired.iter().map(|a| (a.id, a.threshold_percent)).collect::<Vec<_>>(),
            [(0, Some(50)), (1, Some(80))]
        );
        assert!(store.fire_alerts(vec![alert(50, start), alert(80, start)]).unwrap().is_empty(), "fired once");
        assert_eq!(store.deliveries("acme", "wh_all").unwrap().len(), 2);
        assert!(store.deliveries("acme", "wh_spikes").unwrap().is_empty(), "not the kind it wants");
        let held = store.deliveries("acme", "wh_off").unwrap();
        assert!(held.len() == 2 && held.iter().all(|d| d.state == DeliveryState::Held));
        let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
        assert_eq!(claimed.len(), 2);
        let DeliveredEvent::Alert(a) = &claimed[0].event else { panic!("an alert") };
        assert_eq!((a.id, a.threshold_percent), (0, Some(50)));
        assert_eq!(claimed[0].delivery.webhook_id(), "msg_wh_all_alert_0");
        store.shutdown();

        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(store.fire_alerts(vec![alert(80, start)]).unwrap().is_empty(), "fired once across a reopen");
        let next_period = start + chrono::Duration::days(30);
        let fired = store.fire_alerts(vec![alert(80, next_period)]).unwrap();
        assert_eq!(fired[0].id, 2, "ids go on from where they were");
        let page = store.alerts("acme", None, 2).unwrap();
        assert_eq!(page.alerts.iter().map(|a| a.id).collect::<Vec<_>>(), [2, 1], "newest first");
        let rest = store.alerts("acme", page.next_before, 10).unwrap();
        assert_eq!((rest.alerts.len(), rest.next_before), (1, None));
        assert!(store.alerts("globex", None, 10).unwrap().alerts.is_empty());

        // The sweep takes the alerts of periods over before the cutoff, marks and all.
        let removed = super::expire(&store.engine, next_period + chrono::Duration::days(1)).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(store.alerts("acme", None, 10).unwrap().alerts.len(), 1);
        store.shutdown();
    }

    /// The evaluator's signal: every account at open, then the accounts of
    /// durable calls, adjustments and changed records, each once.
    #[test]
    fn accounts_with_new_usage_are_those_of_durable_calls_adjustments_and_records() {
        let dir = tempfile::tempdir().unwrap();
        let wait = std::time::Duration::from_millis(200);
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(store.accounts_with_new_usage(wait).is_empty());
        let call = super::super::test_event("c1".into(), Utc::now());
        store.ingest(vec![call.clone()]).wait_blocking().unwrap();
        assert_eq!(store.accounts_with_new_usage(wait), ["acme"]);
        store.ingest(vec![call]).wait_blocking().unwrap();
        assert!(store.accounts_with_new_usage(wait).is_empty(), "a duplicate changes nothing");
        let adjustment = crate::Adjustment {
            account: "globex".into(),
            period_start: Utc::now(),
            calls: 5,
            reason: "r".into(),
            created_at: Utc::now(),
        };
        store.add_adjustment(adjustment).unwrap();
        let thresholds = crate::AccountChange { alert_thresholds: Some(vec![90]), ..Default::default() };
        store.upsert_account("initech", thresholds).unwrap();
        assert_eq!(store.accounts_with_new_usage(wait), ["globex", "initech"]);
        assert_eq!(store.account("initech").unwrap().alert_thresholds, Some(vec![90]));
        let back = crate::AccountChange { alert_thresholds: Some(vec![]), ..Default::default() };
        assert_eq!(store.upsert_account("initech", back).unwrap().alert_thresholds, None, "[] goes back to the plan's");
        store.shutdown();

        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.accounts_with_new_usage(wait), ["acme", "initech"], "every account at open");
        store.shutdown();
    }
}
