//! The common case of an event, read by hand: one flat JSON object whose
//! strings have no escapes, as every client library writes them.
//!
//! It gives exactly the [`Wire`] serde would, several times faster (one UTF-8
//! check for the whole object, no visitor calls). Anything else (escapes,
//! nesting, a number of the wrong kind, a repeated key, a value of the wrong
//! type) gives `None`, and the event takes the serde path, which also words
//! the error.

use super::Wire;
use crate::event::{Interface, Operation};
use std::borrow::Cow;

/// Reads `json` when it is a flat object in the common form.
pub(super) fn read(json: &[u8]) -> Option<Wire<'_>> {
    let text = std::str::from_utf8(json).ok()?;
    let mut r = Reader { text, at: 0 };
    let mut w = Wire::default();
    let mut seen = 0u32;
    r.skip_space();
    r.expect(b'{')?;
    r.skip_space();
    if r.peek() == Some(b'}') {
        r.at += 1;
    } else {
        loop {
            r.skip_space();
            let key = r.string()?;
            r.skip_space();
            r.expect(b':')?;
            r.skip_space();
            match field(key) {
                Some(n) => {
                    // serde rejects a repeated field: let it say so.
                    if seen & (1 << n) != 0 {
                        return None;
                    }
                    seen |= 1 << n;
                    r.value(&mut w, n)?;
                }
                None => r.skip_scalar()?,
            }
            r.skip_space();
            match r.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    r.skip_space();
    (r.at == text.len()).then_some(w)
}

/// The index of a field, in the order of [`Wire`]'s fields; a `match`
/// compiles to a length switch, far cheaper than comparing with each name.
fn field(key: &str) -> Option<usize> {
    Some(match key {
        "id" => 0,
        "account" => 1,
        "time" => 2,
        "interface" => 3,
        "operation" => 4,
        "method" => 5,
        "path" => 6,
        "destination" => 7,
        "status" => 8,
        "api_key" => 9,
        "user" => 10,
        "client_ip" => 11,
        "user_agent" => 12,
        "integration" => 13,
        "cursor" => 14,
        "result_count" => 15,
        "bytes" => 16,
        "duration_ms" => 17,
        _ => return None,
    })
}

/// Where a plain string ends: the first `"`, `\\` or control character.
///
/// Eight bytes at a time: for each test, `(v - 0x01…) & !v & 0x80…` flags
/// the bytes that are zero (or, with 0x20, below it). A borrow can only
/// flag bytes above a true hit, so the lowest flag is exact.
fn plain_len(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits = (zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| i + p)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string with no escapes, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let len = plain_len(&self.bytes()[start..])?;
        if self.bytes()[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // The quote is ASCII, so both ends are character boundaries.
        self.text.get(start..start + len)
    }

    /// `null`, consumed; false when the value is something else.
    fn null(&mut self) -> bool {
        let is_null = self.bytes()[self.at..].starts_with(b"null");
        if is_null {
            self.at += 4;
        }
        is_null
    }

    fn optional_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.string()?)))
    }

    /// A JSON number's text, checked against the grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`.
    /// The flag says whether it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Option<(&'a str, bool)> {
        let b = self.bytes();
        let start = self.at;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && b[int_start] == b'0') {
            return None;
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
            integer = false;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
            integer = false;
        }
        self.at = i;
        Some((&self.text[start..i], integer))
    }

    /// An integer field: serde reads only integers into it, and `-0` is not
    /// one to serde_json (it reads it as the float −0.0).
    fn integer<T: std::str::FromStr>(&mut self) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        let (text, integer) = self.number()?;
        if !integer || text == "-0" {
            return None;
        }
        Some(Some(text.parse().ok()?))
    }

    /// A float field, converted as the serde path converts it.
    fn float(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let (text, _) = self.number()?;
        Some(Some(super::number_as_f64(text)?))
    }

    fn name<T: std::str::FromStr>(&mut self) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.string()?.parse().ok()?))
    }

    /// Reads the value of field `n` (see [`field`]) into `w`.
    fn value(&mut self, w: &mut Wire<'a>, n: usize) -> Option<()> {
        match n {
            0 => w.id = self.optional_string()?,
            1 => w.account = self.optional_string()?,
            2 => w.time = self.optional_string()?,
            3 => w.interface = self.name::<Interface>()?,
            4 => w.operation = self.name::<Operation>()?,
            5 => w.method = self.optional_string()?,
            6 => w.path = self.optional_string()?,
            7 => w.destination = self.optional_string()?,
            8 => w.status = self.integer()?,
            9 => w.api_key = self.optional_string()?,
            10 => w.user = self.optional_string()?,
            11 => w.client_ip = self.optional_string()?,
            12 => w.user_agent = self.optional_string()?,
            13 => w.integration = self.optional_string()?,
            14 => w.cursor = self.optional_string()?,
            15 => w.result_count = self.integer()?,
            16 => w.bytes = self.integer()?,
            _ => w.duration_ms = self.float()?,
        }
        Some(())
    }

    /// Skips the value of a field callmeter does not read: a scalar, or give up.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                loop {
                    match self.next()? {
                        b'"' => return Some(()),
                        b'\\' => {
                            self.next()?;
                        }
                        b if b < 0x20 => return None,
                        _ => {}
                    }
                }
            }
            b't' | b'f' | b'n' => {
                for word in [&b"true"[..], b"false", b"null"] {
                    if self.bytes()[self.at..].starts_with(word) {
                        self.at += word.len();
                        return Some(());
                    }
                }
                None
            }
            _ => self.number().map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIELDS: [&str; 18] = [
        "id",
        "account",
        "time",
        "interface",
        "operation",
        "method",
        "path",
        "destination",
        "status",
        "api_key",
        "user",
        "client_ip",
        "user_agent",
        "integration",
        "cursor",
        "result_count",
        "bytes",
        "duration_ms",
    ];

    fn by_serde(json: &[u8]) -> Option<Wire<'_>> {
        serde_json::from_slice(json).ok()
    }

    #[test]
    fn the_common_form_reads_as_serde_reads_it() {
        let line = br#"{"id":"a1","account":"acme","time":"2026-11-01T10:00:00Z","interface":"rest","method":"GET","path":"/f","status":200,"bytes":12,"duration_ms":1.5,"result_count":null,"extra":"x","more":[1]}"#;
        assert_eq!(read(line), None, "an array value goes to serde");
        let line = br#" {"id":"a1", "account":"acme","time":"2026-11-01T10:00:00Z","interface":"rest","method":"GET","path":"/f","status":-2,"bytes":12,"duration_ms":15,"result_count":null,"extra":"x\"y","n":-1.5e3,"t":true}
"#;
        let fast = read(line).expect("common form");
        assert_eq!(Some(&fast), by_serde(line).as_ref());
        assert_eq!((fast.status, fast.duration_ms, fast.interface), (Some(-2), Some(15.0), Some(Interface::Rest)));
    }

    #[test]
    fn plain_strings_end_where_a_byte_at_a_time_says() {
        let slow = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut samples: Vec<Vec<u8>> = vec![b"abc\"".to_vec(), b"no end at all, longer than eight".to_vec()];
        for at in 0..20 {
            for stop in [b'"', b'\\', 0x00, 0x1f, 0x01] {
                let mut v: Vec<u8> = (0..24).map(|i| [b'a', 0x20, 0x7f, 0x80, 0xff, 0xa0, b'!'][i % 7]).collect();
                v[at] = stop;
                v[at + 2] = b'"';
                samples.push(v);
            }
        }
        for v in samples {
            assert_eq!(plain_len(&v), slow(&v), "{v:?}");
        }
    }

    #[test]
    fn field_indexes_follow_the_table() {
        for (i, name) in FIELDS.iter().enumerate() {
            assert_eq!(field(name), Some(i));
        }
        assert_eq!(field("ID"), None);
    }

    #[test]
    fn anything_unusual_goes_to_serde() {
        for line in [
            &br#"{"id":"a\"b"}"#[..],
            br#"{"id":"a","id":"b"}"#,
            br#"{"status":200.0}"#,
            br#"{"bytes":-1}"#,
            br#"{"status":01}"#,
            br#"{"status":-0}"#,
            br#"{"interface":"REST"}"#,
            br#"{"id":1}"#,
            br#"{"id":"a"} x"#,
            br#"{"id":"a",}"#,
            br#"[1]"#,
            br#"{"o":{"a":1}}"#,
            b"{\"id\":\"a\tb\"}",
        ] {
            assert_eq!(read(line), None, "{}", String::from_utf8_lossy(line));
        }
        assert!(read(b"{}").is_some());
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 /._\"\\\\-]{0,8}".prop_map(|s| format!("{s:?}")),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| x.to_string()),
            "-?[0-9]{1,3}(\\.[0-9]{0,2})?([eE][+-]?[0-9]{0,2})?",
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("[]".to_owned()),
            prop::sample::select(vec!["\"rest\"", "\"list\"", "\"sftp\"", "\"read\"", "\"Rest\""])
                .prop_map(str::to_owned),
            // Values the checks refuse: out of range, not finite, control characters
            // (escaped, or raw where JSON allows them: DEL and C1).
            prop::sample::select(vec![
                "1e999",
                "-1e999",
                "-0",
                "-0.0",
                "0",
                "999",
                "1000",
                "-1",
                "9007199254740992",
                "18446744073709551616",
                "\" \"",
                "\"a\\u0000b\"",
                "\"\\n\"",
                "\"x\\t\"",
                "\"\u{7f}\"",
                "\"c1\u{85}\"",
                "\"\u{9b}2J\"",
                "\"\\u001b[0m\"",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z").unwrap().with_timezone(&chrono::Utc)
    }

    proptest! {
        #[test]
        fn never_disagrees_with_serde(
            fields in prop::collection::vec((prop_oneof![prop::sample::select(FIELDS.to_vec()), Just("other")], value()), 0..8),
            spaces in any::<bool>(),
        ) {
            let sep = if spaces { " , " } else { "," };
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let json = format!("{{{}}}", body.join(sep));
            if let Some(fast) = read(json.as_bytes()) {
                let slow = by_serde(json.as_bytes());
                // Debug tells -0.0 from 0.0, which `==` does not.
                prop_assert_eq!(format!("{:?}", Some(&fast)), format!("{:?}", slow.as_ref()), "{}", json);
                let limits = crate::EventLimits::default();
                let outcome = |w: Option<Wire<'_>>| w.map(|w| super::super::finish(w, now(), &limits));
                prop_assert_eq!(format!("{:?}", outcome(Some(fast))), format!("{:?}", outcome(slow)), "{}", json);
            }
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Whole events with one optional field that may hold an odd value: the
        /// reader that takes them and the one that parses every escape read the
        /// same bits and give the same answer.
        #[test]
        fn whole_events_get_the_same_answer_from_both_readers(
            field in prop::sample::select(FIELDS[5..].to_vec()),
            v in value(),
        ) {
            let json = format!(
                r#"{{"id":"e1","account":"acme","time":"2026-11-01T10:00:00Z","interface":"rest","{field}":{v}}}"#
            );
            let limits = crate::EventLimits::default();
            if let Some(fast) = read(json.as_bytes()) {
                let slow = by_serde(json.as_bytes()).expect("serde reads what the flat reader reads");
                prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{}", json);
                let (fast, slow) = (super::super::finish(fast, now(), &limits), super::super::finish(slow, now(), &limits));
                prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{}", json);
            }
        }
    }
}
