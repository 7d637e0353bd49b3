//! The value checks every event passes before it is stored, however it came
//! in: parsed from JSON (both readers end here) or built by a log reader.
//!
//! The values come from the callers of the metered API, and they end up in
//! spreadsheets, terminals and billing: a status of -1, a duration of
//! infinity or a NUL in a path is not a call anyone made, and it would be
//! sent back raw by every export. So each field has a domain, and a value
//! outside it rejects the event with the field and why (DESIGN §3), never a
//! stored oddity.
//!
//! The checks run on every ingested event: they are byte scans over strings
//! already in hand and compares of numbers, with no allocation unless the
//! event is refused.

use super::{quote, EventError, EventLimits, RejectReason};
use crate::event::CallEvent;
use chrono::{DateTime, Utc};

/// Longest `id`, in bytes (DESIGN §3).
pub const MAX_ID_BYTES: usize = 128;

/// Longest account name, in bytes (DESIGN §3).
pub const MAX_ACCOUNT_BYTES: usize = 64;

/// Highest `status`: HTTP and FTP answer with three digits (100–599 in
/// practice), SFTP with 0 (ok), 1 (failed) or its own small codes; the log
/// readers take any three-digit code. So a status is 0–999.
pub const MAX_STATUS: i64 = 999;

/// Highest `bytes` and `result_count`: 2^53 − 1, the largest integer that
/// every JSON reader (JavaScript's included) keeps exact; 9 PB in one request
/// or 9 quadrillion entries in one page is not a real call.
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// The rule of [`is_valid_account`] as a regular expression, for the API's
/// description (and whatever else takes a pattern).
pub const ACCOUNT_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// Whether `s` is an account name: `[a-z0-9][a-z0-9._-]{0,63}` (DESIGN §3).
pub fn is_valid_account(s: &str) -> bool {
    let b = s.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    b.len() <= MAX_ACCOUNT_BYTES
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'))
}

