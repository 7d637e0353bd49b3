//! Audits made for a request ("live", not kept by the daily schedule) run one
//! at a time, on a thread of their own at a lower CPU priority.
//!
//! An audit keeps a core busy for as long as the account's calls take to
//! read. On the runtime's shared blocking pool, which ingest uses to parse
//! bodies, a few audits from account keys could queue ahead of ingest and
//! take every core (issue 12). Here they never share a thread with ingest,
//! never take more than one core, yield it to ingest when both want it, and
//! a request that would wait more than [`MAX_WAIT`] for the thread is
//! answered 503 with `Retry-After` instead of queueing.
//!
//! An audit made for an API request ([`LiveAudits::run_for_request`]) also
//! gives up, at its next page of calls, when its client goes away (hyper
//! drops the request's future: a flag is raised as it drops) or when it has
//! run for `live_audit_timeout_ms` (then 400, asking for a shorter range).
//! A century-long audit whose client left once kept the thread, and every
//! other account's live audit out, for a minute; one account key could loop
//! it (the second review, issue 12).

use crate::audit::GiveUp;
use crate::error::ApiError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The longest a live audit waits for the thread before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(3);
/// Seconds a refused live audit is asked to wait.
const RETRY_AFTER_SECS: u32 = 5;
/// The thread's nice value: ingest's threads (0) win a contended core.
const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The live audits' thread, and the one slot on it.
pub struct LiveAudits {
    slot: Arc<Semaphore>,
    max_wait: Duration,
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Why a live audit did not run.
#[derive(Debug)]
pub enum Refused {
    /// The thread stayed busy for the longest wait.
    Busy,
    /// The audit ran for longer than it may (the limit).
    TooLong(Duration),
    /// The audit ended in an error.
    Failed(ApiError),
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> ApiError {
        match r {
            Refused::Busy => ApiError::Busy {
                message: "another audit is running: try again shortly, or ask for a day kept by the daily audits"
                    .into(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
            Refused::TooLong(limit) => ApiError::BadRequest(format!(
                "the audit did not finish within the {} ms an audit made for a request may run \
                 (live_audit_timeout_ms): ask for a shorter range, or for a day the daily audits kept",
                limit.as_millis()
            )),
            Refused::Failed(e) => e,
        }
    }
}

/// Why an audit made for a request gives up: its client went away (the
/// request's future was dropped), or it ran past its time.
pub struct RequestStop {
    abandoned: Arc<AtomicBool>,
    deadline: Instant,
}

impl RequestStop {
    /// Whether its time ran out.
    fn timed_out(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl GiveUp for RequestStop {
    fn given_up(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed) || self.timed_out()
    }
}

/// Raises its flag when dropped: held by a request's future while its audit
/// runs, so that the audit learns when the client goes away.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl LiveAudits {
    /// Starts the thread; it ends when this is dropped. A request waits at
    /// most `max_wait` ([`MAX_WAIT`] in the server) for it.
    pub fn start(max_wait: Duration) -> std::io::Result<LiveAudits> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("live-audit".into()).spawn(move || {
            lower_priority();
            for job in queue {
                // A panicking audit drops its answer's sender: its request gets a 500, the thread lives on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })?;
        Ok(LiveAudits { slot: Arc::new(Semaphore::new(1)), max_wait, jobs: Mutex::new(jobs) })
    }

    /// Runs `audit` for a request on the thread once it is free, waiting at
    /// most the longest wait for it. The audit is given a [`RequestStop`] to
    /// give up by: when this future is dropped (its client went away), or
    /// `limit` after it started on the thread. `Ok(None)` when the audit gave
    /// up for a reason of its own (the server stops); past the limit,
    /// [`Refused::TooLong`].
    pub async fn run_for_request<T: Send + 'static>(
        &self,
        limit: Duration,
        audit: impl FnOnce(&RequestStop) -> Result<Option<T>, ApiError> + Send + 'static,
    ) -> Result<Option<T>, Refused> {
        let abandoned = Arc::new(AtomicBool::new(false));
        let _raised_if_dropped = RaiseOnDrop(abandoned.clone());
        self.run(move || {
            // The time runs from the start on the thread, not from the wait for it.
            let stop = RequestStop { abandoned, deadline: Instant::now() + limit };
            match audit(&stop)? {
                None if stop.timed_out() => Ok(Err(Refused::TooLong(limit))),
                outcome => Ok(Ok(outcome)),
            }
        })
        .await?
    }

    /// Runs `audit` on the thread once it is free, waiting at most the longest wait for it.
    pub async fn run<T: Send + 'static>(
        &self,
        audit: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, Refused> {
        let slot = tokio::time::timeout(self.max_wait, self.slot.clone().acquire_owned())
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Failed(ApiError::Unavailable("the server is shutting down".into())))?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The slot is held by the job, not by the request: a client that goes away does
            // not free the thread for another audit while this one still runs on it.
            let _slot = slot;
            let _ = answer.send(audit());
        });
        self.jobs
            .lock()
            .expect("lock")
            .send(job)
            .map_err(|_| Refused::Failed(ApiError::Internal("the live audit thread has stopped".into())))?;
        answered
            .await
            .map_err(|_| Refused::Failed(ApiError::Internal("the audit failed".into())))?
            .map_err(Refused::Failed)
    }
}

/// Lowers the calling thread's CPU priority (Linux: a nice value is per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory effects; `gettid` names this thread.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) != 0 {
            tracing::debug!("cannot lower the live audit thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[tokio::test]
    async fn one_audit_at_a_time_and_a_long_wait_is_refused() {
        let wait = Duration::from_millis(100);
        let audits = Arc::new(LiveAudits::start(wait).unwrap());
        assert_eq!(audits.run(|| Ok(7)).await.unwrap(), 7);
        let release = Arc::new(AtomicBool::new(false));
        let running = {
            let (audits, release) = (audits.clone(), release.clone());
            tokio::spawn(async move {
                audits
                    .run(move || {
                        while !release.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Ok(thread_name())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let second = audits.run(|| Ok(String::new())).await;
        assert!(matches!(second, Err(Refused::Busy)), "the thread is busy");
        assert!(started.elapsed() >= wait);
        let e = ApiError::from(Refused::Busy);
        assert_eq!(e.code_and_status(), ("busy", axum::http::StatusCode::SERVICE_UNAVAILABLE));
        release.store(true, Ordering::Relaxed);
        assert_eq!(running.await.unwrap().unwrap(), "live-audit", "not on the runtime's threads");
        let failed = audits.run(|| -> Result<(), ApiError> { panic!("an audit bug") }).await;
        assert!(matches!(failed, Err(Refused::Failed(ApiError::Internal(_)))));
        assert_eq!(audits.run(|| Ok(1)).await.unwrap(), 1, "the thread outlives a panic");
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or("").to_owned()
    }

    /// An audit that runs until it is told to give up, counting its pages.
    fn endless(stop: &RequestStop, pages: &AtomicU64) -> Result<Option<u64>, ApiError> {
        while !stop.given_up() {
            pages.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(None)
    }

    #[tokio::test]
    async fn an_audit_whose_request_is_dropped_gives_up_and_frees_the_thread() {
        let audits = Arc::new(LiveAudits::start(Duration::from_secs(2)).unwrap());
        let pages = Arc::new(AtomicU64::new(0));
        let abandoned = {
            let (audits, pages) = (audits.clone(), pages.clone());
            tokio::spawn(async move {
                audits.run_for_request(Duration::from_secs(3_600), move |stop| endless(stop, &pages)).await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(pages.load(Ordering::Relaxed) > 0, "the audit runs");
        // The client goes away: hyper drops the request's future.
        abandoned.abort();
        let started = std::time::Instant::now();
        assert_eq!(audits.run(|| Ok(5)).await.unwrap(), 5, "the thread is free again");
        assert!(started.elapsed() < Duration::from_secs(1), "at the abandoned audit's next page");
        let after = pages.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pages.load(Ordering::Relaxed), after, "it stopped");
    }

    #[tokio::test]
    async fn an_audit_past_its_time_is_refused_and_a_quick_one_is_answered() {
        let audits = LiveAudits::start(Duration::from_secs(2)).unwrap();
        let pages = Arc::new(AtomicU64::new(0));
        let limit = Duration::from_millis(100);
        let started = std::time::Instant::now();
        let long = audits.run_for_request(limit, move |stop| endless(stop, &pages)).await;
        assert!(matches!(long, Err(Refused::TooLong(l)) if l == limit), "{long:?}");
        assert!(started.elapsed() >= limit && started.elapsed() < Duration::from_secs(2));
        let e = ApiError::from(long.unwrap_err());
        assert_eq!(e.code_and_status().1, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("within the 100 ms") && e.to_string().contains("shorter range"), "{e}");
        let quick = audits.run_for_request(limit, |_| Ok(Some(3))).await.unwrap();
        assert_eq!(quick, Some(3));
        // Given up for the server's stop (within its time): no report, and not "too long".
        let stopped = audits.run_for_request(limit, |_| Ok(None::<u64>)).await.unwrap();
        assert_eq!(stopped, None);
    }
}
