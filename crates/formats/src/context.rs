//! What every reader needs besides the line: whose calls they are, the zone
//! and year of times written without them, and the tables that classify
//! requests (DESIGN §4, §5). The ids of calls come from the lines themselves
//! ([`crate::line_key`]).

use crate::classify::Classifier;
use crate::error::{Error, Result};
use crate::line_key::SourceLine;
use crate::text;
use callmeter_model::{is_valid_account, CallEvent, Interface, Operation};
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// How far ahead of this machine's clock a live line may be (DESIGN §3 allows
/// five minutes of skew): the year reference of `tail` and standard input is
/// now plus this, so that a line a few seconds ahead does not move back a year.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The year reference of lines being written now (`tail`, standard input):
/// the current time plus [`CLOCK_SKEW`].
pub fn live_year_reference() -> DateTime<Utc> {
    Utc::now() + CLOCK_SKEW
}

/// Where the account of an imported call comes from (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccountRule {
    /// None given: only sources that carry their own account (NDJSON, CloudEvents) can be read.
    #[default]
    Unset,
    /// `--account NAME`: every call is this account's.
    Fixed(String),
    /// `--account-from host`: the first label of the request's host name, lower-cased.
    Host,
    /// `--account-from user:MAPFILE`: the call's user, looked up in a map.
    UserMap(HashMap<String, String>),
}

impl AccountRule {
    /// `--account NAME`, checked to be an account name.
    pub fn fixed(name: &str) -> Result<AccountRule> {
        if is_valid_account(name) {
            Ok(AccountRule::Fixed(name.to_owned()))
        } else {
            Err(Error::BadAccount(name.to_owned()))
        }
    }

    /// The rule for an `--account-from` value, reading a user map file if it names one.
    pub fn from_spec(spec: &AccountFrom) -> Result<AccountRule> {
        match spec {
            AccountFrom::Host => Ok(AccountRule::Host),
            AccountFrom::UserMap(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Io { path: path.display().to_string(), why: e.to_string().to_lowercase() })?;
                Ok(AccountRule::UserMap(parse_user_map(&text)?))
            }
            AccountFrom::Header(_) | AccountFrom::Basic | AccountFrom::Bearer => Err(Error::BadAccountRule {
                rule: spec.to_string(),
                why: "header, basic and bearer are for the proxy; logs carry no request headers".into(),
            }),
        }
    }

    /// The account of a call with this host name and user, or why there is none.
    pub fn resolve(&self, line: u64, host: Option<&str>, user: Option<&str>) -> Result<String> {
        match self {
            AccountRule::Fixed(a) => Ok(a.clone()),
            AccountRule::Unset => Err(Error::Account { line, why: "no --account or --account-from given".into() }),
            AccountRule::Host => {
                let host = host.filter(|h| !h.is_empty() && *h != "-").ok_or_else(|| Error::Account {
                    line,
                    why: "--account-from host, and the line has no host name".into(),
                })?;
                // An address names no account: `10.0.0.5` would otherwise be account `10` (DESIGN §4: never guessed).
                if is_ip_address(host) {
                    return Err(Error::Account {
                        line,
                        why: format!("host {} is an IP address, not a name", text::quote(host.as_bytes())),
                    });
                }
                let label = host.split(['.', ':']).next().unwrap_or("").to_ascii_lowercase();
                if is_valid_account(&label) {
                    Ok(label)
                } else {
                    Err(Error::Account {
                        line,
                        why: format!("host {} does not start with an account name", text::quote(host.as_bytes())),
                    })
                }
            }
            AccountRule::UserMap(map) => {
                let user = user.ok_or_else(|| Error::Account {
                    line,
                    why: "--account-from user, and the line has no user".into(),
                })?;
                map.get(user).cloned().ok_or_else(|| Error::Account {
                    line,
                    why: format!("user {} is not in the user map", text::quote(user.as_bytes())),
                })
            }
        }
    }
}

/// Whether a logged host is an IP address rather than a name: IPv4 or IPv6,
/// with or without a port (`10.0.0.5`, `10.0.0.5:8443`, `[2001:db8::1]:443`,
/// `2001:db8::1`). Clients that connect by address send it as the `Host`.
fn is_ip_address(host: &str) -> bool {
    use std::net::{IpAddr, Ipv4Addr};
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[') {
        let inside = v6.split_once(']').map_or(v6, |(a, _)| a);
        return inside.parse::<std::net::Ipv6Addr>().is_ok();
    }
    match host.rsplit_once(':') {
        Some((addr, port)) => port.bytes().all(|b| b.is_ascii_digit()) && addr.parse::<Ipv4Addr>().is_ok(),
        None => false,
    }
}

