//! CloudEvents as an SDK no one here wrote sends them (the official Rust SDK,
//! `cloudevents-sdk`, and its HTTP binding): structured, batch and binary
//! mode, each accepted and counted once, and an envelope that disagrees with
//! its data refused per event.

use crate::harness::{self, statuses, ADMIN};
use cloudevents::binding::http::{Builder, Serializer};
use cloudevents::message::{BinaryDeserializer, Result as MessageResult, StructuredDeserializer};
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

/// An HTTP request as the SDK's HTTP binding writes it: headers and a body.
#[derive(Clone, Default)]
struct SdkRequest {
    headers: Vec<(String, HeaderValue)>,
    body: Vec<u8>,
}

impl Builder<SdkRequest> for SdkRequest {
    fn header(&mut self, key: &str, value: HeaderValue) {
        self.headers.push((key.to_owned(), value));
    }
    fn body(&mut self, bytes: Vec<u8>) -> MessageResult<SdkRequest> {
        self.body = bytes;
        Ok(self.clone())
    }
    fn finish(&mut self) -> MessageResult<SdkRequest> {
        Ok(self.clone())
    }
}

fn structured(event: Event) -> SdkRequest {
    event.deserialize_structured(Serializer::new(SdkRequest::default())).expect("structured mode")
}

fn binary(event: Event) -> SdkRequest {
    event.deserialize_binary(Serializer::new(SdkRequest::default())).expect("binary mode")
}

/// A batch, as the SDK's reqwest binding sends one.
fn batch(events: &[Event]) -> SdkRequest {
    let body = serde_json::to_vec(events).expect("batch");
    SdkRequest {
        headers: vec![("content-type".into(), HeaderValue::from_static("application/cloudevents-batch+json"))],
        body,
    }
}

fn post(server: &harness::Server, request: &SdkRequest) -> (u16, Value) {
    let mut builder = server.http.post(server.url("/v1/events")).bearer_auth(ADMIN).body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.clone());
    }
    server.send(builder)
}

/// A call event as SDK users send one: the call's id and time in the
/// envelope, where the specification has them; the call in `data`.
fn call(id: &str, seconds_ago: i64, data: Value) -> Event {
    EventBuilderV10::new()
        .id(id)
        .ty("com.example.api.call")
        .source("https://gateway.example/eu-1")
        .subject("/in/report.csv")
        .time(chrono::Utc::now() - chrono::Duration::seconds(seconds_ago))
        .data("application/json", data)
        .build()
        .expect("a valid CloudEvent")
}

fn acme(interface: &str) -> Value {
    json!({"account": "acme", "interface": interface, "method": "GET", "status": 200})
}

#[test]
fn sdk_events_are_accepted_in_every_mode_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let requests = [
        ("structured", structured(call("sdk-structured-1", 60, acme("rest")))),
        (
            "batch",
            batch(&[
                call("sdk-batch-1", 50, acme("sftp")),
                call("sdk-batch-2", 40, acme("webdav")),
                call("sdk-batch-3", 30, acme("ftp")),
            ]),
        ),
        ("binary", binary(call("sdk-binary-1", 20, acme("sdk")))),
    ];
    assert!(requests[0].1.headers.iter().any(|(n, v)| n == "content-type" && v == "application/cloudevents+json"));
    assert!(requests[2].1.headers.iter().any(|(n, _)| n == "ce-specversion"), "binary mode puts attributes in headers");
    for (mode, request) in &requests {
        let (status, answer) = post(&server, request);
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["rejected"], 0, "{mode}: {answer}");
        assert!(statuses(&answer).iter().all(|s| s == "accepted"), "{mode}: {answer}");
    }
    // Sent again (an SDK's retry): every one a duplicate.
    for (mode, request) in &requests {
        let (status, answer) = post(&server, request);
        assert_eq!(status, 200, "{mode}: {answer}");
        assert!(statuses(&answer).iter().all(|s| s == "duplicate"), "{mode}: {answer}");
    }
    let mut ids = server.stored_ids("acme");
    ids.sort();
    assert_eq!(ids, ["sdk-batch-1", "sdk-batch-2", "sdk-batch-3", "sdk-binary-1", "sdk-structured-1"]);
    assert_eq!(server.usage("acme", "current")["calls"], 5);
    // The envelope is kept with the call: its time, its source and its subject.
    let (_, page) = server.get(ADMIN, "/v1/accounts/acme/calls?interface=sdk");
    let stored = &page["calls"][0];
    assert_eq!(stored["integration"], "https://gateway.example/eu-1");
    assert_eq!(stored["path"], "/in/report.csv");
    let sent = chrono::Utc::now() - chrono::Duration::seconds(20);
    let time = chrono::DateTime::parse_from_rfc3339(stored["time"].as_str().unwrap()).unwrap();
    assert!((time.timestamp() - sent.timestamp()).abs() <= 5, "the envelope's time is the call's: {stored}");
    server.stop();
}

#[test]
fn envelope_and_data_that_disagree_are_refused_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let their_time = harness::ago(3600);
    let (status, answer) = post(
        &server,
        &batch(&[
            call("envelope-id", 10, json!({"id": "data-id", "account": "acme", "interface": "rest"})),
            call("c-2", 10, json!({"time": their_time, "account": "acme", "interface": "rest"})),
            call("c-3", 10, json!({"path": "/elsewhere", "account": "acme", "interface": "rest"})),
            call("c-4", 10, acme("rest")),
        ]),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(statuses(&answer), ["rejected", "rejected", "rejected", "accepted"], "{answer}");
    let reasons: Vec<(&str, &str)> = answer["results"].as_array().unwrap()[..3]
        .iter()
        .map(|r| (r["reason"].as_str().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [("envelope_conflict", "id"), ("envelope_conflict", "time"), ("envelope_conflict", "path")]);
    let message = answer["results"][0]["error"].as_str().unwrap();
    assert!(message.contains("\"envelope-id\"") && message.contains("\"data-id\""), "both values named: {message}");
    // The same in binary mode, where the envelope is in headers.
    let (status, answer) = post(
        &server,
        &binary(call("bin-envelope", 10, json!({"id": "bin-data", "account": "acme", "interface": "rest"}))),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["results"][0]["reason"].as_str(), answer["results"][0]["field"].as_str()),
        (Some("envelope_conflict"), Some("id"))
    );
    assert_eq!(server.stored_ids("acme"), ["c-4"], "nothing of a refused event is stored");
    server.stop();
}

#[test]
fn binary_mode_headers_without_a_version_are_refused_before_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let mut request = binary(call("half", 10, acme("rest")));
    request.headers.retain(|(name, _)| name != "ce-specversion");
    let (status, answer) = post(&server, &request);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_request");
    assert!(answer["error"]["message"].as_str().unwrap().contains("needs ce-specversion"), "{answer}");
    server.stop();
}
