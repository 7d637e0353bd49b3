//! Standard output the way a Unix tool writes it.
//!
//! In `callmeter calls acme | head -1`, `head` closes the pipe once it has
//! its line, and the next write fails with a broken pipe (Rust ignores
//! SIGPIPE, so the signal does not end the process as it ends `cat`). std's
//! `println!` panics on that. So the binary prints through this module: it
//! defines a `println!` of its own that shadows std's in every module after
//! it, and a closed pipe ends the process quietly with status 0: the reader
//! has all it wanted. Any other failure to write (a full disk under
//! `> file`) is said on stderr, with status 1.
//!
//! Commands that write through their own handle (`audit` writes the report
//! with `write_all`) return the error; `main` ends quietly when it is a
//! closed pipe ([`is_closed_pipe`]).

use std::fmt;
use std::io::{self, Write};

/// `println!`, ending the process quietly when standard output is a closed pipe.
macro_rules! println {
    () => {
        $crate::stdout::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}

/// Writes one line to standard output, or ends the process as [`stop`] says.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stop(&e);
    }
}

/// Ends the process after a failed write to standard output: quietly with
/// status 0 when the reader went away, else with the error and status 1.
fn stop(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// Whether a command failed only because its reader went away.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_closed_pipe_is_told_apart_from_other_failures() {
        let closed: anyhow::Result<()> =
            Err(io::Error::from(io::ErrorKind::BrokenPipe)).context("cannot write the report");
        assert!(is_closed_pipe(&closed.unwrap_err()));
        let full: anyhow::Result<()> = Err(io::Error::from(io::ErrorKind::StorageFull)).context("cannot write");
        assert!(!is_closed_pipe(&full.unwrap_err()));
        assert!(!is_closed_pipe(&anyhow::anyhow!("server answered 500")));
    }
}
