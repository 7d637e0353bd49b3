//! How a W3C data line splits into the columns its `#Fields` names.
//!
//! IIS separates values with single spaces, writes a space inside a value as
//! `+` and no value as `-`. Other writers of the format (IIS Advanced
//! Logging, Oracle Web Cache, load balancers) pad with runs of spaces or
//! tabs and quote values that hold spaces (`"Mozilla/5.0 (X11)"`, a doubled
//! `""` for a quote inside). Both are read.

use crate::text::parse_u64;
use std::borrow::Cow;

/// The columns this reader uses; others are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Col {
    Date,
    Time,
    DateLocal,
    TimeLocal,
    ClientIp,
    Username,
    SiteName,
    Method,
    UriStem,
    UriQuery,
    Uri,
    Status,
    ScBytes,
    CsBytes,
    TimeTaken,
    Host,
    UserAgent,
    Session,
    FullPath,
    Depth,
    Destination,
    Forwarded,
    Other,
}

/// How many [`Col`]s there are.
pub(super) const COLUMNS: usize = Col::Other as usize + 1;

pub(super) fn column(name: &str) -> Col {
    match name.to_ascii_lowercase().as_str() {
        "date" => Col::Date,
        "time" => Col::Time,
        "date-local" => Col::DateLocal,
        "time-local" => Col::TimeLocal,
        "c-ip" => Col::ClientIp,
        "cs-username" | "c-auth-id" => Col::Username,
        "s-sitename" => Col::SiteName,
        "cs-method" => Col::Method,
        "cs-uri-stem" => Col::UriStem,
        "cs-uri-query" => Col::UriQuery,
        "cs-uri" => Col::Uri,
        "sc-status" => Col::Status,
        "sc-bytes" | "bytes" => Col::ScBytes,
        "cs-bytes" => Col::CsBytes,
        "time-taken" | "timetakenms" => Col::TimeTaken,
        "cs-host" | "cs(host)" => Col::Host,
        "cs(user-agent)" => Col::UserAgent,
        "x-session" => Col::Session,
        "x-fullpath" => Col::FullPath,
        "cs(depth)" => Col::Depth,
        "cs(destination)" => Col::Destination,
        // Advanced Logging names a request header `cs(…)`; IIS 8.5's custom fields by the name given.
        "cs(x-forwarded-for)" | "x-forwarded-for" => Col::Forwarded,
        _ => Col::Other,
    }
}

/// One data line, split into its columns.
#[derive(Default)]
pub(super) struct Row<'a> {
    pub(super) values: [Option<&'a [u8]>; COLUMNS],
}

impl<'a> Row<'a> {
    pub(super) fn get(&self, c: Col) -> Option<&'a [u8]> {
        self.values[c as usize].filter(|v| *v != b"-" && !v.is_empty())
    }
}

/// IIS writes a space as `+`.
pub(super) fn spaces(v: &[u8]) -> Cow<'_, [u8]> {
    if v.contains(&b'+') {
        Cow::Owned(v.iter().map(|&c| if c == b'+' { b' ' } else { c }).collect())
    } else {
        Cow::Borrowed(v)
    }
}

/// The values of a data line: separated by runs of spaces or tabs, a quoted
/// value (`"a b"`, with `""` for a quote inside) given without its quotes.
pub(super) fn values(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut s = line;
    std::iter::from_fn(move || {
        let start = s.iter().position(|c| *c != b' ' && *c != b'\t')?;
        s = &s[start..];
        if s[0] == b'"' {
            // The closing quote is one not doubled.
            let mut i = 1;
            loop {
                match memchr::memchr(b'"', &s[i..]) {
                    Some(k) if s.get(i + k + 1) == Some(&b'"') => i += k + 2,
                    Some(k) => {
                        let v = &s[1..i + k];
                        s = &s[i + k + 1..];
                        return Some(v);
                    }
                    None => {
                        let v = &s[1..];
                        s = &[];
                        return Some(v);
                    }
                }
            }
        }
        let end = s.iter().position(|c| *c == b' ' || *c == b'\t').unwrap_or(s.len());
        let v = &s[..end];
        s = &s[end..];
        Some(v)
    })
}

/// `-0800` as seconds east of UTC.
pub(super) fn parse_offset(v: &[u8]) -> Option<i64> {
    let (sign, digits) = match v.first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => (1, v),
    };
    if digits.len() != 4 {
        return None;
    }
    let (h, m) = (parse_u64(&digits[..2])?, parse_u64(&digits[2..])?);
    (m < 60).then(|| sign * (h as i64 * 3600 + m as i64 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<&str> {
        values(line.as_bytes()).map(|v| std::str::from_utf8(v).unwrap()).collect()
    }

    #[test]
    fn values_in_spaces_tabs_and_quotes() {
        assert_eq!(split("a b  c\t d "), ["a", "b", "c", "d"]);
        assert_eq!(split("  \"x y\" \" \"\"q\"\" w/ s \" -"), ["x y", " \"\"q\"\" w/ s ", "-"]);
        assert_eq!(split("\"open"), ["open"]);
        assert_eq!(split(""), Vec::<&str>::new());
        assert_eq!(&*spaces(b"Mozilla/5.0+(X11)"), b"Mozilla/5.0 (X11)");
    }

    #[test]
    fn gmt_offsets() {
        assert_eq!(parse_offset(b"-0800"), Some(-8 * 3600));
        assert_eq!(parse_offset(b"+0530"), Some(5 * 3600 + 1800));
        assert_eq!(parse_offset(b"0100"), Some(3600));
        assert_eq!((parse_offset(b"-08"), parse_offset(b"+0090")), (None, None));
    }
}
