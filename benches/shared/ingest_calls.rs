//! The calls the ingest benchmarks post: 10 % of them repeat an earlier id
//! (duplicates), spread over 200 accounts with a skew, as NDJSON batches of
//! 1,000. Shared by `benches/ingest.rs` and `benches/webhooks.rs`, so that
//! the webhook benchmark's "half of ingest's top rate" is a rate of the very
//! calls the ingest figures are about.

use std::io::Write;

/// Calls per posted batch.
pub const BATCH: usize = 1000;
pub const ACCOUNTS: u64 = 200;

pub struct Call {
    pub account: String,
    pub id: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub interface: &'static str,
    pub operation: &'static str,
    pub method: &'static str,
    pub path: String,
    pub status: i32,
    pub api_key: String,
    pub user: String,
    pub client_ip: String,
    pub user_agent: &'static str,
    pub bytes: i64,
    pub duration_ms: f64,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

/// The call whose id's number is `serial`.
pub fn call(serial: u64, now: chrono::DateTime<chrono::Utc>) -> Call {
    let h = mix(serial);
    let r = (h % 10_000) as f64 / 10_000.0;
    let account = (r * r * ACCOUNTS as f64) as u64;
    let (interface, operation, method) = match (h >> 16) % 20 {
        0..=7 => ("rest", "list", "GET"),
        8..=9 => ("rest", "write", "POST"),
        10 => ("rest", "read", "GET"),
        11..=13 => ("sftp", "stat", "lstat"),
        14..=15 => ("ftp", "read", "RETR"),
        16 => ("webdav", "list", "PROPFIND"),
        17..=18 => ("web", "read", "GET"),
        _ => ("mount", "list", "PROPFIND"),
    };
    Call {
        account: format!("acct{account:04}"),
        id: format!("{serial:016x}"),
        time: now - chrono::Duration::milliseconds(((h >> 24) % 3_600_000) as i64),
        interface,
        operation,
        method,
        path: format!("{}/inbox/{}", account_folder(account), (h >> 40) % 50),
        status: if (h >> 8).is_multiple_of(50) { 404 } else { 200 },
        api_key: format!("key{}", (h >> 44) % 4),
        user: format!("user{}", (h >> 48) % 10),
        client_ip: format!("203.0.113.{}", (h >> 52) % 250),
        user_agent: "python-requests/2.31",
        bytes: ((h >> 20) % 100_000) as i64,
        duration_ms: ((h >> 30) % 5000) as f64 / 10.0,
    }
}

/// The folder that holds every path of account number `account`.
pub fn account_folder(account: u64) -> String {
    format!("/api/rest/v1/folders/customers/c{account}")
}

/// The serial of the call at position `i`: every tenth repeats an earlier id.
pub fn serial_at(i: u64) -> u64 {
    if i % 10 == 9 {
        let earlier = mix(i) % i; // some earlier position, which may be in another batch
        serial_at_unique(earlier)
    } else {
        serial_at_unique(i)
    }
}

fn serial_at_unique(i: u64) -> u64 {
    if i % 10 == 9 {
        i - 1
    } else {
        i
    }
}

/// Whether the call at position `i` is the first with its id (the server accepts it).
pub fn is_first(i: u64) -> bool {
    i % 10 != 9
}

pub fn ndjson(c: &Call, out: &mut Vec<u8>) {
    let _ = writeln!(
        out,
        r#"{{"id":"{}","account":"{}","time":"{}","interface":"{}","operation":"{}","method":"{}","path":"{}","status":{},"api_key":"{}","user":"{}","client_ip":"{}","user_agent":"{}","bytes":{},"duration_ms":{}}}"#,
        c.id,
        c.account,
        c.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        c.interface,
        c.operation,
        c.method,
        c.path,
        c.status,
        c.api_key,
        c.user,
        c.client_ip,
        c.user_agent,
        c.bytes,
        c.duration_ms
    );
}

/// The NDJSON bodies of `calls` calls in batches of [`BATCH`]; shared bytes:
/// a client sends a batch without copying it.
pub fn bodies(calls: u64, now: chrono::DateTime<chrono::Utc>) -> Vec<bytes::Bytes> {
    let batches = calls.div_ceil(BATCH as u64) as usize;
    (0..batches)
        .map(|b| {
            let mut out = Vec::with_capacity(BATCH * 330);
            for i in (b * BATCH) as u64..((b + 1) * BATCH).min(calls as usize) as u64 {
                ndjson(&call(serial_at(i), now), &mut out);
            }
            bytes::Bytes::from(out)
        })
        .collect()
}