/// An `--account-from` value (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountFrom {
    /// `host`: the first label of the host name, lower-cased.
    Host,
    /// `user:MAPFILE`: user → account, from a map file (see [`parse_user_map`]).
    UserMap(PathBuf),
    /// `header:NAME` (proxy only).
    Header(String),
    /// `basic` (proxy only).
    Basic,
    /// `bearer` (proxy only).
    Bearer,
}

impl FromStr for AccountFrom {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::BadAccountRule { rule: s.to_owned(), why: why.to_owned() };
        match s.split_once(':') {
            None if s == "host" => Ok(AccountFrom::Host),
            None if s == "basic" => Ok(AccountFrom::Basic),
            None if s == "bearer" => Ok(AccountFrom::Bearer),
            Some(("user", "")) => Err(bad("user: needs a map file, as in user:/etc/callmeter/users.map")),
            Some(("user", path)) => Ok(AccountFrom::UserMap(PathBuf::from(path))),
            Some(("header", "")) => Err(bad("header: needs a header name")),
            Some(("header", name)) => Ok(AccountFrom::Header(name.to_owned())),
            _ => Err(bad("expected host, user:MAPFILE, header:NAME, basic or bearer")),
        }
    }
}

impl std::fmt::Display for AccountFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountFrom::Host => f.write_str("host"),
            AccountFrom::UserMap(p) => write!(f, "user:{}", p.display()),
            AccountFrom::Header(n) => write!(f, "header:{n}"),
            AccountFrom::Basic => f.write_str("basic"),
            AccountFrom::Bearer => f.write_str("bearer"),
        }
    }
}

/// Reads a user → account map: one `USER ACCOUNT` or `USER = ACCOUNT` per
/// line; blank lines and lines starting with `#` are skipped. The account is
/// the last word, so a user name may contain spaces; with `=`, the split is
/// at the first `=`. A user given twice is refused with both line numbers,
/// even with the same account: which line was meant cannot be told, and an
/// account is never guessed (DESIGN §4).
pub fn parse_user_map(text: &str) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = i as u64 + 1;
        let (user, account) = match line.split_once('=') {
            Some((u, a)) => (u.trim(), a.trim()),
            None => match line.rsplit_once(char::is_whitespace) {
                Some((u, a)) => (u.trim(), a.trim()),
                None => {
                    return Err(Error::UserMap { line: line_no, why: "expected a user and an account".into() });
                }
            },
        };
        if user.is_empty() {
            return Err(Error::UserMap { line: line_no, why: "empty user name".into() });
        }
        if !is_valid_account(account) {
            return Err(Error::UserMap {
                line: line_no,
                why: format!("not an account name: {}", text::quote(account.as_bytes())),
            });
        }
        if let Some(first) = first_line.insert(user.to_owned(), line_no) {
            return Err(Error::UserMap {
                line: line_no,
                why: format!("user {} is already mapped on line {first}", text::quote(user.as_bytes())),
            });
        }
        map.insert(user.to_owned(), account.to_owned());
    }
    Ok(map)
}

/// The year of a syslog time (which has none), by DESIGN §5: the year of the
/// reference (a file's modification time), and the year before when that
/// would put the line after it.
///
/// There is no slack: a file's lines were all written by its modification
/// time, so a line even a minute after it is from the year before. Lines
/// read as they are written (`tail`) take [`live_year_reference`], which
/// allows the clock skew DESIGN §3 allows.
pub fn syslog_year(month: u32, day: u32, h: u32, mi: u32, s: u32, tz: Tz, reference: DateTime<Utc>) -> i32 {
    let y = reference.with_timezone(&tz).year();
    let candidate = NaiveDate::from_ymd_opt(y, month, day)
        .and_then(|d| d.and_hms_opt(h, mi, s.min(59)))
        .and_then(|t| local_to_utc(t, tz));
    match candidate {
        Some(t) if t > reference => y - 1,
        // Feb 29 in a year without it: the year before cannot have it either,
        // unless it is the leap year, so look back up to 4 years.
        None if month == 2 && day == 29 => {
            (y - 4..y).rev().find(|y| NaiveDate::from_ymd_opt(*y, 2, 29).is_some()).unwrap_or(y)
        }
        _ => y,
    }
}

