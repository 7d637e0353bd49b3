//! The Combined log the benchmarks read: REST, WebDAV and web requests with
//! realistic user agents, ten lines a second from 20 days ago. Shared by
//! `benches/formats.rs` and `benches/audit.rs` (both read the same file).

use std::io::{BufWriter, Write};
use std::path::Path;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

const AGENTS: [&str; 6] = [
    "python-requests/2.31.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "Microsoft-WebDAV-MiniRedir/10.0.19045",
    "Files.com Desktop/2.3.1",
    "Go-http-client/1.1",
];

/// One Combined line; times run forward from `start`, ten lines a second.
fn line(i: u64, start: chrono::DateTime<chrono::Utc>, out: &mut Vec<u8>) {
    let h = mix(i);
    let t = start + chrono::Duration::milliseconds(i as i64 * 100);
    let (method, path, status) = match h % 10 {
        0..=4 => ("GET", format!("/api/rest/v1/folders/customers/c{}/inbox", h % 997), 200),
        5 => ("POST", format!("/api/rest/v1/files/customers/c{}/in/report-{}.csv", h % 997, i), 201),
        6 => ("GET", format!("/api/rest/v1/files/customers/c{}/out/{}.pdf", h % 997, h % 50), 200),
        7 => ("PROPFIND", format!("/dav/customers/c{}/", h % 997), 207),
        8 => ("PUT", format!("/dav/customers/c{}/upload-{}.bin", h % 997, i), 201),
        _ => ("GET", "/web/dashboard".to_owned(), if h.is_multiple_of(7) { 404 } else { 200 }),
    };
    let _ = writeln!(
        out,
        r#"198.51.100.{} - user{} [{}] "{method} {path} HTTP/1.1" {status} {} "https://app.example.com/" "{}""#,
        h % 250,
        (h >> 8) % 40,
        t.format("%d/%b/%Y:%H:%M:%S +0000"),
        (h >> 16) % 100_000,
        AGENTS[((h >> 24) % AGENTS.len() as u64) as usize],
    );
}

pub fn write_log(path: &Path, bytes: u64) -> u64 {
    let start = chrono::Utc::now() - chrono::Duration::days(20);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create log"));
    let mut buf = Vec::with_capacity(1 << 16);
    let (mut written, mut i) = (0u64, 0u64);
    while written < bytes {
        buf.clear();
        for _ in 0..256 {
            line(i, start, &mut buf);
            i += 1;
        }
        out.write_all(&buf).expect("write log");
        written += buf.len() as u64;
    }
    out.flush().expect("flush");
    i
}
