//! Byte-level helpers the readers share: quoted strings, escapes, percent
//! decoding, fixed-layout dates, and cutting values to size.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use memchr::memchr;
use std::borrow::Cow;

/// Longest optional string field an event carries (the model's default limit).
/// Longer values are cut, not rejected: a log line is a call whatever its size.
pub const MAX_FIELD_BYTES: usize = 4096;

/// Removes a trailing `\n`, `\r\n` or `\r`.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether the line has nothing but white space.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// The bytes as a `String`, invalid UTF-8 replaced, cut to [`MAX_FIELD_BYTES`].
pub fn owned(b: &[u8]) -> String {
    clip(lossy(b).into_owned())
}

/// The bytes as text, invalid UTF-8 replaced; borrows when they are UTF-8
/// (the check is the fast one of `str::from_utf8`).
pub fn lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// A `Cow` of bytes as a `String`, like [`owned`].
pub fn owned_cow(b: Cow<'_, [u8]>) -> String {
    match b {
        Cow::Borrowed(b) => owned(b),
        Cow::Owned(v) => match String::from_utf8(v) {
            Ok(s) => clip(s),
            Err(e) => owned(e.as_bytes()),
        },
    }
}

/// Cuts a string to [`MAX_FIELD_BYTES`] at a character boundary.
pub fn clip(mut s: String) -> String {
    if s.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A bad value for an error message: lossy UTF-8, debug-quoted, cut at 64 bytes.
pub fn quote(b: &[u8]) -> String {
    const MAX: usize = 64;
    let s = String::from_utf8_lossy(&b[..b.len().min(MAX)]);
    if b.len() > MAX {
        format!("{s:?}…")
    } else {
        format!("{s:?}")
    }
}

/// Finds the closing `"` of a quoted string whose content starts at `from`,
/// skipping quotes escaped with a backslash. Returns the index of the quote,
/// and whether the content holds a backslash (and so may need [`unescape`]).
pub fn quoted_field(s: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut escaped = false;
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', s.get(i..)?)?;
        if s[at] == b'"' {
            return Some((at, escaped));
        }
        escaped = true;
        // Whatever follows a backslash is escaped, a quote included.
        i = at + 2;
    }
}

/// [`quoted_field`]'s index alone.
pub fn closing_quote(s: &[u8], from: usize) -> Option<usize> {
    quoted_field(s, from).map(|q| q.0)
}

/// The previous definition, kept for the tests: the same answers by another route.
#[cfg(test)]
fn closing_quote_slow(s: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i <= s.len() {
        let q = i + memchr(b'"', s.get(i..)?)?;
        // Count the backslashes right before the quote: an odd number escapes it.
        let mut n = 0;
        while q > from + n && s[q - 1 - n] == b'\\' {
            n += 1;
        }
        if n % 2 == 0 {
            return Some(q);
        }
        i = q + 1;
    }
    None
}