/// A zoneless time read in `tz`: the earlier instant when it is ambiguous
/// (a clock set back), `None` when it does not exist (a clock set forward).
pub fn local_to_utc(t: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    if tz == Tz::UTC {
        return Some(t.and_utc());
    }
    match tz.from_local_datetime(&t) {
        LocalResult::Single(x) => Some(x.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

/// Everything a reader needs besides the line.
#[derive(Debug, Clone)]
pub struct Context {
    /// Whose calls these are.
    pub accounts: AccountRule,
    /// The zone of times written without one (`--timezone`; default UTC).
    pub timezone: Tz,
    /// The file's modification time (or [`live_year_reference`], for stdin and tail): syslog lines take their year from it.
    pub year_reference: DateTime<Utc>,
    /// The route, user-agent, override and WebDAV tables.
    pub classifier: Arc<Classifier>,
}

impl Context {
    /// A context with the shipped tables, UTC and [`live_year_reference`] as the year reference.
    pub fn new(accounts: AccountRule) -> Context {
        Context {
            accounts,
            timezone: Tz::UTC,
            year_reference: live_year_reference(),
            classifier: Arc::new(Classifier::default()),
        }
    }

    /// Sets the zone of zoneless times.
    pub fn with_timezone(mut self, tz: Tz) -> Context {
        self.timezone = tz;
        self
    }

    /// Sets the year reference (the file's modification time).
    pub fn with_year_reference(mut self, t: DateTime<Utc>) -> Context {
        self.year_reference = t;
        self
    }

    /// Sets the tables.
    pub fn with_classifier(mut self, c: Arc<Classifier>) -> Context {
        self.classifier = c;
        self
    }

    /// A zoneless time read in `--timezone`, or a line error naming `field`.
    pub(crate) fn local(&self, line: u64, field: &'static str, t: NaiveDateTime) -> Result<DateTime<Utc>> {
        local_to_utc(t, self.timezone).ok_or_else(|| {
            Error::line(line, field, format!("{t} does not exist in {} (the clock was set forward)", self.timezone))
        })
    }

    /// A new event for a call that starts on `line`, with the line's id and the account; the other fields empty.
    pub(crate) fn event(
        &self,
        line: SourceLine,
        time: DateTime<Utc>,
        interface: Interface,
        operation: Operation,
        account: String,
    ) -> CallEvent {
        CallEvent::new(line.key.id(), account, time, interface, operation)
    }

    /// The account of a call from this host and user.
    pub(crate) fn account(&self, line: u64, host: Option<&str>, user: Option<&str>) -> Result<String> {
        self.accounts.resolve(line, host, user)
    }

    /// Applies the interface overrides to a finished event (by api key, user, client network).
    pub(crate) fn overrides(&self, e: &mut CallEvent) {
        self.classifier.apply_overrides(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn accounts_resolve_or_say_why_not() {
        assert_eq!(AccountRule::fixed("acme").unwrap().resolve(1, None, None).unwrap(), "acme");
        assert!(matches!(AccountRule::fixed("Acme"), Err(Error::BadAccount(_))));
        let host = AccountRule::Host;
        assert_eq!(host.resolve(1, Some("ACME.files.example.com"), None).unwrap(), "acme");
        assert_eq!(host.resolve(1, Some("acme:443"), None).unwrap(), "acme");
        let e = host.resolve(7, Some("-"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 7: account cannot be resolved: --account-from host, and the line has no host name"
        );
        assert!(host.resolve(1, Some("_bad.example"), None).is_err());
        let map = AccountRule::UserMap(parse_user_map("alice acme\n# c\n\nbob smith = globex\n").unwrap());
        assert_eq!(map.resolve(1, None, Some("bob smith")).unwrap(), "globex");
        assert!(map.resolve(1, None, Some("carol")).unwrap_err().to_string().contains("not in the user map"));
        assert!(AccountRule::Unset.resolve(1, Some("a"), Some("b")).is_err());
    }

    #[test]
    fn user_maps_report_bad_lines() {
        assert_eq!(
            parse_user_map("alice\n").unwrap_err(),
            Error::UserMap { line: 1, why: "expected a user and an account".into() }
        );
        assert!(parse_user_map("ok acme\nbob Not-An-Account\n")
            .unwrap_err()
            .to_string()
            .starts_with("user map line 2:"));
        assert!(parse_user_map(" = acme").is_err());
    }

    #[test]
    fn a_user_mapped_twice_is_refused_with_both_lines() {
        let e = parse_user_map("alice acme\n# c\nbob globex\nbob initech\n").unwrap_err();
        assert_eq!(e.to_string(), "user map line 4: user \"bob\" is already mapped on line 3");
        // The same account twice is refused too: the map says one thing per user.
        assert!(parse_user_map("bob = globex\nbob globex\n").is_err());
        // Users that differ only in case or domain are different users.
        assert_eq!(parse_user_map("alice acme\nACME\\alice acme2\nAlice acme3\n").unwrap().len(), 3);
    }

    #[test]
    fn a_host_that_is_an_address_names_no_account() {
        let host = AccountRule::Host;
        for h in [
            "10.0.0.5",
            "10.0.0.5:8443",
            "127.0.0.1:80",
            "[2001:db8::1]:443",
            "[::1]",
            "2001:db8::1",
            "::ffff:10.0.0.5",
        ] {
            let e = host.resolve(3, Some(h), None).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("line 3: account cannot be resolved: host \"{h}\" is an IP address, not a name"),
                "{h}"
            );
        }
        // Names that start with digits are names.
        assert_eq!(host.resolve(1, Some("10x.files.example.com"), None).unwrap(), "10x");
        assert_eq!(host.resolve(1, Some("123.example.com:443"), None).unwrap(), "123");
        assert_eq!(host.resolve(1, Some("ACME.Files.Example.COM."), None).unwrap(), "acme");
    }

    #[test]
    fn account_from_specs() {
        assert_eq!("host".parse::<AccountFrom>().unwrap(), AccountFrom::Host);
        assert_eq!("user:/m".parse::<AccountFrom>().unwrap(), AccountFrom::UserMap("/m".into()));
        assert_eq!("header:X-Site".parse::<AccountFrom>().unwrap().to_string(), "header:X-Site");
        assert!("user:".parse::<AccountFrom>().is_err());
        assert!("ip".parse::<AccountFrom>().unwrap_err().to_string().starts_with("bad --account-from rule \"ip\""));
        assert!(AccountRule::from_spec(&AccountFrom::Bearer).is_err());
    }

    #[test]
    fn syslog_years_follow_the_modification_time() {
        let tz = Tz::UTC;
        let mtime = utc("2025-01-02T00:30:00Z");
        assert_eq!(syslog_year(12, 31, 23, 59, 59, tz, mtime), 2024);
        assert_eq!(syslog_year(1, 2, 0, 20, 0, tz, mtime), 2025);
        assert_eq!(syslog_year(1, 2, 0, 30, 0, tz, mtime), 2025, "the modification time itself");
        // After the modification time, even by a minute or within the day, is the year before.
        assert_eq!(syslog_year(1, 2, 0, 31, 0, tz, mtime), 2024);
        assert_eq!(syslog_year(1, 2, 20, 0, 0, tz, mtime), 2024);
        assert_eq!(syslog_year(1, 4, 0, 0, 0, tz, mtime), 2024);
        assert_eq!(syslog_year(2, 29, 0, 0, 0, tz, utc("2025-03-01T00:00:00Z")), 2024);
        // In a zone ahead of UTC, the local year has already turned.
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(syslog_year(1, 1, 8, 0, 0, tokyo, utc("2024-12-31T23:30:00Z")), 2025);
    }

    #[test]
    fn a_log_that_starts_on_new_year_noon_stays_in_its_year() {
        // A year of lines from Jan 1 12:00, its last written just before an mtime of Jan 1 00:30.
        let mtime = utc("2025-01-01T00:30:00Z");
        assert_eq!(syslog_year(1, 1, 12, 0, 0, Tz::UTC, mtime), 2024, "not in the future");
        assert_eq!(syslog_year(12, 31, 23, 59, 0, Tz::UTC, mtime), 2024);
        assert_eq!(syslog_year(1, 1, 0, 29, 0, Tz::UTC, mtime), 2025);
    }

    #[test]
    fn live_lines_allow_five_minutes_of_clock_skew() {
        let now = utc("2025-03-10T12:00:00Z");
        let reference = now + CLOCK_SKEW;
        // A line a few seconds, or up to five minutes, ahead of this clock stays in this year.
        assert_eq!(syslog_year(3, 10, 12, 0, 30, Tz::UTC, reference), 2025);
        assert_eq!(syslog_year(3, 10, 12, 5, 0, Tz::UTC, reference), 2025);
        assert_eq!(syslog_year(3, 10, 12, 5, 1, Tz::UTC, reference), 2024);
        // Across New Year: a line of Dec 31 read at 00:02 on Jan 1, and one of Jan 1 read at 23:58 on Dec 31.
        let reference = utc("2025-01-01T00:02:00Z") + CLOCK_SKEW;
        assert_eq!(syslog_year(12, 31, 23, 59, 0, Tz::UTC, reference), 2024);
        let reference = utc("2024-12-31T23:58:00Z") + CLOCK_SKEW;
        assert_eq!(syslog_year(1, 1, 0, 1, 0, Tz::UTC, reference), 2025);
        assert!(live_year_reference() > Utc::now() + chrono::Duration::minutes(4));
    }

    #[test]
    fn local_times_in_gaps_and_folds() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let gap = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(local_to_utc(gap, ny), None);
        let fold = NaiveDate::from_ymd_opt(2024, 11, 3).unwrap().and_hms_opt(1, 30, 0).unwrap();
        assert_eq!(local_to_utc(fold, ny).unwrap(), utc("2024-11-03T05:30:00Z"));
    }
}
