//! The JSON body of a delivery: the same bytes on every attempt of one
//! event (it is built from the stored change alone), so that a receiver's
//! signature check and dedup by `webhook-id` agree.
//!
//! ```json
//! {"type":"file.create","timestamp":"2026-12-02T10:00:01Z",
//!  "data":{"account":"acme","action":"create","path":"/in/a.csv","call_id":"r-1",
//!          "time":"2026-12-02T10:00:01Z","interface":"sftp","user":"alice"}}
//! ```
//!
//! `destination` is there for a move or copy; `user` and `api_key` when the call had them.

use callmeter_model::Action;
use callmeter_store::Change;
use chrono::SecondsFormat;
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
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
    time: String,
    interface: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
}

/// The body of a delivery of `change` as `action`.
pub fn body(change: &Change, action: Action) -> Vec<u8> {
    let time = change.time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let body = Body {
        kind: action.event_type(),
        timestamp: time.clone(),
        data: Data {
            account: &change.account,
            action,
            path: &change.path,
            destination: change.destination.as_deref(),
            call_id: &change.call_id,
            time,
            interface: change.interface.as_str(),
            user: change.user.as_deref(),
            api_key: change.api_key.as_deref(),
        },
    };
    serde_json::to_vec(&body).expect("a body serializes")
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
        let v: serde_json::Value = serde_json::from_slice(&body(&change, Action::Move)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "file.move", "timestamp": "2026-12-02T10:00:01Z", "data": {
                "account": "acme", "action": "move", "path": "/in/a.csv", "destination": "/done/a.csv",
                "call_id": "r-1", "time": "2026-12-02T10:00:01Z", "interface": "sftp", "user": "alice"}})
        );
        assert_eq!(body(&change, Action::Move), body(&change, Action::Move), "the same bytes every time");
    }
}
