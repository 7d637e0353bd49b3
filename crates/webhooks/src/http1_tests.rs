//! The exchange against answers given in every split: whole, a byte at a
//! time, cut at each place; the framings, their ends and their failures;
//! and random damage (no panic, nothing kept past the bound).

use super::{post, Failure, Found, Framing, Head, Wire, CLOSED, CLOSED_IN_BODY, MAX_HEAD_BYTES};
use crate::fuzzing::Scripted;

/// What one exchange gave: the head (or the failure), the body kept, why
/// reading it stopped, whether the connection was left ready.
type Outcome = (Result<Head, Failure>, Vec<u8>, Option<String>, bool);

fn exchange(pieces: Vec<Vec<u8>>, max: usize) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut wire = Wire::new(Scripted { pieces: pieces.into(), written: Vec::new() });
        wire.write(b"POST / HTTP/1.1\r\n\r\n").await.unwrap();
        let head = wire.read_head().await;
        assert_eq!(wire.io.written, b"POST / HTTP/1.1\r\n\r\n", "the request is written whole");
        let mut body = Vec::new();
        let (why, ready) = match &head {
            Ok(h) => wire.read_body(h, max, &mut body).await,
            Err(_) => (None, false),
        };
        assert!(body.len() <= max, "at most the bound is kept");
        (head, body, why, ready)
    })
}

/// The outcome of `answer` given whole, a byte at a time, and cut in two at
/// every place: the same each time.
fn answer(answer: &[u8], max: usize) -> Outcome {
    let whole = exchange(vec![answer.to_vec()], max);
    let bytes = exchange(answer.iter().map(|b| vec![*b]).collect(), max);
    assert_eq!(format!("{whole:?}"), format!("{bytes:?}"), "a byte at a time");
    for cut in 1..answer.len() {
        let two = exchange(vec![answer[..cut].to_vec(), answer[cut..].to_vec()], max);
        assert_eq!(format!("{whole:?}"), format!("{two:?}"), "cut at {cut}");
    }
    whole
}

fn head(status: u16, framing: Framing, reusable: bool) -> Head {
    Head { status, retry_after: None, framing, reusable }
}

#[test]
fn a_content_length_answer_is_read_to_its_end() {
    let (h, body, why, ready) = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-a: b\r\n\r\nhello", 1024);
    assert_eq!(h.unwrap(), head(200, Framing::Length(5), true));
    assert_eq!((body.as_slice(), why, ready), (&b"hello"[..], None, true));
}

#[test]
fn a_chunked_answer_is_joined_with_its_extensions_and_trailers_read() {
    let chunked = b"HTTP/1.1 500 Oops\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
        4;name=value\r\nbusy\r\n1\r\n!\r\n0\r\nx-trailer: 1\r\n\r\n";
    let (h, body, why, ready) = answer(chunked, 1024);
    assert_eq!(h.unwrap(), head(500, Framing::Chunked, true));
    assert_eq!((body.as_slice(), why, ready), (&b"busy!"[..], None, true));
}

#[test]
fn an_answer_without_a_length_is_read_until_the_close() {
    let (h, body, why, ready) = answer(b"HTTP/1.1 200 OK\r\n\r\nall of it", 1024);
    assert_eq!(h.unwrap(), head(200, Framing::UntilClose, false));
    assert_eq!((body.as_slice(), why, ready), (&b"all of it"[..], None, false));
    let (h, ..) = answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nzz", 1024);
    assert_eq!(h.unwrap().framing, Framing::UntilClose, "a coding that is not chunked last");
}

