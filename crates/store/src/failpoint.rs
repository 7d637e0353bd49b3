//! Fault injection at the steps that write, for the crash and failure tests.
//!
//! Compiled in only with the `failpoints` feature, which the workspace's
//! tests turn on (a dev-dependency feature) and release builds never see.
//! Without it, [`hit`] is an inline `None` and costs nothing.
//!
//! `CALLMETER_FAILPOINTS` names the faults of one process, comma-separated:
//! `NAME=N:ACTION`, where the point `NAME` acts on its `N`th hit (1 = the
//! first) and `ACTION` is `crash` (the process kills itself with SIGKILL, as
//! `kill -9` would), `error` (the step fails with an I/O error, once),
//! `panic` (the thread panics, as a broken assertion would), or `sleep-MS`
//! (the step waits). For example
//! `CALLMETER_FAILPOINTS=checkpoint.after_keys=2:crash,sync=5:error`.
//! The names are the `&'static str`s passed to [`hit`] in this crate;
//! `docs/exactly-once.md` lists them.

/// What a failpoint does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub(crate) enum Fault {
    /// The step returns an I/O error.
    Error,
}

/// Checks the failpoint `name`: a crash or a sleep happens here; an error is
/// returned for the caller to fail its step with.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &'static str) -> Option<Fault> {
    None
}

/// Checks the failpoint `name`: a crash or a sleep happens here; an error is
/// returned for the caller to fail its step with.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &'static str) -> Option<Fault> {
    armed::hit(name)
}

/// `Err` with an I/O error naming the failpoint when it fires with `error`.
pub(crate) fn check(name: &'static str) -> Result<(), crate::StoreError> {
    match hit(name) {
        Some(Fault::Error) => Err(crate::StoreError::Io(std::io::Error::other(format!("failpoint {name}")))),
        None => Ok(()),
    }
}

#[cfg(feature = "failpoints")]
mod armed {
    use super::Fault;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Action {
        Crash,
        Error,
        Panic,
        Sleep(u64),
    }

    struct Point {
        at: u64,
        action: Action,
        hits: AtomicU64,
    }

    fn points() -> &'static HashMap<String, Point> {
        static POINTS: OnceLock<HashMap<String, Point>> = OnceLock::new();
        POINTS.get_or_init(|| parse(&std::env::var("CALLMETER_FAILPOINTS").unwrap_or_default()))
    }

    fn parse(spec: &str) -> HashMap<String, Point> {
        let mut out = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let parsed = item.split_once('=').and_then(|(name, rest)| {
                let (n, action) = rest.split_once(':')?;
                let action = match action {
                    "crash" => Action::Crash,
                    "error" => Action::Error,
                    "panic" => Action::Panic,
                    s => Action::Sleep(s.strip_prefix("sleep-")?.parse().ok()?),
                };
                Some((name.to_owned(), Point { at: n.parse().ok()?, action, hits: AtomicU64::new(0) }))
            });
            match parsed {
                Some((name, point)) => {
                    out.insert(name, point);
                }
                None => panic!("CALLMETER_FAILPOINTS: {item:?} is not NAME=N:crash|error|panic|sleep-MS"),
            }
        }
        out
    }

    pub(super) fn hit(name: &'static str) -> Option<Fault> {
        let points = points();
        if points.is_empty() {
            return None;
        }
        let point = points.get(name)?;
        if point.hits.fetch_add(1, Ordering::SeqCst) + 1 != point.at {
            return None;
        }
        match point.action {
            Action::Crash => {
                eprintln!("failpoint {name}: crashing");
                // SIGKILL, as `kill -9` would: no destructor, no buffer flushed.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                loop {
                    std::thread::park();
                }
            }
            Action::Error => {
                eprintln!("failpoint {name}: failing");
                Some(Fault::Error)
            }
            Action::Panic => panic!("failpoint {name}: panicking"),
            Action::Sleep(ms) => {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                None
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn specs_parse() {
            let p = super::parse("a.b=2:crash, c=1:error,d=3:sleep-20");
            assert_eq!(p["a.b"].at, 2);
            assert_eq!(p["a.b"].action, super::Action::Crash);
            assert_eq!(p["c"].action, super::Action::Error);
            assert_eq!(p["d"].action, super::Action::Sleep(20));
        }
    }
}

/// Runs the test `name` (its path in this crate) in a child process of the
/// test binary with `CALLMETER_FAILPOINTS=spec` (failpoints are read once a
/// process), and asserts it passed there, killing it after 60 s. True in
/// that child, where the test's body is to run; false in the parent, once
/// the child passed.
#[cfg(all(test, feature = "failpoints"))]
pub(crate) fn in_child(name: &str, spec: &str) -> bool {
    const CHILD: &str = "CALLMETER_FAILPOINT_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("CALLMETER_FAILPOINTS", spec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the child test {name} did not end in 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    false
}
