//! A syslog file as it is: lines of many programs, each read by its own
//! program's reader (`--format syslog`).
//!
//! `/var/log/syslog`, `auth.log` or a journal export holds OpenSSH's lines and
//! vsftpd's side by side when both run on one host (`syslog_enable=YES`). Read
//! as `sftp`, every vsftpd call would be `housekeeping`; read as `vsftpd`,
//! every SFTP call `other_program`. So each line goes by its tag:
//!
//! - `sshd`, `sshd-session`, `sftp-server`, `internal-sftp` → the [`crate::sftp`] reader;
//! - `vsftpd` (and `vsftpd(pam_unix)`) → the [`crate::vsftpd`] reader, and so
//!   do vsftpd's own lines (`Fri Jan 19 12:20:33 2007 [pid 2] …`) found among them;
//! - any other program → `other_program`.
//!
//! Each reader sees only its own program's lines, as if they were a file of
//! their own, and keeps its sessions as it would there. The ids are the
//! lines' own (content-addressed, from the source's [`crate::LineKeys`]), so
//! the same line gives the same id read as `syslog`, `sftp` or `vsftpd`.
//! `--format auto` names a file of syslog lines `syslog`, whatever programs
//! its first lines are of: the programs a file holds further on are not known
//! from its head.

use crate::context::Context;
use crate::error::Result;
use crate::sftp::{is_openssh_program, SftpParser};
use crate::syslog;
use crate::text::{is_blank, parse_ctime, trim_eol};
use crate::vsftpd::{is_vsftpd_program, VsftpdParser};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::CallEvent;

/// The reader of syslog files that mix programs.
#[derive(Debug)]
pub struct SyslogParser {
    ctx: Context,
    sftp: SftpParser,
    vsftpd: VsftpdParser,
}

impl SyslogParser {
    /// A reader.
    pub fn new(ctx: Context) -> SyslogParser {
        SyslogParser { sftp: SftpParser::new(ctx.clone()), vsftpd: VsftpdParser::new(ctx.clone()), ctx }
    }

    /// The readers read times as this one's context says (`tail` moves the year reference on).
    fn sync(&mut self) {
        for inner in [self.sftp.context_mut(), self.vsftpd.context_mut()] {
            inner.year_reference = self.ctx.year_reference;
            inner.timezone = self.ctx.timezone;
        }
    }
}

impl LineParser for SyslogParser {
    fn format(&self) -> Format {
        Format::Syslog
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let text = trim_eol(line);
        if is_blank(text) {
            return Ok(NonCall::Blank.into());
        }
        self.sync();
        let program = match syslog::program_of(text) {
            Some(p) => p,
            // vsftpd's own lines, dated as it dates them, among the ones it sent through syslog.
            None if parse_ctime(text).is_some() => return self.vsftpd.line(at, line, out),
            // Not a syslog line: the prefix's own error says why.
            None => syslog::parse(&self.ctx, at.number, text)?.program,
        };
        if is_vsftpd_program(program) {
            self.vsftpd.line(at, line, out)
        } else if is_openssh_program(program) {
            self.sftp.line(at, line, out)
        } else {
            Ok(NonCall::OtherProgram.into())
        }
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut left = Vec::new();
        self.sftp.finish(&mut left);
        self.vsftpd.finish(&mut left);
        // In time order, the two readers' together: the same order on every read.
        left.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        out.extend(left);
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, non_calls, run};
    use callmeter_model::{Interface, Operation};

