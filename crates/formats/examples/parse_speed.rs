//! How fast Combined log lines are read and classified, on one core.
//!
//! ```text
//! cargo run --release -p callmeter-formats --example parse_speed [LINES]
//! ```
//!
//! Generates LINES (default 2,000,000) realistic Combined lines in memory (REST
//! listings with cursors, uploads, downloads, WebDAV, browsers and SDKs, IPv4
//! and IPv6 clients, a few escaped quotes), then times reading them all into
//! call events, and prints lines per second. Events are dropped as they come,
//! as `import` drops them once sent.

use callmeter_formats::{parser, AccountRule, Context, Format, LineKeys};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Files.com Python SDK v1.4.2",
        "curl/8.5.0",
        "Microsoft-WebDAV-MiniRedir/10.0.19045",
        "python-requests/2.31.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        "Go-http-client/2.0",
        "Some \\\"quoted\\\" agent/1.0",
    ];
    let requests = [
        "GET /api/rest/v1/folders/customers/acme/inbox?per_page=1000&cursor=ZXhhbXBsZQ HTTP/1.1",
        "POST /api/rest/v1/file_actions/begin_upload/customers/acme/inbox/invoice-2024-0001.pdf HTTP/1.1",
        "POST /api/rest/v1/files/customers/acme/inbox/invoice-2024-0001.pdf HTTP/1.1",
        "GET /api/rest/v1/files/reports/2024/Q1%20summary.xlsx HTTP/2.0",
        "PROPFIND /dav/shared/projects/ HTTP/1.1",
        "GET /api/rest/v1/file_actions/metadata/reports/2024 HTTP/1.1",
        "DELETE /api/rest/v1/files/tmp/upload-7f3a.part HTTP/1.1",
        "GET /index.html HTTP/1.1",
    ];
    let mut text = Vec::with_capacity(n * 230);
    for i in 0..n {
        let ip = if i % 5 == 0 {
            format!("2001:db8::{:x}", i % 65_536)
        } else {
            format!("203.0.{}.{}", (i / 256) % 256, i % 256)
        };
        let line = format!(
            "{ip} - {} [15/Jan/2024:{:02}:{:02}:{:02} +0000] \"{}\" {} {} \"https://app.example.com/\" \"{}\" 0.{:03}\n",
            if i % 3 == 0 { "alice" } else { "-" },
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            requests[i % requests.len()],
            [200, 201, 207, 404][i % 4],
            i % 100_000,
            agents[(i / 7) % agents.len()],
            i % 1000,
        );
        text.extend_from_slice(line.as_bytes());
    }
    // Best of three rounds: this is a shared machine, and a round that a
    // neighbour slowed down says nothing about the reader.
    let mut best = f64::MAX;
    let (mut events, mut errors) = (0usize, 0usize);
    for round in 1..=3 {
        let ctx = Context::new(AccountRule::fixed("acme").expect("valid"));
        let mut p = parser(Format::Combined, ctx);
        // Every line's content key, as `import` makes them: one hash and one count each.
        let mut keys = LineKeys::new(None);
        let mut out = Vec::with_capacity(16);
        (events, errors) = (0, 0);
        let start = Instant::now();
        // Lines are found as `import` finds them (`BufRead::read_until`): with memchr.
        let mut at = 0;
        while at < text.len() {
            let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
            let line = &text[at..end];
            at = end + 1;
            if p.line(keys.next(line), line, &mut out).is_err() {
                errors += 1;
            }
            events += out.len();
            out.clear();
        }
        p.finish(&mut out);
        let secs = start.elapsed().as_secs_f64();
        println!("round {round}: {:.0} lines/s ({secs:.3} s)", n as f64 / secs);
        best = best.min(secs);
    }
    println!(
        "{n} combined lines ({:.0} MB): best {:.0} lines/s on one core, {events} events, {errors} errors",
        text.len() as f64 / 1e6,
        n as f64 / best
    );
    assert_eq!((events, errors), (n, 0), "every generated line is one call");
}
