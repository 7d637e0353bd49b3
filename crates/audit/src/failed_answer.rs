//! Which answers failed in a way that a client should retry (DESIGN §6): a
//! repeat after one of them is a retry, as the audit's own recommendation
//! asks ("retry only on errors, with backoff"), never an avoidable duplicate.
//!
//! The status means different things on each interface (DESIGN §3):
//!
//! - HTTP (REST, web, apps, SDKs, WebDAV, mounts, iPaaS, shares): 408 (request
//!   timeout), 429 (too many requests), every 5xx, and no answer at all: status
//!   0, nginx's 444 (closed without an answer) and 499 (the client gave up
//!   waiting).
//! - FTP: the transient negative replies, 4xx (421 service not available, 425,
//!   426 transfer aborted, 450, 451, 452); a 5xx reply is permanent (550 no
//!   such file) and retrying it is no better than the first try.
//! - SFTP: status 1 (the request failed): the protocol's log does not say why.
//!
//! A call without a status is not a failed answer: logs that record none
//! (sftp-server's) cannot tell a retry from a repeat.

use callmeter_model::Interface;

/// Whether the answer to a call with this status, on this interface, is one a client should retry.
pub(crate) fn is_failed_answer(interface: Interface, status: Option<i64>) -> bool {
    let Some(status) = status else { return false };
    match interface {
        Interface::Ftp => (400..500).contains(&status),
        Interface::Sftp => status == 1,
        _ => matches!(status, 0 | 408 | 429 | 444 | 499 | 500..=599),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_worth_a_retry_by_interface() {
        for s in [408, 429, 500, 502, 503, 504, 0, 499] {
            assert!(is_failed_answer(Interface::Rest, Some(s)), "{s}");
        }
        for s in [200, 201, 204, 304, 400, 401, 403, 404, 410] {
            assert!(!is_failed_answer(Interface::Webdav, Some(s)), "{s}");
        }
        assert!(is_failed_answer(Interface::Ftp, Some(426)) && is_failed_answer(Interface::Ftp, Some(421)));
        assert!(!is_failed_answer(Interface::Ftp, Some(550)) && !is_failed_answer(Interface::Ftp, Some(226)));
        assert!(is_failed_answer(Interface::Sftp, Some(1)) && !is_failed_answer(Interface::Sftp, Some(0)));
        assert!(!is_failed_answer(Interface::Rest, None), "no status logged is no failure known");
    }
}