    /// OpenSSH 9.8 and vsftpd through syslog on one host, with cron, PAM and systemd between.
    const MIXED: &str = r#"Dec  1 10:00:00 files1 sshd-session[4245]: Accepted publickey for alice from 192.168.1.10 port 50000 ssh2: ED25519 SHA256:abc
Dec  1 10:00:00 files1 sshd-session[4247]: session opened for local user alice from [192.168.1.10] [postauth]
Dec  1 10:00:01 files1 sshd-session[4247]: closedir "/in" [postauth]
Dec  1 10:00:01 files1 sshd-session[4247]: opendir "/in" [postauth]
Dec  1 10:00:01 ftp1 vsftpd[2]: [pid 2] CONNECT: Client "192.168.1.10"
Dec  1 10:00:01 ftp1 vsftpd[2]: [pid 2] [alice] OK LOGIN: Client "192.168.1.10"
Dec  1 10:00:02 files1 sshd-session[4247]: open "/in/a.csv" flags WRITE,CREATE,TRUNCATE mode 0666 [postauth]
Dec  1 10:00:02 ftp1 vsftpd[3]: [pid 3] [alice] OK UPLOAD: Client "192.168.1.10", "/in/a.csv", 1024 bytes, 50.00Kbyte/sec
Dec  1 10:00:03 files1 sshd-session[4247]: close "/in/a.csv" bytes read 0 written 1024 [postauth]
Dec  1 10:00:03 ftp1 vsftpd[3]: [pid 3] [alice] OK DOWNLOAD: Client "192.168.1.10", "/in/b.csv", 2048 bytes, 50.00Kbyte/sec
Dec  1 10:00:04 files1 sshd-session[4247]: stat name "/in/a.csv" [postauth]
Dec  1 10:00:04 ftp1 vsftpd[3]: [pid 3] [alice] OK MKDIR: Client "192.168.1.10", "/in/new"
Dec  1 10:00:05 files1 sshd-session[4247]: rename old "/in/a.csv" new "/out/a.csv" [postauth]
Dec  1 10:00:05 ftp1 vsftpd[3]: [pid 3] [alice] OK RENAME: Client "192.168.1.10", "/in/a.csv /in/c.csv"
Dec  1 10:00:06 files1 sshd-session[4247]: remove name "/out/a.csv" [postauth]
Dec  1 10:00:06 ftp1 vsftpd[3]: [pid 3] [alice] OK DELETE: Client "192.168.1.10", "/in/c.csv"
Dec  1 10:00:07 files1 sshd-session[4247]: session closed for local user alice from [192.168.1.10] [postauth]
Dec  1 10:00:07 ftp1 vsftpd(pam_unix)[3]: authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.168.1.11
Dec  1 10:00:08 files1 CRON[999]: (root) CMD (true)
Dec  1 10:00:08 ftp1 vsftpd[4]: [pid 4] [bob] FAIL LOGIN: Client "192.168.1.11"
Dec  1 10:00:09 files1 sshd[100]: Received disconnect from 192.168.1.10 port 50000:11: disconnected by user
Dec  1 10:00:09 ftp1 systemd[1]: Started vsftpd.service.
"#;

    #[test]
    fn each_program_is_read_by_its_reader() {
        let events = run(Format::Syslog, MIXED);
        let by = |i: Interface| {
            events.iter().filter(|e| e.interface == i).map(|e| (e.operation, e.path.as_deref())).collect::<Vec<_>>()
        };
        use Operation::*;
        assert_eq!(
            by(Interface::Sftp),
            vec![
                (Login, None),
                (List, Some("/in")),
                (Write, Some("/in/a.csv")), // given at its close
                (Stat, Some("/in/a.csv")),
                (Move, Some("/in/a.csv")),
                (Delete, Some("/out/a.csv")),
            ]
        );
        assert_eq!(
            by(Interface::Ftp),
            vec![
                (Login, None),
                (Write, Some("/in/a.csv")),
                (Read, Some("/in/b.csv")),
                (Mkdir, Some("/in/new")),
                (Move, Some("/in/a.csv")),
                (Delete, Some("/in/c.csv")),
                (Login, None),
            ]
        );
        // Ids are the lines' own: the SFTP write is its open's line, the FTP upload its OK line.
        let write = |i: Interface| events.iter().find(|e| e.interface == i && e.operation == Write).unwrap();
        assert_eq!(write(Interface::Sftp).id, id(MIXED, 7));
        assert_eq!(write(Interface::Ftp).id, id(MIXED, 8));
    }

    #[test]
    fn every_line_is_accounted_for() {
        use NonCall::*;
        let kinds = non_calls(Format::Syslog, MIXED);
        let count = |k: NonCall| kinds.iter().filter(|x| **x == Some(k)).count();
        assert_eq!(kinds.iter().filter(|k| k.is_none()).count(), 13, "13 calls: 6 SFTP, 7 FTP");
        assert_eq!((count(Housekeeping), count(PartOfCall), count(OtherProgram)), (5, 2, 2), "{kinds:?}");
    }

    #[test]
    fn the_same_lines_give_the_same_calls_as_their_own_readers() {
        let only = |keep: &dyn Fn(&str) -> bool| -> String {
            MIXED.lines().map(|l| if keep(l) { l } else { "" }).collect::<Vec<_>>().join("\n")
        };
        // Blank lines in place of the other program's keep the line numbers (and so the ids) alike.
        let sftp = run(Format::Sftp, &only(&|l| !l.contains(" vsftpd")));
        let vsftpd = run(Format::Vsftpd, &only(&|l| l.contains(" vsftpd")));
        let mut both: Vec<String> = sftp.iter().chain(&vsftpd).map(|e| e.id.clone()).collect();
        let mut mixed: Vec<String> = run(Format::Syslog, MIXED).into_iter().map(|e| e.id).collect();
        both.sort();
        mixed.sort();
        assert_eq!(mixed, both);
    }

    #[test]
    fn a_line_that_is_not_syslog_says_why() {
        let (_, errors) = crate::testutil::run_errors(Format::Syslog, "garbage here\n");
        assert!(errors[0].to_string().starts_with("line 1: time: not a syslog time"), "{}", errors[0]);
    }
}