/// Undoes Apache and nginx log escapes: `\"`, `\\`, `\xHH`, `\n`, `\r`, `\t`.
/// Other backslashes stay as they are. Borrows when there is nothing to undo.
pub fn unescape(s: &[u8]) -> Cow<'_, [u8]> {
    if memchr(b'\\', s).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && i + 1 < s.len() {
            match s[i + 1] {
                b'"' | b'\\' => {
                    out.push(s[i + 1]);
                    i += 2;
                    continue;
                }
                b'n' => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                b'r' => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                b't' => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                b'x' if i + 3 < s.len() && hex_val(s[i + 2]).is_some() && hex_val(s[i + 3]).is_some() => {
                    out.push(hex_val(s[i + 2]).unwrap_or(0) << 4 | hex_val(s[i + 3]).unwrap_or(0));
                    i += 4;
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

/// The value of one hex digit.
pub fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%HH` escapes (and `+` as a space when `plus` is set). A `%` not
/// followed by two hex digits stays as it is. Borrows when nothing changes.
pub fn percent_decode(s: &[u8], plus: bool) -> Cow<'_, [u8]> {
    let needs = if plus { memchr::memchr2(b'%', b'+', s).is_some() } else { memchr(b'%', s).is_some() };
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus && c == b'+' { b' ' } else { c });
        i += 1;
    }
    Cow::Owned(out)
}

/// Splits off the next token up to a space; the rest starts after the space.
pub fn token(s: &[u8]) -> (&[u8], &[u8]) {
    // Tokens are short: a plain loop beats a vectorised search's set-up.
    match s.iter().position(|&c| c == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

/// Skips leading spaces.
pub fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    &s[n..]
}

/// A decimal unsigned integer, the whole slice.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// A decimal number such as `0.012` or `15`, the whole slice.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    parse_decimal(s, 0)
}

/// Decimal seconds (`1.001`) as milliseconds, rounded as the decimal itself
/// would be: 1001.0, where `1.001 * 1000.0` gives 1000.9999999999999, a
/// value that neither reads well nor survives every JSON round trip.
pub fn parse_seconds_as_ms(s: &[u8]) -> Option<f64> {
    parse_decimal(s, 3)
}

/// The decimal `s` times `10^shift`, correctly rounded.
fn parse_decimal(s: &[u8], shift: usize) -> Option<f64> {
    if s.is_empty() || s.len() > 32 || !s.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
        return None;
    }
    // Fast path: up to 15 digits are exact as an integer, and one
    // multiplication or division by an exact power of ten is correctly
    // rounded, as the full parser would round.
    let dot = s.iter().position(|&c| c == b'.');
    let (int, frac) = match dot {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    if int.len() + frac.len() <= 15 && !frac.contains(&b'.') && !(int.is_empty() && frac.is_empty()) {
        let digits = int.iter().chain(frac).fold(0u64, |n, c| n * 10 + u64::from(c - b'0')) as f64;
        const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
        return Some(match frac.len().checked_sub(shift) {
            Some(down) => digits / POW10[down],
            None => digits * POW10[shift - frac.len()],
        });
    }
    let mut text = std::str::from_utf8(s).ok()?.to_owned();
    if shift > 0 {
        text.push_str(&format!("e{shift}"));
    }
    text.parse().ok().filter(|x: &f64| x.is_finite())
}

/// Two ASCII digits.
fn d2(s: &[u8]) -> Option<u32> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

/// Four ASCII digits.
fn d4(s: &[u8]) -> Option<i32> {
    Some((d2(s.get(..2)?)? * 100 + d2(s.get(2..4)?)?) as i32).filter(|_| s.len() == 4)
}

/// An English three-letter month name (`Jan`), any case, as 1–12.
pub fn month(s: &[u8]) -> Option<u32> {
    let m = [s.first()?.to_ascii_lowercase(), s.get(1)?.to_ascii_lowercase(), s.get(2)?.to_ascii_lowercase()];
    if s.len() != 3 {
        return None;
    }
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in a month.
fn month_days(y: i32, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Unix seconds of a valid UTC calendar time, or `None` if any part is out of range.
pub fn unix_seconds(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > month_days(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // A leap second (`:60`) is read as the next second.
    Some(days_from_civil(i64::from(y), mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Reads CLF times, remembering the last day and zone: a log's lines share them.
#[derive(Debug, Clone, Default)]
pub struct ClfTimes {
    /// `10/Oct/2000` and `-0700` of the last time read.
    key: [u8; 16],
    /// Unix seconds of that day's local midnight.
    midnight: Option<i64>,
}

impl ClfTimes {
    /// Like [`parse_clf_time`], faster when the day and zone are the last line's.
    pub fn parse(&mut self, s: &[u8]) -> Option<DateTime<Utc>> {
        if s.len() != 26 || s[11] != b':' || s[14] != b':' || s[17] != b':' || s[20] != b' ' {
            return None;
        }
        let mut key = [0u8; 16];
        key[..11].copy_from_slice(&s[..11]);
        key[11..].copy_from_slice(&s[21..]);
        let midnight = match self.midnight {
            Some(m) if key == self.key => m,
            _ => {
                let mut day = [0u8; 26];
                day.copy_from_slice(s);
                day[12..20].copy_from_slice(b"00:00:00");
                let m = parse_clf_time(&day)?.timestamp();
                self.key = key;
                self.midnight = Some(m);
                m
            }
        };
        let (h, mi, sec) = (d2(&s[12..14])?, d2(&s[15..17])?, d2(&s[18..20])?);
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        DateTime::from_timestamp(midnight + i64::from(h * 3600 + mi * 60 + sec), 0)
    }
}

/// A CLF time: `10/Oct/2000:13:55:36 -0700` (exactly that layout).
pub fn parse_clf_time(s: &[u8]) -> Option<DateTime<Utc>> {
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[14] != b':' || s[17] != b':' {
        return None;
    }
    let day = d2(&s[0..2])?;
    let mo = month(&s[3..6])?;
    let y = d4(&s[7..11])?;
    let (h, mi, sec) = (d2(&s[12..14])?, d2(&s[15..17])?, d2(&s[18..20])?);
    if s[20] != b' ' {
        return None;
    }
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, om) = (d2(&s[22..24])?, d2(&s[24..26])?);
    if om > 59 {
        return None;
    }
    let offset = sign * i64::from(oh * 3600 + om * 60);
    DateTime::from_timestamp(unix_seconds(y, mo, day, h, mi, sec)? - offset, 0)
}

/// `HH:MM:SS` into its three numbers.
pub fn parse_hms(s: &[u8]) -> Option<(u32, u32, u32)> {
    if s.len() != 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    Some((d2(&s[0..2])?, d2(&s[3..5])?, d2(&s[6..8])?))
}

/// A day of month, one or two digits.
pub fn parse_day(s: &[u8]) -> Option<u32> {
    match s {
        [a] if a.is_ascii_digit() => Some(u32::from(a - b'0')),
        [_, _] => d2(s),
        _ => None,
    }
}

/// `Mon Jan 15 10:00:05 2024` (ctime layout, day possibly space-padded) as a
/// zoneless time, and the rest of the line after one space.
pub fn parse_ctime(s: &[u8]) -> Option<(NaiveDateTime, &[u8])> {
    let (wday, rest) = token(s);
    if wday.len() != 3 || !wday.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let (mon, rest) = token(rest);
    let mo = month(mon)?;
    let (day, rest) = token(skip_spaces(rest));
    let day = parse_day(day)?;
    let (hms, rest) = token(rest);
    let (h, mi, sec) = parse_hms(hms)?;
    let (year, rest) = token(rest);
    let y = d4(year)?;
    let t = NaiveDate::from_ymd_opt(y, mo, day)?.and_hms_opt(h, mi, sec.min(59))?;
    Some((t, rest))
}

/// `2024-01-15` and `10:00:01` (optionally with a fraction) as UTC.
pub fn parse_w3c_time(date: &[u8], time: &[u8]) -> Option<DateTime<Utc>> {
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (d4(&date[0..4])?, d2(&date[5..7])?, d2(&date[8..10])?);
    let (hms, frac) = match memchr(b'.', time) {
        Some(i) => (&time[..i], &time[i + 1..]),
        None => (time, &b""[..]),
    };
    let (h, mi, s) = parse_hms(hms)?;
    let mut nanos = 0u32;
    if !frac.is_empty() {
        if frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..9 {
            nanos = nanos * 10 + frac.get(i).map_or(0, |c| u32::from(c - b'0'));
        }
    }
    DateTime::from_timestamp(unix_seconds(y, mo, d, h, mi, s)?, nanos)
}

/// An RFC 3339 time, also accepting a space for `T` and `+0000` offsets.
pub fn parse_rfc3339_lenient(s: &[u8]) -> Option<DateTime<Utc>> {
    let s = std::str::from_utf8(s).ok()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f %z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// Appends the lowercase hex of bytes.
pub fn push_hex(s: &mut String, bytes: &[u8]) {
    // Sixteen bytes at a time into a buffer, pushed at once (a line id's key
    // is one push), each four bytes' eight digits made side by side in one
    // word: every call's id is 32 digits, so this is on the hot path.
    for chunk in bytes.chunks(16) {
        let mut hex = [0u8; 32];
        for (digits, quad) in hex.chunks_exact_mut(8).zip(chunk.chunks(4)) {
            let mut word = [0u8; 4];
            word[..quad.len()].copy_from_slice(quad);
            digits.copy_from_slice(&hex_digits(u32::from_be_bytes(word)));
        }
        s.push_str(std::str::from_utf8(&hex[..2 * chunk.len()]).expect("hex digits are ASCII"));
    }
}

/// The eight lowercase hex digits of `n`, most significant first.
fn hex_digits(n: u32) -> [u8; 8] {
    const ONES: u64 = u64::MAX / 255;
    // Each nibble into a byte of its own, in order.
    let mut x = u64::from(n);
    x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // '0'..'9' for 0..9, and 'a' ('0' + 10 + 39) on for 10..15: a nibble
    // plus 6 reaches 16 exactly when it is 10 or more.
    let letters = ((x + 6 * ONES) >> 4) & ONES;
    (x + b'0' as u64 * ONES + letters * 39).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_every_byte_in_two_lowercase_digits() {
        for len in 0..=9 {
            let bytes: Vec<u8> = (0..=255u8).cycle().skip(len * 29).take(len).collect();
            let mut s = "x".to_owned();
            push_hex(&mut s, &bytes);
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(s, format!("x{expected}"));
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        push_hex(&mut s, &all);
        assert_eq!(s, all.iter().map(|b| format!("{b:02x}")).collect::<String>());
    }

    #[test]
    fn quoted_strings_skip_escaped_quotes() {
        let s = br#"a \"b\" c\\" rest"#;
        assert_eq!(closing_quote(s, 0), Some(11));
        assert_eq!(&*unescape(&s[..11]), br#"a "b" c\"#);
        assert_eq!(closing_quote(b"no end", 0), None);
        assert_eq!(closing_quote(b"\"", 0), Some(0));
        assert_eq!(closing_quote(b"\\\"", 0), None);
        assert_eq!(closing_quote(b"\\\\\"", 0), Some(2));
        assert_eq!(closing_quote(b"x", 5), None);
    }

    #[test]
    fn decimals_parse_as_they_read() {
        assert_eq!(parse_f64(b"0.012"), Some(0.012));
        assert_eq!(parse_f64(b"15"), Some(15.0));
        assert_eq!(parse_f64(b"1.2.3"), None);
        assert_eq!(parse_f64(b"-1"), None);
        assert_eq!(parse_seconds_as_ms(b"1.001"), Some(1001.0));
        assert_eq!(parse_seconds_as_ms(b"0.0005"), Some(0.5));
        assert_eq!(parse_seconds_as_ms(b"12"), Some(12_000.0));
        assert_eq!(parse_seconds_as_ms(b".25"), Some(250.0));
        // Past the fast path, the standard parser with the exponent moved.
        assert_eq!(parse_seconds_as_ms(b"1.0000000000000001"), Some(1000.0000000000001));
        assert_eq!(parse_seconds_as_ms(b"."), None);
    }

    #[test]
    fn quote_search_agrees_with_the_plain_one() {
        let samples: [&[u8]; 9] =
            [br#"a \"b\" c\\" rest"#, b"no end", b"\"", b"\\\"", b"\\\\\"", b"x\\", b"\\", b"ab\"cd", br#"\x22 "#];
        for s in samples {
            for from in 0..=s.len() + 1 {
                assert_eq!(closing_quote(s, from), closing_quote_slow(s, from), "{} from {from}", quote(s));
            }
        }
        assert_eq!(quoted_field(b"ab\"", 0), Some((2, false)));
        assert_eq!(quoted_field(b"a\\\\b\"", 0), Some((4, true)));
    }

    #[test]
    fn remembered_days_give_the_same_times() {
        let mut times = ClfTimes::default();
        for s in [
            &b"10/Oct/2000:13:55:36 -0700"[..],
            b"10/Oct/2000:23:59:59 -0700",
            b"11/Oct/2000:00:00:00 -0700",
            b"11/Oct/2000:00:00:00 +0000",
            b"11/Oct/2000:24:00:00 +0000",
            b"31/Feb/2000:00:00:00 +0000",
            b"11/Oct/2000:00:61:00 +0000",
            b"x",
        ] {
            assert_eq!(times.parse(s), parse_clf_time(s), "{}", quote(s));
        }
    }

    #[test]
    fn escapes_undo() {
        assert_eq!(&*unescape(br"a\x22b\x5Cc\td\q"), b"a\"b\\c\td\\q");
        assert_eq!(&*unescape(br"end\"), br"end\");
        assert_eq!(&*unescape(br"\x2"), br"\x2");
        assert!(matches!(unescape(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode(b"/a%20b%2Fc%zz%", false), b"/a b/c%zz%");
        assert_eq!(&*percent_decode(b"a+b%2", true), b"a b%2");
        assert_eq!(&*percent_decode(b"%41", false), b"A");
        assert!(matches!(percent_decode(b"/plain+", false), Cow::Borrowed(_)));
    }

    #[test]
    fn clf_times() {
        let t = parse_clf_time(b"10/Oct/2000:13:55:36 -0700").unwrap();
        assert_eq!(t.to_rfc3339(), "2000-10-10T20:55:36+00:00");
        let t = parse_clf_time(b"29/Feb/2024:00:00:00 +0545").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-02-28T18:15:00+00:00");
        for bad in
            [&b"30/Feb/2024:00:00:00 +0000"[..], b"10/Oct/2000:24:00:00 +0000", b"10/Foo/2000:13:55:36 -0700", b""]
        {
            assert_eq!(parse_clf_time(bad), None, "{}", quote(bad));
        }
    }

    #[test]
    fn ctime_and_w3c_times() {
        let (t, rest) = parse_ctime(b"Mon Jan  5 10:00:05 2024 [pid 1]").unwrap();
        assert_eq!(t.to_string(), "2024-01-05 10:00:05");
        assert_eq!(rest, b"[pid 1]");
        assert!(parse_ctime(b"Mon Jan 32 10:00:05 2024 x").is_none());
        let t = parse_w3c_time(b"2024-01-15", b"10:00:01.25").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-15T10:00:01.250+00:00");
        assert!(parse_w3c_time(b"2024-13-15", b"10:00:01").is_none());
        assert!(parse_w3c_time(b"2024-01-15", b"10:00:01.1234567890").is_none());
    }

    #[test]
    fn numbers_and_hex() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_f64(b"0.012"), Some(0.012));
        assert_eq!(parse_f64(b"1e9"), None);
        let mut s = String::from("x");
        push_hex(&mut s, &[0, 0xab, 0xff]);
        assert_eq!(s, "x00abff");
    }

    #[test]
    fn clipping_keeps_char_boundaries() {
        let s = "é".repeat(3000);
        let c = clip(s);
        assert!(c.len() <= MAX_FIELD_BYTES && c.len().is_multiple_of(2));
    }
}
