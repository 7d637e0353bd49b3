//! The call event (DESIGN §3) and its two enums, `interface` and `operation`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// What was being named: `interface` or `operation`.
    pub kind: &'static str,
    /// The name as given.
    pub name: String,
    /// The accepted names, comma-separated.
    pub expected: &'static str,
}

/// Defines a fieldless enum with stable names and stable one-byte codes.
///
/// The codes are the storage format: they are written to disk, so a variant's
/// code never changes and new variants only ever go at the end.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal, $count:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: [$name; $count] = [$($name::$variant),+];

            /// The lowercase name used in JSON, configs and query strings.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The compact code used on disk.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The value with this on-disk code, if any.
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            /// Exact lowercase names only, as in the JSON.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        kind: $kind,
                        name: s.to_owned(),
                        expected: concat!($($text, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// The way a call reached the API servers (DESIGN §1, §3).
    Interface, "interface", 12 {
        /// The REST API.
        Rest = 0 => "rest",
        /// The web interface.
        Web = 1 => "web",
        /// The desktop app.
        Desktop = 2 => "desktop",
        /// The mobile apps.
        Mobile = 3 => "mobile",
        /// An SDK.
        Sdk = 4 => "sdk",
        /// FTP or FTPS.
        Ftp = 5 => "ftp",
        /// SFTP.
        Sftp = 6 => "sftp",
        /// WebDAV.
        Webdav = 7 => "webdav",
        /// A remote-server mount.
        Mount = 8 => "mount",
        /// An iPaaS integration.
        Ipaas = 9 => "ipaas",
        /// Share links, inboxes and public hosting used by outside parties.
        Share = 10 => "share",
        /// Anything else.
        Other = 11 => "other",
    }
}

named_enum! {
    /// What a call did (DESIGN §3).
    Operation, "operation", 10 {
        /// Listed a folder (one page).
        List = 0 => "list",
        /// Read a file's or folder's metadata.
        Stat = 1 => "stat",
        /// Read a file's content.
        Read = 2 => "read",
        /// Wrote or changed a file.
        Write = 3 => "write",
        /// Deleted a file or folder.
        Delete = 4 => "delete",
        /// Moved or renamed.
        Move = 5 => "move",
        /// Copied.
        Copy = 6 => "copy",
        /// Created a folder.
        Mkdir = 7 => "mkdir",
        /// Signed in.
        Login = 8 => "login",
        /// Anything else.
        Other = 9 => "other",
    }
}

/// Whether an operation reads or writes, as usage reports split them (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// list, stat, read, login, other.
    Read,
    /// write, delete, move, copy, mkdir.
    Write,
}

impl Direction {
    /// `read` or `write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Operation {
    /// Whether this operation reads or writes (DESIGN §1).
    pub fn direction(self) -> Direction {
        match self {
            Operation::List | Operation::Stat | Operation::Read | Operation::Login | Operation::Other => {
                Direction::Read
            }
            Operation::Write | Operation::Delete | Operation::Move | Operation::Copy | Operation::Mkdir => {
                Direction::Write
            }
        }
    }
}

/// One call, validated: the canonical record of DESIGN §3.
///
/// Serializes to the canonical JSON: the table's field names in its order,
/// `time` in RFC 3339 UTC (`Z`), absent optional fields omitted. Build it
/// from JSON with [`crate::parse_event`], which validates every field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEvent {
    /// Unique per account: the idempotency key (1–128 bytes).
    pub id: String,
    /// The customer site.
    pub account: String,
    /// When the request arrived.
    #[serde(serialize_with = "serialize_time")]
    pub time: DateTime<Utc>,
    /// The way the call came in.
    pub interface: Interface,
    /// What it did; derived from `method` when the source gave none.
    pub operation: Operation,
    /// HTTP method, FTP command or SFTP request as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The file or folder the call is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The new path of a move or copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Response code (HTTP, FTP reply, or 0/1 for SFTP ok/fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    /// Id or short prefix of the API key used; never the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// User name or id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The real client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The client's user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Name of the iPaaS integration or remote-server mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// The pagination cursor a list page was asked for (absent on the first page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Entries returned by a list page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_count: Option<u64>,
    /// Body bytes transferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How long the request took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
}