#[test]
fn answers_without_a_body_have_none() {
    for status in [204, 304] {
        let (h, body, _, ready) = answer(format!("HTTP/1.1 {status} X\r\ncontent-length: 7\r\n\r\n").as_bytes(), 1024);
        assert_eq!((h.unwrap().framing, body.len(), ready), (Framing::Empty, 0, true), "{status}");
    }
    let (h, _, _, ready) = answer(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", 1024);
    assert_eq!((h.unwrap().framing, ready), (Framing::Empty, true));
}

#[test]
fn a_connection_is_kept_only_when_the_answer_allows_it() {
    let not_kept: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: upgrade, Close\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
        // Both framings: read by the coding, then closed (RFC 9112 §6.3).
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for a in not_kept {
        let (h, _, why, ready) = answer(a, 1024);
        assert!(h.is_ok() && why.is_none() && !ready, "{}", String::from_utf8_lossy(a));
    }
    let (_, _, _, ready) = answer(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n", 1024);
    assert!(ready, "a 1.0 answer that keeps the connection");
    let coded = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (h, _, _, ready) = answer(coded, 1024);
    assert!(h.is_ok() && !ready, "a coded 1.0 answer closes its connection (RFC 9112 §6.1)");
    let (_, _, _, ready) = answer(b"HTTP/1.1 200 OK\r\nconnection: close, \xe9\r\ncontent-length: 0\r\n\r\n", 1024);
    assert!(!ready, "a close beside a byte that is no text");
    let (h, ..) = answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, \r\n\r\n0\r\n\r\n", 1024);
    assert_eq!(h.unwrap().framing, Framing::Chunked, "an empty list element is no coding");
    let (_, _, _, ready) = exchange(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nab".to_vec()], 1024);
    assert!(!ready, "bytes past the answer");
}

#[test]
fn interim_answers_are_skipped_and_a_switch_is_refused() {
    let (h, body, ..) =
        answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok", 64);
    assert_eq!((h.unwrap().status, body.as_slice()), (201, &b"ok"[..]));
    let (h, ..) = answer(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n", 64);
    assert!(matches!(h, Err(Failure::Failed(why)) if why.contains("switched protocols")));
    // A flood of interim answers ends at once, not at the deadline.
    let flood = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(1_000);
    let (h, ..) = exchange(vec![flood], 64);
    assert!(matches!(&h, Err(Failure::Failed(why)) if why.contains("more than 8 interim")), "{h:?}");
    let mut big = Vec::new();
    for _ in 0..8 {
        big.extend_from_slice(format!("HTTP/1.1 100 C\r\nx: {}\r\n\r\n", "v".repeat(3_000)).as_bytes());
    }
    let (h, ..) = exchange(vec![big], 64);
    assert!(
        matches!(&h, Err(Failure::Failed(why)) if why.contains("head longer than 16 KiB")),
        "interim heads count: {h:?}"
    );
}

#[test]
fn retry_after_is_kept() {
    let (h, ..) = answer(b"HTTP/1.1 429 Slow down\r\nRetry-After:  120 \r\ncontent-length: 0\r\n\r\n", 64);
    assert_eq!(h.unwrap().retry_after.as_deref(), Some("120"));
}

#[test]
fn a_body_past_the_bound_is_cut_and_the_connection_not_kept() {
    let (h, body, why, ready) = answer(b"HTTP/1.1 500 X\r\ncontent-length: 10\r\n\r\n0123456789", 4);
    assert_eq!((h.unwrap().status, body.as_slice(), why, ready), (500, &b"0123"[..], None, false));
    let (_, body, why, ready) =
        answer(b"HTTP/1.1 500 X\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 4);
    assert_eq!((body.as_slice(), why, ready), (&b"abcd"[..], None, false));
    let (_, body, _, ready) = answer(b"HTTP/1.1 500 X\r\n\r\nuntil close", 5);
    assert_eq!((body.as_slice(), ready), (&b"until"[..], false));
    let (_, body, _, ready) = answer(b"HTTP/1.1 200 X\r\ncontent-length: 4\r\n\r\nabcd", 4);
    assert_eq!((body.as_slice(), ready), (&b"abcd"[..], true), "a body exactly the bound is whole");
}

#[test]
fn a_close_is_told_by_where_it_came() {
    let (h, ..) = exchange(vec![], 64);
    assert_eq!(h.unwrap_err(), Failure::ClosedBefore(CLOSED.into()), "before any byte: the retryable close");
    let (h, ..) = answer(b"HTTP/1.1 200 OK\r\ncontent-le", 64);
    assert!(matches!(h, Err(Failure::Failed(why)) if why.contains("during the answer's head")));
    let (h, body, why, ready) = answer(b"HTTP/1.1 500 X\r\ncontent-length: 10\r\n\r\npart", 64);
    assert_eq!(
        (h.unwrap().status, body.as_slice(), why.as_deref(), ready),
        (500, &b"part"[..], Some(CLOSED_IN_BODY), false)
    );
    let (_, _, why, _) = answer(b"HTTP/1.1 500 X\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab", 64);
    assert_eq!(why.as_deref(), Some(CLOSED_IN_BODY));
}

#[test]
fn malformed_answers_are_said_so() {
    let cases: [(&[u8], &str); 7] = [
        (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.1 answer"),
        (b"SSH-2.0-OpenSSH_9\r\n\r\n", "not an HTTP/1.1 answer"),
        (b"HTTP/1.1 099 X\r\n\r\n", "status 099"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "content-length is not a length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n", "content-length is not a length"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", "two different content-lengths"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "not an HTTP/1.1 answer"),
    ];
    for (a, expected) in cases {
        let (h, ..) = exchange(vec![a.to_vec()], 64);
        assert!(matches!(&h, Err(Failure::Failed(why)) if why.contains(expected)), "{h:?} for {a:?}");
    }
    let (h, ..) = exchange(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx".to_vec()], 64);
    assert!(h.is_ok(), "the same length twice is one length");
    for size in ["zz", "+5", " 5", "-1"] {
        let a = format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{size}\r\nabcde\r\n0\r\n\r\n");
        let (_, _, why, _) = exchange(vec![a.into_bytes()], 64);
        assert!(why.unwrap().contains("chunk size"), "{size:?}");
    }
    let (_, _, why, _) =
        exchange(vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nabc\r\n".to_vec()], 64);
    assert!(why.unwrap().contains("longer than its size"));
}

#[test]
fn heads_lines_and_trailers_are_bounded() {
    let mut long = b"HTTP/1.1 200 OK\r\nx-a: ".to_vec();
    long.resize(MAX_HEAD_BYTES * 3, b'a');
    let (h, ..) = exchange(vec![long.clone()], 64);
    assert!(matches!(&h, Err(Failure::Failed(why)) if why.contains("head longer than 16 KiB")), "{h:?}");
    // Complete in a read that the buffer's growth let in: still too long.
    long.extend_from_slice(b"\r\n\r\n");
    let (h, ..) = exchange(vec![long[..1].to_vec(), long[1..16_383].to_vec(), long[16_383..].to_vec()], 64);
    assert!(matches!(&h, Err(Failure::Failed(why)) if why.contains("head longer than 16 KiB")), "{h:?}");
    let many: String = (0..100).map(|i| format!("x-{i}: v\r\n")).collect();
    let (h, ..) = exchange(vec![format!("HTTP/1.1 200 OK\r\n{many}\r\n").into_bytes()], 64);
    assert!(matches!(&h, Err(Failure::Failed(why)) if why.contains("more than 64 header lines")), "{h:?}");
    let mut line = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1".to_vec();
    line.resize(10_000, b'0');
    let (_, _, why, _) = exchange(vec![line.clone()], 64);
    assert!(why.unwrap().contains("chunk line longer than 1 KiB"));
    line.extend_from_slice(b"\r\n");
    let (_, _, why, _) = exchange(vec![line], 64);
    assert!(why.unwrap().contains("chunk line longer than 1 KiB"), "a long line that came whole");
    let mut trailers = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n".to_vec();
    for _ in 0..100 {
        trailers.extend_from_slice(format!("x-t: {}\r\n", "t".repeat(500)).as_bytes());
    }
    let (_, _, why, _) = exchange(vec![trailers], 64);
    assert!(why.unwrap().contains("chunk lines and trailers longer than 16 KiB"));
    // Extensions a byte at a time count too: the framing's bytes, not only its lines, are bounded.
    let mut framed = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        framed.extend_from_slice(format!("1;{}\r\nz\r\n", "e".repeat(1_000)).as_bytes());
    }
    let (_, body, why, _) = exchange(vec![framed], 1 << 16);
    assert!(why.unwrap().contains("chunk lines and trailers longer than 16 KiB"));
    assert!(body.len() < 20, "stopped at the bound, {} bytes in", body.len());
}

#[test]
fn a_request_is_written_whole_and_refuses_line_breaks() {
    let mut out = Vec::new();
    post(&mut out, "/hook?a=1", "example.com:8080", [("webhook-id", "msg_1"), ("x-key", "v")], b"{}").unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /hook?a=1 HTTP/1.1\r\nhost: example.com:8080\r\nwebhook-id: msg_1\r\nx-key: v\r\n\
         content-length: 2\r\n\r\n{}"
    );
    let refused = [
        ("x-a", "v\r\nx-b: injected"),
        ("x-a\n", "v"),
        ("", "v"),
        ("x:a", "v"),
        ("x-a", "v\0"),
        ("\tx", "folded into the line before"),
        ("x y", "v"),
        ("x-a", "\u{7f}"),
        ("Content-Length", "0"),
        ("host", "elsewhere"),
        ("transfer-encoding", "chunked"),
    ];
    for (name, value) in refused {
        assert!(post(&mut Vec::new(), "/", "h", [(name, value)], b"").is_none(), "{name:?}: {value:?}");
    }
    assert!(post(&mut Vec::new(), "/a b", "h", [], b"").is_none());
    assert!(post(&mut Vec::new(), "/", "h\r\nx: y", [], b"").is_none());
}

/// An idle connection closed by its peer is seen closed at one look; an open one is not.
#[tokio::test]
async fn an_idle_connection_closed_by_its_peer_is_seen() {
    let (ours, theirs) = tokio::io::duplex(64);
    let mut wire = Wire::new(ours);
    assert_eq!(wire.look_while_idle(), Found::Open, "open and quiet");
    drop(theirs);
    assert_eq!(wire.look_while_idle(), Found::Closed, "closed");
    let (ours, mut theirs) = tokio::io::duplex(64);
    tokio::io::AsyncWriteExt::write_all(&mut theirs, b"x").await.unwrap();
    assert_eq!(Wire::new(ours).look_while_idle(), Found::Stray, "bytes nobody asked for");
}

/// A failure quotes at most a few bytes of what the target sent.
#[test]
fn failures_quote_little_of_the_answer() {
    let long = "\u{80}".repeat(5_000);
    let a = format!("HTTP/1.1 500 X\r\ncontent-length: {long}\r\n\r\n");
    let (h, ..) = exchange(vec![a.into_bytes()], 64);
    let why = h.unwrap_err().into_text();
    assert!(why.len() < 300, "{} bytes: {why}", why.len());
    let a = format!("HTTP/1.1 500 X\r\ntransfer-encoding: chunked\r\n\r\n{}\r\n", "\u{80}".repeat(400));
    let (_, _, why, _) = exchange(vec![a.into_bytes()], 64);
    assert!(why.as_ref().unwrap().len() < 300, "{why:?}");
}

/// Random damage to good answers, given in random pieces: an outcome, never
/// a panic, and never more kept than the bound (a fuzz of the reader, a
/// fixed seed so that a failure is found again).
#[test]
fn damaged_answers_never_panic() {
    let good: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 500 X\r\ntransfer-encoding: chunked\r\n\r\n4;e=1\r\nbusy\r\n0\r\nt: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 429 Y\r\nretry-after: 5\r\nconnection: keep-alive\r\n\r\nz",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..4_000 {
        let mut a = good[round % good.len()].to_vec();
        for _ in 0..=next(4) {
            let at = next(a.len() + 1);
            match next(4) {
                0 if at < a.len() => a[at] = next(256) as u8,
                1 if at < a.len() => {
                    a.remove(at);
                }
                2 => a.insert(at, b"\r\n:;0 f"[next(7)]),
                _ => a.truncate(at),
            }
        }
        let mut pieces = Vec::new();
        let mut rest = a.as_slice();
        while !rest.is_empty() {
            let n = 1 + next(rest.len());
            pieces.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        let _ = exchange(pieces, 1 + next(8));
    }
}
