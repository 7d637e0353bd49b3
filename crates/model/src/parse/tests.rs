use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn base() -> Value {
    json!({"id": "e1", "account": "acme", "time": "2026-03-01T11:00:00Z", "interface": "rest"})
}

fn with(k: &str, v: Value) -> Vec<u8> {
    let mut b = base();
    b[k] = v;
    serde_json::to_vec(&b).unwrap()
}

/// The base event with a field whose JSON text is given as is.
fn with_raw(k: &str, text: &str) -> Vec<u8> {
    let mut b = serde_json::to_vec(&base()).unwrap();
    b.pop();
    b.extend_from_slice(format!(",\"{k}\":{text}}}").as_bytes());
    b
}

fn without(k: &str) -> Vec<u8> {
    let mut b = base();
    b.as_object_mut().unwrap().remove(k);
    serde_json::to_vec(&b).unwrap()
}

fn parse(b: &[u8]) -> Result<CallEvent, EventError> {
    parse_event(b, now(), &EventLimits::default())
}

fn full() -> CallEvent {
    CallEvent {
        id: "sample-00001".into(),
        account: "acme.eu_1-x".into(),
        time: DateTime::parse_from_rfc3339("2026-02-27T07:59:58.942123Z").unwrap().with_timezone(&Utc),
        interface: Interface::Webdav,
        operation: Operation::Move,
        method: Some("MOVE".into()),
        path: Some("/inbox/a \"quoted\" ü.txt".into()),
        destination: Some("/archive/a.txt".into()),
        status: Some(1),
        api_key: Some("key_7f3a".into()),
        user: Some("etl".into()),
        client_ip: Some("2001:db8::42".into()),
        user_agent: Some("Microsoft-WebDAV-MiniRedir/10.0".into()),
        integration: Some("nightly".into()),
        cursor: Some("c2".into()),
        result_count: Some(40),
        bytes: Some(MAX_COUNT),
        duration_ms: Some(12.5),
    }
}

#[test]
fn minimal_event_parses_and_derives_its_operation() {
    let e = parse(&with("method", json!("PROPFIND"))).unwrap();
    assert_eq!((e.id.as_str(), e.account.as_str(), e.interface), ("e1", "acme", Interface::Rest));
    assert_eq!(e.operation, Operation::List);
    let e = parse(&serde_json::to_vec(&base()).unwrap()).unwrap();
    assert_eq!(e.operation, Operation::Other);
    assert_eq!(e.path, None);
}

#[test]
fn full_event_round_trips() {
    let e = full();
    let bytes = serde_json::to_vec(&e).unwrap();
    assert_eq!(parse(&bytes).unwrap(), e);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(event_from_value(&v, now(), &EventLimits::default()).unwrap(), e);
}