impl CallEvent {
    /// An event with its required fields and every optional one absent, for
    /// code that builds events field by field (log parsers, tests). Not
    /// validated: check it with [`crate::check_event`] before storing it.
    pub fn new(
        id: String,
        account: String,
        time: DateTime<Utc>,
        interface: Interface,
        operation: Operation,
    ) -> CallEvent {
        CallEvent {
            id,
            account,
            time,
            interface,
            operation,
            method: None,
            path: None,
            destination: None,
            status: None,
            api_key: None,
            user: None,
            client_ip: None,
            user_agent: None,
            integration: None,
            cursor: None,
            result_count: None,
            bytes: None,
            duration_ms: None,
        }
    }
}

/// RFC 3339 with `Z` and only as many fractional digits as needed (0, 3, 6 or 9).
fn serialize_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The operation a method names, for events that carry no `operation`.
///
/// One case-insensitive table holds the HTTP/WebDAV methods, FTP commands and
/// SFTP requests: their names do not collide, so `interface` does not change
/// the answer today; it is taken so that a colliding name can be told apart
/// later without changing callers. No method, or one not in the table, is
/// `other`. Finer rules (WebDAV `Depth`, SFTP open flags, REST routes) are the
/// log readers' business (DESIGN §5); they pass `operation` explicitly.
pub fn derive_operation(interface: Interface, method: Option<&str>) -> Operation {
    let _ = interface;
    let Some(method) = method else {
        return Operation::Other;
    };
    // Upper-case into a stack buffer: no allocation on the ingest path.
    let mut buf = [0u8; 16];
    let bytes = method.as_bytes();
    if bytes.len() > buf.len() {
        return Operation::Other;
    }
    let name = &mut buf[..bytes.len()];
    name.copy_from_slice(bytes);
    name.make_ascii_uppercase();
    match &*name {
        // HTTP and WebDAV.
        b"GET" => Operation::Read,
        b"HEAD" => Operation::Stat,
        b"PUT" | b"POST" | b"PATCH" | b"PROPPATCH" => Operation::Write,
        b"DELETE" => Operation::Delete,
        b"PROPFIND" => Operation::List,
        b"MKCOL" => Operation::Mkdir,
        b"MOVE" => Operation::Move,
        b"COPY" => Operation::Copy,
        // FTP.
        b"LIST" | b"NLST" | b"MLSD" => Operation::List,
        b"RETR" => Operation::Read,
        b"STOR" | b"APPE" | b"STOU" => Operation::Write,
        b"DELE" | b"RMD" => Operation::Delete,
        b"RNFR" | b"RNTO" => Operation::Move,
        b"MKD" => Operation::Mkdir,
        b"SIZE" | b"MDTM" | b"MLST" | b"STAT" => Operation::Stat,
        b"USER" | b"PASS" => Operation::Login,
        // SFTP (`stat` is shared with FTP's STAT above, with the same meaning).
        b"OPENDIR" | b"READDIR" => Operation::List,
        b"OPEN" | b"READ" => Operation::Read,
        b"WRITE" | b"SETSTAT" | b"FSETSTAT" => Operation::Write,
        b"LSTAT" | b"FSTAT" | b"REALPATH" | b"READLINK" => Operation::Stat,
        b"REMOVE" | b"RMDIR" => Operation::Delete,
        b"RENAME" | b"POSIX-RENAME" => Operation::Move,
        b"MKDIR" => Operation::Mkdir,
        _ => Operation::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_listed_order_and_round_trip() {
        for (i, x) in Interface::ALL.iter().enumerate() {
            assert_eq!(x.code() as usize, i);
            assert_eq!(Interface::from_code(x.code()), Some(*x));
            assert_eq!(x.as_str().parse::<Interface>(), Ok(*x));
            assert_eq!(serde_json::to_string(x).unwrap(), format!("\"{x}\""));
        }
        for (i, x) in Operation::ALL.iter().enumerate() {
            assert_eq!(x.code() as usize, i);
            assert_eq!(Operation::from_code(x.code()), Some(*x));
            assert_eq!(x.as_str().parse::<Operation>(), Ok(*x));
            assert_eq!(serde_json::from_str::<Operation>(&format!("\"{x}\"")).unwrap(), *x);
        }
        assert_eq!(Interface::from_code(12), None);
        assert_eq!(Operation::from_code(10), None);
    }

    #[test]
    fn codes_are_pinned() {
        // These are on disk: a failure here means a stored code changed meaning.
        assert_eq!((Interface::Rest.code(), Interface::Webdav.code(), Interface::Ipaas.code()), (0, 7, 9));
        assert_eq!((Interface::Other.code(), Operation::List.code(), Operation::Login.code()), (11, 0, 8));
        assert_eq!(Operation::Other.code(), 9);
    }

    #[test]
    fn unknown_names_say_what_is_expected() {
        let e = "telnet".parse::<Interface>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown interface \"telnet\" (expected one of: rest, web, desktop, mobile, sdk, ftp, sftp, webdav, mount, ipaas, share, other)"
        );
        assert!("REST".parse::<Interface>().is_err(), "names are exact lowercase");
        assert!("chmod".parse::<Operation>().unwrap_err().to_string().starts_with("unknown operation \"chmod\""));
    }

    #[test]
    fn directions_follow_design_section_1() {
        use Operation::*;
        let reads: Vec<_> = Operation::ALL.iter().filter(|o| o.direction() == Direction::Read).copied().collect();
        assert_eq!(reads, vec![List, Stat, Read, Login, Other]);
        let writes: Vec<_> = Operation::ALL.iter().filter(|o| o.direction() == Direction::Write).copied().collect();
        assert_eq!(writes, vec![Write, Delete, Move, Copy, Mkdir]);
        assert_eq!(serde_json::to_string(&Direction::Write).unwrap(), "\"write\"");
    }

    #[test]
    fn operations_derive_from_methods() {
        use Operation::*;
        let table: &[(Interface, &str, Operation)] = &[
            (Interface::Rest, "GET", Read),
            (Interface::Rest, "get", Read),
            (Interface::Rest, "HEAD", Stat),
            (Interface::Rest, "PUT", Write),
            (Interface::Rest, "POST", Write),
            (Interface::Rest, "patch", Write),
            (Interface::Rest, "DELETE", Delete),
            (Interface::Rest, "OPTIONS", Other),
            (Interface::Webdav, "PROPFIND", List),
            (Interface::Webdav, "PROPPATCH", Write),
            (Interface::Webdav, "MKCOL", Mkdir),
            (Interface::Webdav, "MOVE", Move),
            (Interface::Webdav, "COPY", Copy),
            (Interface::Webdav, "LOCK", Other),
            (Interface::Ftp, "LIST", List),
            (Interface::Ftp, "nlst", List),
            (Interface::Ftp, "MLSD", List),
            (Interface::Ftp, "RETR", Read),
            (Interface::Ftp, "STOR", Write),
            (Interface::Ftp, "APPE", Write),
            (Interface::Ftp, "STOU", Write),
            (Interface::Ftp, "DELE", Delete),
            (Interface::Ftp, "RMD", Delete),
            (Interface::Ftp, "RNFR", Move),
            (Interface::Ftp, "RNTO", Move),
            (Interface::Ftp, "MKD", Mkdir),
            (Interface::Ftp, "SIZE", Stat),
            (Interface::Ftp, "MDTM", Stat),
            (Interface::Ftp, "MLST", Stat),
            (Interface::Ftp, "STAT", Stat),
            (Interface::Ftp, "USER", Login),
            (Interface::Ftp, "PASS", Login),
            (Interface::Ftp, "PASV", Other),
            (Interface::Sftp, "opendir", List),
            (Interface::Sftp, "readdir", List),
            (Interface::Sftp, "open", Read),
            (Interface::Sftp, "read", Read),
            (Interface::Sftp, "write", Write),
            (Interface::Sftp, "setstat", Write),
            (Interface::Sftp, "fsetstat", Write),
            (Interface::Sftp, "stat", Stat),
            (Interface::Sftp, "lstat", Stat),
            (Interface::Sftp, "fstat", Stat),
            (Interface::Sftp, "realpath", Stat),
            (Interface::Sftp, "readlink", Stat),
            (Interface::Sftp, "remove", Delete),
            (Interface::Sftp, "rmdir", Delete),
            (Interface::Sftp, "rename", Move),
            (Interface::Sftp, "posix-rename", Move),
            (Interface::Sftp, "mkdir", Mkdir),
            (Interface::Sftp, "close", Other),
            (Interface::Other, "", Other),
            (Interface::Other, "a-method-name-far-too-long-for-the-table", Other),
            (Interface::Other, "GÉT", Other),
        ];
        for (interface, method, want) in table {
            assert_eq!(derive_operation(*interface, Some(method)), *want, "{interface} {method}");
        }
        assert_eq!(derive_operation(Interface::Rest, None), Other);
    }
}
