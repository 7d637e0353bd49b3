//! Clients that try to sink the server (issue 12): floods of large bodies,
//! with and without a token; slow, idle and abandoned connections.

use crate::harness::{self, ADMIN};
use bytes::Bytes;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The most a flood may take the server's resident memory to, in MiB (a
/// debug build starts near 40): bodies are read only with a token, and only
/// while they fit the budget (32 MiB here: two whole bodies; a body and what
/// is made of it weigh about three times its size at their peak).
const RSS_BOUND_MIB: u64 = 300;
/// The budget of bodies in flight of these tests, in MiB.
const BUDGET_MIB: &str = "32";

/// One answer of a flood: its status, `Retry-After` and body.
type Answer = (u16, Option<String>, String);

/// Sends `posts` posts at once, cycling through `bodies`, each with `token`,
/// from one client; returns each answer, or the client's error.
fn flood(server: &harness::Server, posts: usize, bodies: &[Bytes], token: Option<&str>) -> Vec<Result<Answer, String>> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let url = server.url("/v1/events");
    let threads: Vec<_> = (0..posts)
        .map(|i| {
            let (http, url, body) = (http.clone(), url.clone(), bodies[i % bodies.len()].clone());
            let token = token.map(str::to_owned);
            std::thread::spawn(move || {
                let mut req = http.post(url).header("content-type", "application/x-ndjson").body(body);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().map_err(|e| format!("{e:?}"))?;
                let status = resp.status().as_u16();
                let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                Ok((status, retry, resp.text().map_err(|e| e.to_string())?))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn unauthenticated_floods_are_refused_before_their_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &["--bodies-in-flight-mb", BUDGET_MIB]);
    let body = Bytes::from(vec![b' '; 16 << 20]);
    let started = Instant::now();
    let answers = flood(&server, 200, &[body], None);
    let took = started.elapsed();
    let peak = server.memory_kib("VmHWM") >> 10;
    let mut statuses = std::collections::BTreeMap::new();
    for a in &answers {
        let status = a.as_ref().map(|(s, _, _)| *s).map_err(|e| e.chars().take(200).collect::<String>());
        *statuses.entry(status).or_insert(0) += 1;
    }
    eprintln!("200 unauthenticated 16 MiB posts: answered in {took:?}, peak RSS {peak} MiB: {statuses:?}");
    assert!(answers.iter().all(|a| matches!(a, Ok((401, _, _)))), "{statuses:?}");
    for (_, _, text) in answers.iter().flatten() {
        assert!(text.contains(r#""code":"unauthorized""#), "{text}");
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(peak < RSS_BOUND_MIB, "peak {peak} MiB");
    assert!(server.metric("callmeter_refused_unauthorized_total") >= 200);
}

#[test]
fn a_body_over_the_limit_is_413_with_a_token_and_401_without() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    // Its head and the first MiB of a 20 MiB body: the answer comes from the head alone.
    let over = |token: Option<&str>| {
        let s = connect(&server);
        let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!("POST /v1/events HTTP/1.1\r\nhost: x\r\n{auth}content-length: {}\r\n\r\n", 20 << 20);
        (&s).write_all(head.as_bytes()).unwrap();
        let _ = (&s).write_all(&vec![b' '; 1 << 20]);
        let (said, _) = read_to_close(&s);
        said
    };
    let said = over(None);
    assert!(said.starts_with("HTTP/1.1 401") && said.contains(r#""code":"unauthorized""#), "{said}");
    let said = over(Some(ADMIN));
    assert!(said.starts_with("HTTP/1.1 413") && said.contains(r#""code":"too_large""#), "{said}");
}

/// A batch of 10,000 events (the most one request may carry) of `acme`,
/// ids `{batch}-{i}`, each padded with a long path to make the body nearly 16 MiB.
fn big_batch(batch: usize) -> Bytes {
    let time = harness::ago(60);
    let mut body = String::with_capacity(16 << 20);
    for i in 0..10_000 {
        let head = format!(r#"{{"id":"{batch}-{i}","account":"acme","time":"{time}","interface":"rest","path":"/"#);
        body += &head;
        body.extend(std::iter::repeat_n('p', 1_670 - head.len() - 3));
        body += "\"}\n";
    }
    assert!(body.len() <= 16 << 20 && body.len() > 16_000_000, "{}", body.len());
    Bytes::from(body)
}

#[test]
fn authenticated_floods_stay_within_the_body_budget_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &["--bodies-in-flight-mb", BUDGET_MIB]);
    let bodies: Vec<Bytes> = (0..4).map(big_batch).collect();
    let started = Instant::now();
    let answers = flood(&server, 50, &bodies, Some(ADMIN));
    let took = started.elapsed();
    let peak = server.memory_kib("VmHWM") >> 10;
    let mut accepted = [0u64; 4];
    let mut answered = [false; 4];
    let (mut ok, mut busy) = (0, 0);
    for (i, answer) in answers.iter().enumerate() {
        let (status, retry_after, text) = answer.as_ref().unwrap_or_else(|e| panic!("post {i}: {e}"));
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("post {i}: {e}: {text}"));
        match status {
            200 => {
                ok += 1;
                assert_eq!(v["accepted"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap(), 10_000, "{i}");
                accepted[i % 4] += v["accepted"].as_u64().unwrap();
                answered[i % 4] = true;
            }
            503 => {
                busy += 1;
                assert_eq!(v["error"]["code"], "busy", "{v}");
                assert_eq!(retry_after.as_deref(), Some("1"), "503 says when to retry");
            }
            other => panic!("post {i}: {other} {v}"),
        }
    }
    eprintln!("50 authenticated 16 MiB posts: answered in {took:?}, peak RSS {peak} MiB: {ok} 200, {busy} 503");
    assert!(ok >= 1 && busy >= 1, "{ok} answered 200, {busy} 503: the budget took some and refused some");
    // Every call of every batch answered 200 is stored exactly once; nothing of a refused one.
    for batch in 0..4 {
        assert_eq!(accepted[batch], if answered[batch] { 10_000 } else { 0 }, "batch {batch}");
    }
    let stored = answered.iter().filter(|a| **a).count() as u64 * 10_000;
    assert_eq!(server.usage("acme", "current")["calls"], stored);
    assert!(peak < RSS_BOUND_MIB, "peak {peak} MiB");
    assert_eq!(server.metric("callmeter_refused_bodies_in_flight_total"), busy);
    assert_eq!(server.metric("callmeter_body_bytes_in_flight"), 0, "every reservation is given back");
}

/// Short timeouts, so that the test sees them pass: a new or kept-alive
/// connection may idle 600 ms, a request's head may take 1.2 s from its
/// first byte (two clocks: a slow head outlives the idle timeout), a body 1 s.
const SHORT_TIMEOUTS: [&str; 8] =
    ["--idle-timeout-ms", "600", "--header-timeout-ms", "1200", "--body-timeout-ms", "1000", "--max-connections", "64"];

/// A raw connection to the server.
fn connect(server: &harness::Server) -> TcpStream {
    let s = TcpStream::connect(server.address()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the server closes the connection (or 10 s pass); returns what it sent and when it closed.
fn read_to_close(mut s: &TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server kept the connection open for {:?}: {e}; it sent {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
}

#[test]
fn idle_and_slow_connections_are_closed_on_their_own_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &SHORT_TIMEOUTS);
    let baseline = server.open_descriptors();

    // Idle: nothing sent; closed after the idle timeout, without an answer.
    let idle = connect(&server);
    let (said, after) = read_to_close(&idle);
    assert!(said.is_empty() && after >= Duration::from_millis(500) && after < Duration::from_secs(3), "{after:?}");

    // Slowloris: a head trickled a byte every 150 ms outlives the idle timeout, not the header one.
    let slow = connect(&server);
    let trickle = {
        let mut slow = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut sent = 0;
            for b in b"GET /v1/plans HTTP/1.1\r\nhost: x\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                if slow.write_all(&[*b]).is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(150));
            }
            sent
        })
    };
    let (said, after) = read_to_close(&slow);
    let sent = trickle.join().unwrap();
    assert!(said.is_empty(), "no answer to a head that never ended: {said}");
    assert!(after >= Duration::from_millis(1_100) && after < Duration::from_secs(4), "closed after {after:?}");
    assert!(sent < 40, "the trickle was cut, after {sent} bytes");

    // A body trickled slower than the body timeout: a 400 in the envelope, then the connection closes.
    let body = connect(&server);
    (&body)
        .write_all(format!("POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/x-ndjson\r\ncontent-length: 1000\r\n\r\n{{").as_bytes())
        .unwrap();
    let (said, after) = read_to_close(&body);
    assert!(said.starts_with("HTTP/1.1 400"), "{said}");
    assert!(said.contains(r#""code":"bad_request""#) && said.contains("not received whole within 1000 ms"), "{said}");
    // Its rest is not read for another timeout: the answer says the connection closes, and it does.
    assert!(said.to_ascii_lowercase().contains("connection: close"), "{said}");
    assert!(after < Duration::from_millis(1_900), "{after:?}");

    // Kept alive after an answer: idle again, closed after the idle timeout.
    let kept = connect(&server);
    (&kept).write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let (said, after) = read_to_close(&kept);
    assert!(said.starts_with("HTTP/1.1 200") && said.ends_with("ok\n"), "{said}");
    assert!(after >= Duration::from_millis(500) && after < Duration::from_secs(3), "{after:?}");
    assert!(server.metric("callmeter_connection_timeouts_total") >= 3);
    assert_eq!(server.metric("callmeter_body_timeouts_total"), 1);

    // Connections abandoned but left open by their clients, silent or mid-head: the server closes them all.
    let abandoned: Vec<TcpStream> = (0..60)
        .map(|i| {
            let s = connect(&server);
            if i % 2 == 1 {
                (&s).write_all(b"GET /v1/usage HTTP/1.1\r\nhost: x\r\n").unwrap();
            }
            s
        })
        .collect();
    let settled = harness::wait_for(Duration::from_secs(10), || server.open_descriptors() <= baseline);
    assert!(settled, "{} descriptors open, {baseline} before", server.open_descriptors());
    drop(abandoned);
}

#[test]
fn connections_past_the_limit_are_refused_and_abandoned_ones_give_back_their_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    // Timeouts longer than the test: the sockets close because their peers went away.
    let limits = ["--max-connections", "64", "--idle-timeout-ms", "30000", "--header-timeout-ms", "30000"];
    let server = harness::start(&dir.path().join("data"), &limits);
    let baseline = server.open_descriptors();

    // The 64 slots taken by idle connections: the next one is answered 503 and closed at once.
    let held: Vec<TcpStream> = (0..64).map(|_| connect(&server)).collect();
    assert!(harness::wait_for(Duration::from_secs(5), || server.open_descriptors() >= baseline + 64), "all taken");
    let (said, after) = read_to_close(&connect(&server));
    assert!(said.starts_with("HTTP/1.1 503") && said.contains("retry-after: 1"), "{said}");
    assert!(said.contains(r#""code":"busy""#), "{said}");
    assert!(after < Duration::from_secs(2), "closed at once, not after a timeout: {after:?}");
    drop(held);

    // A flood of connections opened and abandoned: some silent, some mid-head, some mid-body, all dropped.
    for round in 0..5 {
        let flood: Vec<TcpStream> = (0..200)
            .map(|i| {
                let s = connect(&server);
                let _ = match i % 3 {
                    0 => Ok(()),
                    1 => (&s).write_all(b"GET /v1/usage HTTP/1.1\r\nhost: x\r\nx-half: "),
                    _ => (&s).write_all(b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n[{"),
                };
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 * round));
        drop(flood);
    }
    // Every socket closes: the server's descriptors come back to what they were before.
    let settled = harness::wait_for(Duration::from_secs(10), || server.open_descriptors() <= baseline);
    let open: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(settled, "{} descriptors open, {baseline} before the flood: {open:?}", open.len());
    // The slots came back too: a new connection is served.
    assert_eq!(server.get(ADMIN, "/v1/plans").0, 200);
    assert!(server.metric("callmeter_refused_connections_total") >= 1);
}

#[test]
fn a_stop_finishes_the_request_in_progress_and_does_not_wait_for_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start(&data, &["--idle-timeout-ms", "60000", "--header-timeout-ms", "60000"]);
    let idle: Vec<TcpStream> = (0..10).map(|_| connect(&server)).collect();
    let kept = connect(&server);
    (&kept).write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    (&kept).read_exact(&mut [0u8; 12]).unwrap();

    // A post whose body is half sent when the stop comes, and the rest after.
    let body: String =
        (0..100).map(|i| harness::event("acme", &format!("s{i}"), &harness::ago(5), "rest", "") + "\n").collect();
    let (first, rest) = body.split_at(body.len() / 2);
    let post = connect(&server);
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    (&post).write_all((head + first).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    (&post).write_all(rest.as_bytes()).unwrap();
    let (said, _) = read_to_close(&post);
    assert!(said.starts_with("HTTP/1.1 200") && said.contains(r#""accepted":100"#), "{said}");
    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(stopping.elapsed() < Duration::from_secs(10), "idle connections held the stop: {:?}", stopping.elapsed());
    drop((idle, kept));
    // What it answered is stored.
    let server = harness::start(&data, &[]);
    assert_eq!(server.usage("acme", "current")["calls"], 100);
}

/// A raw authenticated NDJSON post with a chunked body: its head and first chunk.
fn chunked_post_head() -> String {
    format!(
        "POST /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{{\r\n"
    )
}

#[test]
fn chunked_trickles_hold_what_they_sent_and_are_cut_at_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A budget of one whole body: a body without a length once took all of it before a byte came.
    let flags = ["--bodies-in-flight-mb", "16", "--body-timeout-ms", "1500", "--idle-timeout-ms", "30000"];
    let server = harness::start(&dir.path().join("data"), &flags);
    let trickles: Vec<(TcpStream, std::thread::JoinHandle<()>)> = (0..3)
        .map(|_| {
            let s = connect(&server);
            (&s).write_all(chunked_post_head().as_bytes()).unwrap();
            let mut writer = s.try_clone().unwrap();
            // A chunk of one space every 200 ms, until the server closes the connection.
            let trickle = std::thread::spawn(move || {
                while writer.write_all(b"1\r\n \r\n").is_ok() {
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
            (s, trickle)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The trickles hold the bytes they sent, not 16 MiB each: a whole post still fits.
    assert!(server.metric("callmeter_body_bytes_in_flight") < 1_024);
    let (status, v) =
        server.post_events(ADMIN, &(harness::event("acme", "beside", &harness::ago(5), "rest", "") + "\n"));
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    // Each is cut at the body timeout, however steadily it sends: 400, and the connection closes.
    for (s, trickle) in trickles {
        let (said, after) = read_to_close(&s);
        assert!(said.starts_with("HTTP/1.1 400") && said.contains("not received whole within 1500 ms"), "{said}");
        assert!(said.to_ascii_lowercase().contains("connection: close"), "{said}");
        assert!(after < Duration::from_secs(3), "{after:?}");
        trickle.join().unwrap();
    }
    assert_eq!(server.metric("callmeter_body_timeouts_total"), 3);
    assert_eq!(server.metric("callmeter_body_bytes_in_flight"), 0);
    assert_eq!(server.metric("callmeter_refused_bodies_in_flight_total"), 0);
}

#[test]
fn a_client_that_never_reads_its_answers_is_closed_after_the_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--write-timeout-ms", "500", "--idle-timeout-ms", "60000", "--header-timeout-ms", "60000"];
    let server = harness::start(&dir.path().join("data"), &flags);
    let baseline = server.open_descriptors();
    // 300 pipelined requests for the description (about 120 KiB each): far more than the sockets buffer.
    let greedy = connect(&server);
    let requests = "GET /openapi.json HTTP/1.1\r\nhost: x\r\n\r\n".repeat(300);
    (&greedy).write_all(requests.as_bytes()).unwrap();
    assert!(harness::wait_for(Duration::from_secs(5), || server.open_descriptors() > baseline), "it is served");
    // Never read: the server's writes take nothing, and it closes the connection, though the client keeps it open.
    let started = Instant::now();
    let closed = harness::wait_for(Duration::from_secs(10), || server.open_descriptors() <= baseline);
    assert!(closed, "{} descriptors open, {baseline} before", server.open_descriptors());
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(server.metric("callmeter_connection_timeouts_total") >= 1);
    // A reader that keeps up is served whole.
    let (status, _) = server.get(ADMIN, "/openapi.json");
    assert_eq!(status, 200);
    drop(greedy);
}

#[test]
fn a_descriptor_limit_too_low_for_max_connections_refuses_the_start() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let serve = |max_connections: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--max-connections", max_connections, "--data"])
            .arg(dir.path().join("data"))
            .env("CALLMETER_ADMIN_TOKEN", ADMIN)
            .env_remove("CALLMETER_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // SAFETY: setrlimit only, between fork and exec. Hard and soft 400: the server cannot raise it.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 400, rlim_max: 400 };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        command.spawn().unwrap()
    };
    let refused = serve("1000").wait_with_output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("max_connections 1000 needs 1256 file descriptors"), "{said}");
    assert!(said.contains("lower max_connections to at most 144, or raise the limit"), "{said}");
    assert!(!dir.path().join("data").exists(), "refused before the store is opened");
    // One that fits starts and listens.
    let mut fits = serve("144");
    let mut stdout = std::io::BufReader::new(fits.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("listening on "), "{first:?}");
    let _ = fits.kill();
    let _ = fits.wait();
}

#[test]
fn a_usage_answer_carries_the_largest_groups_and_sums_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = harness::ago(5);
    // 1,200 api keys of one call each, and one of 10.
    let mut calls: String = (0..1_200)
        .map(|i| harness::event("acme", &format!("k{i}"), &t, "rest", &format!(r#","api_key":"key-{i:04}""#)) + "\n")
        .collect();
    for i in 0..10 {
        calls += &(harness::event("acme", &format!("big{i}"), &t, "rest", r#","api_key":"big""#) + "\n");
    }
    assert_eq!(server.post_events(ADMIN, &calls).1["accepted"], 1_210);
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/usage?group_by=api_key");
    assert_eq!(status, 200, "{v}");
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1_000);
    assert_eq!((groups[0]["key"]["api_key"].as_str(), groups[0]["calls"].as_u64()), (Some("big"), Some(10)), "{v:#}");
    assert_eq!(v["groups_truncated"], true);
    assert_eq!(v["other_groups"]["groups"], 201);
    assert_eq!(v["other_groups"]["calls"], 201);
    // Grouped by what the totals hold: few groups, nothing left out.
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/usage?group_by=interface");
    assert_eq!((status, v["groups_truncated"].as_bool()), (200, Some(false)), "{v}");
    assert!(v.get("other_groups").is_none(), "{v}");
}
