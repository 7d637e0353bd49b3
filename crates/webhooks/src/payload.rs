//! The JSON body of a delivery: the same bytes on every attempt of one
//! event (it is built from the stored change or alert alone), so that a
//! receiver's signature check and dedup by `webhook-id` agree.
//!
//! A change:
//!
//! ```json
//! {"type":"file.create","timestamp":"2026-12-02T10:00:01Z",
//!  "data":{"account":"acme","action":"create","path":"/in/a.csv","call_id":"r-1",
//!          "time":"2026-12-02T10:00:01Z","interface":"sftp","user":"alice"}}
//! ```
//!
//! `destination` is there for a move or copy; `user` and `api_key` when the call had them.
//!
//! A usage alert: its type, when it fired, and the alert as the store keeps
//! it (`callmeter_store::Alert`, the same JSON as `GET …/alerts` lists):
//!
//! ```json
//! {"type":"usage.threshold_reached","timestamp":"2026-12-02T10:00:03Z",
//!  "data":{"id":4,"account":"acme","type":"usage.threshold_reached","threshold_percent":80,…}}
//! ```

use callmeter_model::Action;
use callmeter_store::{Alert, Change, DeliveredEvent};
use chrono::SecondsFormat;
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: &'a str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    account: &'a str,
    action: Action,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    call_id: &'a str,
    time: &'a str,
    interface: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
}

#[derive(Serialize)]
struct AlertBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: &'a str,
    data: &'a Alert,
}

/// The body of a delivery of `event`.
pub fn body(event: &DeliveredEvent) -> Vec<u8> {
    match event {
        DeliveredEvent::Change(change, action) => change_body(change, *action),
        DeliveredEvent::Alert(alert) => alert_body(alert),
    }
}

fn alert_body(alert: &Alert) -> Vec<u8> {
    let body = AlertBody {
        kind: alert.kind.as_str(),
        timestamp: &alert.fired_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        data: alert,
    };
    to_json(&body)
}

/// The body of a delivery of `change` as `action`.
fn change_body(change: &Change, action: Action) -> Vec<u8> {
    let time = change.time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let body = Body {
        kind: action.event_type(),
        timestamp: &time,
        data: Data {
            account: &change.account,
            action,
            path: &change.path,
            destination: change.destination.as_deref(),
            call_id: &change.call_id,
            time: &time,
            interface: change.interface.as_str(),
            user: change.user.as_deref(),
            api_key: change.api_key.as_deref(),
        },
    };
    to_json(&body)
}

/// Bytes a body is given at first: most change bodies fit, so the body is
/// not grown (copied) field by field.
const BODY_BYTES: usize = 512;

fn to_json(body: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_BYTES);
    serde_json::to_writer(&mut out, body).expect("a body serializes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{Interface, Operation};

    #[test]
    fn a_move_carries_its_destination_and_the_fields_of_design_section_7() {
        let time = "2026-12-02T10:00:01Z".parse().unwrap();
        let change = Change {
            seq: 3,
            account: "acme".into(),
            call_id: "r-1".into(),
            time,
            arrival: time,
            operation: Operation::Move,
            interface: Interface::Sftp,
            path: "/in/a.csv".into(),
            destination: Some("/done/a.csv".into()),
            user: Some("alice".into()),
            api_key: None,
        };
        let event = DeliveredEvent::Change(change, Action::Move);
        let v: serde_json::Value = serde_json::from_slice(&body(&event)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "file.move", "timestamp": "2026-12-02T10:00:01Z", "data": {
                "account": "acme", "action": "move", "path": "/in/a.csv", "destination": "/done/a.csv",
                "call_id": "r-1", "time": "2026-12-02T10:00:01Z", "interface": "sftp", "user": "alice"}})
        );
        assert_eq!(body(&event), body(&event), "the same bytes every time");
    }

    #[test]
    fn an_alert_is_its_type_its_time_and_itself() {
        let at = "2026-12-02T10:00:03Z".parse().unwrap();
        let alert = Alert {
            id: 4,
            account: "acme".into(),
            kind: callmeter_store::AlertKind::ThresholdReached,
            fired_at: at,
            period: callmeter_model::UsagePeriod { start: at, end: at + chrono::Duration::days(30) },
            plan: "starter".into(),
            included_calls: 1000,
            billed_calls: 812,
            percent_used: 81.2,
            threshold_percent: Some(80),
            projected_calls: None,
            projected_overage_at: None,
            day: None,
            day_calls: None,
            trailing_median_calls: None,
            top_finding: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&DeliveredEvent::Alert(alert.clone()))).unwrap();
        assert_eq!(v["type"], "usage.threshold_reached");
        assert_eq!(v["timestamp"], "2026-12-02T10:00:03Z");
        assert_eq!(v["data"], serde_json::to_value(&alert).unwrap());
    }
}