#[test]
fn canonical_json_shape() {
    let mut e = full();
    e.time = DateTime::parse_from_rfc3339("2026-02-27T07:59:58.940+01:00").unwrap().with_timezone(&Utc);
    e.destination = None;
    e.cursor = None;
    let s = serde_json::to_string(&e).unwrap();
    assert!(s.starts_with(
            r#"{"id":"sample-00001","account":"acme.eu_1-x","time":"2026-02-27T06:59:58.940Z","interface":"webdav","operation":"move","method":"MOVE","path":"#
        ));
    assert!(!s.contains("destination") && !s.contains("cursor"));
    assert!(s.ends_with(r#""result_count":40,"bytes":9007199254740991,"duration_ms":12.5}"#), "{s}");
    e.time = DateTime::parse_from_rfc3339("2026-02-27T07:59:58Z").unwrap().with_timezone(&Utc);
    assert!(serde_json::to_string(&e).unwrap().contains(r#""time":"2026-02-27T07:59:58Z""#));
}

#[test]
fn times_accept_offsets_and_fractions() {
    let e = parse(&with("time", json!("2026-03-01T17:00:00.123456789+05:45"))).unwrap();
    assert_eq!(e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), "2026-03-01T11:15:00.123456789Z");
    let e = parse(&with("time", json!("2026-03-01T11:00:00.5-00:00"))).unwrap();
    assert_eq!(e.time.timestamp_subsec_millis(), 500);
}

#[test]
fn unknown_fields_are_ignored() {
    let mut b = base();
    b["extra"] = json!({"nested": [1, 2, {"deep": null}]});
    b["specversion"] = json!("1.0");
    b["x"] = Value::Null;
    let e = parse(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(e, parse(&serde_json::to_vec(&base()).unwrap()).unwrap());
}

#[test]
fn null_means_absent() {
    for k in ["path", "status", "bytes", "duration_ms", "operation", "cursor"] {
        let e = parse(&with(k, Value::Null)).unwrap();
        assert_eq!(e, parse(&serde_json::to_vec(&base()).unwrap()).unwrap(), "{k}");
    }
    let e = parse(&with("id", Value::Null)).unwrap_err();
    assert_eq!((e.field, e.reason), (Some("id"), RejectReason::MissingField));
}

#[test]
fn fast_path_borrows_unescaped_strings() {
    let w: Wire<'_> = serde_json::from_slice(br#"{"time":"2026-01-01T00:00:00Z","path":"a\"b"}"#).unwrap();
    assert!(matches!(w.time, Some(Cow::Borrowed(_))));
    assert!(matches!(w.path, Some(Cow::Owned(ref s)) if s == "a\"b"));
}

#[test]
fn every_reject_reason_names_its_field() {
    use RejectReason::*;
    let far = "x".repeat(4097);
    let cases: Vec<(Vec<u8>, Option<&str>, RejectReason)> = vec![
        (b"{\"id\":".to_vec(), None, InvalidJson),
        (b"".to_vec(), None, InvalidJson),
        (b"{\"id\":\"a\"} x".to_vec(), None, InvalidJson),
        (b"[1,2]".to_vec(), None, WrongType),
        (b"\"event\"".to_vec(), None, WrongType),
        (br#"["e1","acme","2026-03-01T11:00:00Z","rest"]"#.to_vec(), None, WrongType),
        (without("id"), Some("id"), MissingField),
        (without("account"), Some("account"), MissingField),
        (without("time"), Some("time"), MissingField),
        (without("interface"), Some("interface"), MissingField),
        (b"{}".to_vec(), Some("id"), MissingField),
        (with("id", json!(7)), Some("id"), WrongType),
        (with("account", json!(["acme"])), Some("account"), WrongType),
        (with("time", json!(1767225600)), Some("time"), WrongType),
        (with("interface", json!(true)), Some("interface"), WrongType),
        (with("status", json!("200")), Some("status"), WrongType),
        (with("status", json!(200.0)), Some("status"), WrongType),
        (with("bytes", json!(1.5)), Some("bytes"), WrongType),
        (with("result_count", json!({})), Some("result_count"), WrongType),
        (with("duration_ms", json!("3ms")), Some("duration_ms"), WrongType),
        (with("path", json!(5)), Some("path"), WrongType),
        (with("user", json!(false)), Some("user"), WrongType),
        (with("id", json!("")), Some("id"), InvalidValue),
        (with("account", json!("Acme")), Some("account"), InvalidValue),
        (with("account", json!("-acme")), Some("account"), InvalidValue),
        (with("account", json!("a".repeat(65))), Some("account"), InvalidValue),
        (with("time", json!("yesterday")), Some("time"), InvalidValue),
        (with("time", json!("2026-03-01 11:00")), Some("time"), InvalidValue),
        (with("interface", json!("telnet")), Some("interface"), InvalidValue),
        (with("interface", json!("REST")), Some("interface"), InvalidValue),
        (with("operation", json!("chmod")), Some("operation"), InvalidValue),
        (with("bytes", json!(-1)), Some("bytes"), InvalidValue),
        (with("result_count", json!(-3)), Some("result_count"), InvalidValue),
        (with("status", json!(u64::MAX)), Some("status"), InvalidValue),
        (with("status", json!(-1)), Some("status"), InvalidValue),
        (with("status", json!(1000)), Some("status"), InvalidValue),
        (with("status", json!(99_999_999_999i64)), Some("status"), InvalidValue),
        (with("duration_ms", json!(-5)), Some("duration_ms"), InvalidValue),
        (with("duration_ms", json!(-0.25)), Some("duration_ms"), InvalidValue),
        (with_raw("duration_ms", "1e999"), Some("duration_ms"), InvalidValue),
        (with_raw("duration_ms", "-1e999"), Some("duration_ms"), InvalidValue),
        (with("bytes", json!(MAX_COUNT + 1)), Some("bytes"), InvalidValue),
        (with("result_count", json!(u64::MAX)), Some("result_count"), InvalidValue),
        (with("id", json!(" ")), Some("id"), InvalidValue),
        (with("id", json!("\0")), Some("id"), InvalidValue),
        (with("id", json!("\n")), Some("id"), InvalidValue),
        (with("path", json!("/a\0b")), Some("path"), InvalidValue),
        (with("destination", json!("/b\r\n")), Some("destination"), InvalidValue),
        (with("user", json!("eve\n")), Some("user"), InvalidValue),
        (with("user_agent", json!("x\u{1b}[2J")), Some("user_agent"), InvalidValue),
        (with("api_key", json!("k\t1")), Some("api_key"), InvalidValue),
        (with("integration", json!("\u{85}")), Some("integration"), InvalidValue),
        (with("cursor", json!("c\u{7f}")), Some("cursor"), InvalidValue),
        (with("method", json!("GET\0")), Some("method"), InvalidValue),
        (with("client_ip", json!("1.2.3.4\n")), Some("client_ip"), InvalidValue),
        (with("id", json!("i".repeat(129))), Some("id"), Oversize),
        (with("path", json!(far)), Some("path"), Oversize),
        (with("user_agent", json!(far)), Some("user_agent"), Oversize),
        (with("time", json!("2026-03-01T12:05:01Z")), Some("time"), InFuture),
        (with("time", json!("9999-12-31T23:59:59Z")), Some("time"), InFuture),
    ];
    for (input, field, reason) in cases {
        let text = String::from_utf8_lossy(&input).into_owned();
        let e = parse(&input).expect_err(&text);
        assert_eq!((e.field, e.reason), (field, reason), "{text}: {e}");
        assert!(!e.detail.is_empty());
        // The slow path alone agrees with the fast path.
        if let Ok(v) = serde_json::from_slice::<Value>(&input) {
            assert_eq!(event_from_value(&v, now(), &EventLimits::default()), Err(e), "{text}");
        }
    }
}

#[test]
fn boundaries_are_accepted() {
    assert!(parse(&with("time", json!("2026-03-01T12:05:00Z"))).is_ok(), "exactly 5 minutes ahead");
    assert!(parse(&with("time", json!("1999-01-01T00:00:00Z"))).is_ok(), "old is the store's business");
    assert!(parse(&with("id", json!("i".repeat(128)))).is_ok());
    assert!(parse(&with("account", json!("a".repeat(64)))).is_ok());
    assert!(parse(&with("path", json!("p".repeat(4096)))).is_ok());
    assert!(parse(&with("status", json!(0))).is_ok(), "sftp: ok");
    assert!(parse(&with("status", json!(999))).is_ok());
    assert!(parse(&with("bytes", json!(MAX_COUNT))).is_ok());
    assert!(parse(&with("duration_ms", json!(0))).is_ok());
    assert!(parse(&with("duration_ms", json!(3))).is_ok());
    assert!(parse(&with("duration_ms", json!(1e308))).is_ok());
    let tight = EventLimits { max_field_bytes: 3, max_future: Duration::zero() };
    let e = parse_event(&with("method", json!("POST")), now(), &tight).unwrap_err();
    assert_eq!((e.field, e.reason), (Some("method"), RejectReason::Oversize));
    let e = parse_event(&with("time", json!("2026-03-01T12:00:00.000000001Z")), now(), &tight).unwrap_err();
    assert_eq!(e.reason, RejectReason::InFuture);
}

#[test]
fn out_of_range_numbers_name_their_field_on_both_readers() {
    let flat = String::from_utf8(with_raw("duration_ms", "1e999")).unwrap();
    // An escape in another field sends the same event through serde.
    let serde = flat.replace("\"e1\"", "\"e\\u0031\"");
    assert_ne!(flat, serde);
    for input in [flat, serde] {
        let e = parse(input.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), r#"field "duration_ms": not a finite number: inf"#, "{input}");
    }
    let e = parse(&with_raw("duration_ms", "-0")).unwrap();
    assert!(e.duration_ms.unwrap().is_sign_positive(), "-0 is stored as 0");
    let e = parse(&with_raw("duration_ms", "-0.0")).unwrap();
    assert!(serde_json::to_string(&e).unwrap().contains(r#""duration_ms":0.0"#));
}

#[test]
fn messages_read_well() {
    let e = parse(&with("time", json!("yesterday"))).unwrap_err();
    assert_eq!(e.to_string(), r#"field "time": not RFC 3339: "yesterday""#);
    let e = parse(&without("account")).unwrap_err();
    assert_eq!(e.to_string(), r#"field "account": missing"#);
    let e = parse(&with("status", json!(1.5))).unwrap_err();
    assert_eq!(e.to_string(), r#"field "status": expected an integer, got a fractional number"#);
    // Whole numbers that JSON reads as floating-point: the message says what is wrong with each.
    for (raw, got) in [
        ("-0", "-0 (write 0)"),
        ("1e3", "1000.0 written with a decimal point or an exponent (write 1000)"),
        ("12.0", "12.0 written with a decimal point or an exponent (write 12)"),
        ("18446744073709551616", "an integer past 64 bits (1.8446744073709552e+19)"),
    ] {
        let e = parse(&with_raw("bytes", raw)).unwrap_err();
        assert_eq!(e.to_string(), format!(r#"field "bytes": expected an integer, got {got}"#), "{raw}");
    }
    let e = parse(&with("time", json!("2026-03-01T13:00:00Z"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"field "time": 2026-03-01T13:00:00Z is 3600 s ahead of the server clock (at most 300 s allowed)"#
    );
    let e = parse(b"[]").unwrap_err();
    assert_eq!(e.to_string(), "an event must be a JSON object, not an array");
    let e = parse(&with("account", json!("A".repeat(1000)))).unwrap_err();
    assert!(e.detail.len() < 200, "bad values are cut short: {}", e.detail);
    assert_eq!(RejectReason::OlderThanRetention.as_str(), "older_than_retention");
    assert_eq!(serde_json::to_string(&RejectReason::InFuture).unwrap(), "\"in_future\"");
}

#[test]
fn every_reject_reason_is_listed_once() {
    // The match has no wildcard: a new reason does not compile until it is placed here, and then in ALL.
    let position = |r: RejectReason| match r {
        RejectReason::InvalidJson => 0,
        RejectReason::MissingField => 1,
        RejectReason::WrongType => 2,
        RejectReason::InvalidValue => 3,
        RejectReason::Oversize => 4,
        RejectReason::InFuture => 5,
        RejectReason::UnknownAccount => 6,
        RejectReason::OlderThanRetention => 7,
        RejectReason::EnvelopeConflict => 8,
    };
    for (i, r) in RejectReason::ALL.into_iter().enumerate() {
        assert_eq!(position(r), i, "{r}");
        assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
    }
}

#[test]
fn duplicate_keys_take_the_last_value() {
    let e = parse(br#"{"id":"a","id":"b","account":"acme","time":"2026-03-01T11:00:00Z","interface":"rest"}"#).unwrap();
    assert_eq!(e.id, "b");
}

#[test]
fn account_names() {
    for ok in ["a", "0", "acme", "acme.eu", "a_b-c.d", "9lives"] {
        assert!(is_valid_account(ok), "{ok}");
    }
    for bad in ["", "Acme", ".a", "_a", "-a", "a b", "a/b", "ä", "a\n"] {
        assert!(!is_valid_account(bad), "{bad:?}");
    }
    assert!(is_valid_account(&"a".repeat(64)));
    assert!(!is_valid_account(&"a".repeat(65)));
}

/// A tiny deterministic generator: no `rand` dependency for a test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_and_truncated_inputs_never_panic() {
    let seed = serde_json::to_vec(&full()).unwrap();
    let alphabet = b"{}[]\":,.-+eE0123456789abcnrstuz\\ \x00\xff\xc3";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for round in 0..600 {
        let mut input = seed.clone();
        match round % 4 {
            0 => input.truncate(rng.below(input.len() + 1)),
            _ => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(input.len() + 1);
                    let c = alphabet[rng.below(alphabet.len())];
                    match rng.below(3) {
                        0 if at < input.len() => input[at] = c,
                        1 if at < input.len() => {
                            input.remove(at);
                        }
                        _ => input.insert(at, c),
                    }
                }
            }
        }
        match parse(&input) {
            Ok(e) => {
                ok += 1;
                assert!(is_valid_account(&e.account) && !e.id.is_empty() && e.id.len() <= MAX_ID_BYTES);
                assert!(e.time <= now() + Duration::minutes(5));
            }
            Err(e) => {
                err += 1;
                assert!(!e.to_string().is_empty());
            }
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&input) {
            let _ = event_from_value(&v, now(), &EventLimits::default());
        }
    }
    assert!(ok > 0 && err > 0, "the mutations reach both outcomes ({ok} ok, {err} rejected)");
}

#[test]
fn deep_nesting_does_not_crash() {
    let head = r#"{"id":"a","account":"acme","time":"2026-03-01T11:00:00Z","interface":"rest","x":"#;
    // Balanced: serde skips an unknown field without recursing, so the event is fine.
    let s = format!("{head}{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse(s.as_bytes()).unwrap().id, "a");
    // Unbalanced: the slow path's recursion limit answers, not the stack.
    let s = format!("{head}{}", "[".repeat(100_000));
    assert_eq!(parse(s.as_bytes()).unwrap_err().reason, RejectReason::InvalidJson);
    let s = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse(s.as_bytes()).unwrap_err().reason, RejectReason::InvalidJson);
}