/// Checks the values of an event built elsewhere (a log reader, say) the way
/// the parser checks those it reads. In the order of the DESIGN §3 table:
/// `id` (not blank, no control characters, at most 128 bytes), `account`,
/// `time` (not too far ahead), then each optional field: strings without
/// control characters and within the size limit, `status` 0–999, counts up to
/// [`MAX_COUNT`], `duration_ms` finite and not negative.
pub fn check_event(e: &CallEvent, now: DateTime<Utc>, limits: &EventLimits) -> Result<(), EventError> {
    check_id(&e.id)?;
    if !is_valid_account(&e.account) {
        return Err(EventError::new(
            "account",
            RejectReason::InvalidValue,
            format!("not an account name ([a-z0-9][a-z0-9._-]{{0,63}}): {}", quote(&e.account)),
        ));
    }
    // No limit when `now + max_future` is past chrono's range.
    if let Some(latest) = now.checked_add_signed(limits.max_future) {
        if e.time > latest {
            return Err(EventError::new(
                "time",
                RejectReason::InFuture,
                format!(
                    "{} is {} s ahead of the server clock (at most {} s allowed)",
                    e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    (e.time - now).num_seconds(),
                    limits.max_future.num_seconds()
                ),
            ));
        }
    }
    let text = |field, value: &Option<String>| match value {
        Some(v) => check_text(field, v, limits.max_field_bytes),
        None => Ok(()),
    };
    text("method", &e.method)?;
    text("path", &e.path)?;
    text("destination", &e.destination)?;
    if let Some(status) = e.status {
        if !(0..=MAX_STATUS).contains(&status) {
            return Err(EventError::new(
                "status",
                RejectReason::InvalidValue,
                format!("out of range (0–{MAX_STATUS}): {status}"),
            ));
        }
    }
    text("api_key", &e.api_key)?;
    text("user", &e.user)?;
    text("client_ip", &e.client_ip)?;
    text("user_agent", &e.user_agent)?;
    text("integration", &e.integration)?;
    text("cursor", &e.cursor)?;
    check_count("result_count", e.result_count)?;
    check_count("bytes", e.bytes)?;
    if let Some(d) = e.duration_ms {
        if !d.is_finite() {
            return Err(EventError::new(
                "duration_ms",
                RejectReason::InvalidValue,
                format!("not a finite number: {d}"),
            ));
        }
        if d < 0.0 {
            return Err(EventError::new("duration_ms", RejectReason::InvalidValue, format!("negative: {d}")));
        }
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), EventError> {
    if id.is_empty() {
        return Err(EventError::new("id", RejectReason::InvalidValue, "empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(oversize("id", id.len(), MAX_ID_BYTES));
    }
    if let Some(err) = control_character("id", id) {
        return Err(err);
    }
    if id.trim().is_empty() {
        return Err(EventError::new("id", RejectReason::InvalidValue, format!("blank: {}", quote(id))));
    }
    Ok(())
}

fn check_text(field: &'static str, v: &str, max_bytes: usize) -> Result<(), EventError> {
    if v.len() > max_bytes {
        return Err(oversize(field, v.len(), max_bytes));
    }
    match control_character(field, v) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn check_count(field: &'static str, n: Option<u64>) -> Result<(), EventError> {
    match n {
        Some(n) if n > MAX_COUNT => {
            Err(EventError::new(field, RejectReason::InvalidValue, format!("more than {MAX_COUNT}: {n}")))
        }
        _ => Ok(()),
    }
}

/// The error for the first control character in `s` (C0, DEL or C1: NUL,
/// line breaks, tabs, terminal escapes), if it holds one.
///
/// One pass over the bytes settles the usual case: C0 and DEL are single
/// bytes, and every C1 character (U+0080–U+009F) is encoded as 0xC2 and a
/// second byte, so a string with none of those bytes has no control
/// character. Only a string with a 0xC2 (é is not one; ¢ is) is walked by
/// characters. The pass reads eight bytes at a time ([`suspect_word`]):
/// fields are short, and a byte-wise loop's tail was most of their cost.
fn control_character(field: &'static str, s: &str) -> Option<EventError> {
    let bytes = s.as_bytes();
    let word = |w: &[u8]| suspect_word(u64::from_le_bytes(w.try_into().expect("eight bytes")));
    let mut words = bytes.chunks_exact(8);
    let mut suspect = words.by_ref().fold(0, |any, w| any | word(w));
    let tail = words.remainder();
    if bytes.len() >= 8 {
        // The last eight bytes, overlapping words already read: no copy.
        suspect |= word(&bytes[bytes.len() - 8..]);
    } else if !tail.is_empty() {
        // A short string, shifted into a word of spaces (no suspect) byte by byte:
        // a copy into a buffer read back as one word stalls on the store.
        let w = tail.iter().rev().fold(0u64, |w, &b| (w << 8) | u64::from(b));
        let spaces = (u64::MAX / 255 * 0x20) & (u64::MAX << (8 * tail.len()));
        suspect |= suspect_word(w | spaces);
    }
    if suspect == 0 {
        return None;
    }
    let (at, c) = s.char_indices().find(|(_, c)| c.is_control())?;
    Some(EventError::new(
        field,
        RejectReason::InvalidValue,
        format!("control character U+{:04X} at byte {at}: {}", u32::from(c), quote(s)),
    ))
}

/// Not 0 when one of the word's eight bytes is below 0x20, 0x7F or 0xC2
/// (the classic "has a byte less than n" and "has a zero byte" tests, exact
/// as to whether any byte is one).
fn suspect_word(w: u64) -> u64 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | zero_byte(w ^ (ONES * 0x7f)) | zero_byte(w ^ (ONES * 0xc2))
}

pub(super) fn oversize(field: &'static str, len: usize, max: usize) -> EventError {
    EventError::new(field, RejectReason::Oversize, format!("{len} bytes, more than the limit of {max}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_test_finds_what_the_byte_test_finds() {
        let byte = |b: u8| b < 0x20 || b == 0x7f || b == 0xc2;
        // Every byte value at every position of a word, among harmless bytes and others.
        for fill in [b'a', 0xc3, 0x80, 0xff, 0x21] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut w = [fill; 8];
                    w[at] = b;
                    let want = w.iter().any(|&x| byte(x));
                    assert_eq!(suspect_word(u64::from_le_bytes(w)) != 0, want, "{w:?}");
                }
            }
        }
        for s in [
            "",
            "a",
            "abcdefgh",
            "abcdefghi",
            "é/path",
            "x\u{7f}",
            "abcdefg\u{85}",
            "tab\there",
            "¢",
            "\n",
            "abcdefghijklmno\0",
            "\u{1b}bcdefghijklmnop",
            "abcdefghijkl\rmnop",
            "abcdefgh\u{9f}",
        ] {
            let want = s.chars().any(char::is_control);
            assert_eq!(control_character("f", s).is_some(), want, "{s:?}");
        }
        // Every length and position: the words, the overlapping last one and the short tail.
        for len in 0..20 {
            assert!(control_character("f", &"a".repeat(len)).is_none());
            for at in 0..len {
                for c in ['\0', '\u{1f}', '\u{7f}', '\u{80}'] {
                    let s: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                    assert!(control_character("f", &s).is_some(), "{s:?}");
                }
            }
        }
    }
    use crate::event::{Interface, Operation};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn event() -> CallEvent {
        CallEvent::new("e1".into(), "acme".into(), now(), Interface::Sftp, Operation::Read)
    }

    fn refused(e: &CallEvent) -> (Option<&'static str>, RejectReason, String) {
        let err = check_event(e, now(), &EventLimits::default()).expect_err("refused");
        (err.field, err.reason, err.to_string())
    }

    #[test]
    fn statuses_are_three_digits_or_sftp_codes() {
        for ok in [0, 1, 100, 200, 226, 550, 599, 999] {
            let e = CallEvent { status: Some(ok), ..event() };
            assert!(check_event(&e, now(), &EventLimits::default()).is_ok(), "{ok}");
        }
        for bad in [-1, 1000, 99_999_999_999, i64::MIN, i64::MAX] {
            let (field, reason, message) = refused(&CallEvent { status: Some(bad), ..event() });
            assert_eq!((field, reason), (Some("status"), RejectReason::InvalidValue), "{bad}");
            assert!(message.contains(&bad.to_string()), "{message}");
        }
    }

    #[test]
    fn durations_are_finite_and_not_negative() {
        for ok in [0.0, -0.0, 0.001, 12.5, 1e12] {
            assert!(check_event(&CallEvent { duration_ms: Some(ok), ..event() }, now(), &Default::default()).is_ok());
        }
        for bad in [-5.0, -1e-9, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let (field, reason, _) = refused(&CallEvent { duration_ms: Some(bad), ..event() });
            assert_eq!((field, reason), (Some("duration_ms"), RejectReason::InvalidValue), "{bad}");
        }
        let (_, _, message) = refused(&CallEvent { duration_ms: Some(f64::INFINITY), ..event() });
        assert_eq!(message, r#"field "duration_ms": not a finite number: inf"#);
    }

    #[test]
    fn counts_stop_where_json_integers_stay_exact() {
        let e = CallEvent { bytes: Some(MAX_COUNT), result_count: Some(MAX_COUNT), ..event() };
        assert!(check_event(&e, now(), &EventLimits::default()).is_ok());
        let (field, reason, _) = refused(&CallEvent { bytes: Some(MAX_COUNT + 1), ..event() });
        assert_eq!((field, reason), (Some("bytes"), RejectReason::InvalidValue));
        let (field, _, _) = refused(&CallEvent { result_count: Some(u64::MAX), ..event() });
        assert_eq!(field, Some("result_count"));
    }

    #[test]
    fn ids_are_printable_and_not_blank() {
        for ok in ["a", " a ", "ünïcode-✓", "a b", "log-0123"] {
            assert!(check_event(&CallEvent { id: ok.into(), ..event() }, now(), &Default::default()).is_ok(), "{ok:?}");
        }
        for bad in [" ", "   ", "\u{3000}", "a\0", "\n", "a\nb", "a\tb", "\u{7f}", "x\u{85}", "\u{9b}31m"] {
            let (field, reason, _) = refused(&CallEvent { id: bad.into(), ..event() });
            assert_eq!((field, reason), (Some("id"), RejectReason::InvalidValue), "{bad:?}");
        }
        let (_, _, message) = refused(&CallEvent { id: "a\0b".into(), ..event() });
        assert_eq!(message, r#"field "id": control character U+0000 at byte 1: "a\0b""#);
    }

    #[test]
    fn no_text_field_holds_a_control_character() {
        type Setter = fn(&mut CallEvent, String);
        let fields: [(&str, Setter); 9] = [
            ("method", |e, v| e.method = Some(v)),
            ("path", |e, v| e.path = Some(v)),
            ("destination", |e, v| e.destination = Some(v)),
            ("api_key", |e, v| e.api_key = Some(v)),
            ("user", |e, v| e.user = Some(v)),
            ("client_ip", |e, v| e.client_ip = Some(v)),
            ("user_agent", |e, v| e.user_agent = Some(v)),
            ("integration", |e, v| e.integration = Some(v)),
            ("cursor", |e, v| e.cursor = Some(v)),
        ];
        for (name, set) in fields {
            for ok in ["/a b/ü ¢ é €.txt", "=HYPERLINK(1)", ""] {
                let mut e = event();
                set(&mut e, ok.into());
                assert!(check_event(&e, now(), &EventLimits::default()).is_ok(), "{name} {ok:?}");
            }
            for bad in ["/a\0b", "x\ny", "\r", "tab\there", "esc\u{1b}[31m", "del\u{7f}", "c1\u{80}", "c1\u{9f}"] {
                let mut e = event();
                set(&mut e, bad.into());
                let (field, reason, _) = refused(&e);
                assert_eq!((field, reason), (Some(name), RejectReason::InvalidValue), "{name} {bad:?}");
            }
        }
    }

    #[test]
    fn the_byte_scan_finds_what_a_walk_over_characters_finds() {
        // Every character up to U+0800 (all one- and two-byte encodings), alone and amid others.
        for code in 0..0x800u32 {
            let Some(c) = char::from_u32(code) else { continue };
            for s in [c.to_string(), format!("ab{c}¢é"), format!("{c}{c}")] {
                assert_eq!(control_character("path", &s).is_some(), s.chars().any(char::is_control), "U+{code:04X}");
            }
        }
    }
}
