//! The keys nginx JSON logs are read from, by event field.
//!
//! `log_format … escape=json` names its keys as the operator likes: the
//! shipped lists hold the names seen in nginx's documentation, in log
//! shippers' defaults and in the wild (`remote_addr`/`remote_ip`,
//! `request_method`/`method`, `status`/`response_code`…). The config's
//! `[import.nginx_json]` table maps the rest: each field it gives replaces
//! that field's list, the others keep theirs. In each list the first key
//! present (with a value that is not empty or `-`) wins.

use serde::{Deserialize, Serialize};

/// The keys of each event field, first match wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonKeys {
    /// The request's time: ISO 8601, CLF (`[10/Oct/2000:13:55:36 -0700]`, brackets or not) or Unix seconds.
    pub time: Vec<String>,
    /// An X-Forwarded-For list: its first address is the client.
    pub forwarded_for: Vec<String>,
    /// The client's address, when no X-Forwarded-For list names it.
    pub client_ip: Vec<String>,
    /// The authenticated user.
    pub user: Vec<String>,
    /// The whole request line, `GET /x HTTP/1.1`.
    pub request: Vec<String>,
    /// The method, when the request line is not logged whole.
    pub method: Vec<String>,
    /// The target (path, with its query unless `args` holds it), with `method`.
    pub target: Vec<String>,
    /// The query, appended to a target that has none.
    pub args: Vec<String>,
    /// The response status.
    pub status: Vec<String>,
    /// Bytes sent.
    pub bytes: Vec<String>,
    /// The request's duration in seconds (nginx `$request_time`).
    pub request_time: Vec<String>,
    /// The request's duration in milliseconds.
    pub duration_ms: Vec<String>,
    /// The user agent.
    pub user_agent: Vec<String>,
    /// The WebDAV `Depth` header.
    pub depth: Vec<String>,
    /// The WebDAV `Destination` header.
    pub destination: Vec<String>,
    /// The request's host name, for `--account-from host`.
    pub host: Vec<String>,
    /// The API key's id or prefix (never the secret).
    pub api_key: Vec<String>,
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

impl Default for JsonKeys {
    /// The shipped lists.
    fn default() -> Self {
        JsonKeys {
            time: keys(&["time_iso8601", "time_local", "msec", "time", "timestamp", "@timestamp", "ts"]),
            forwarded_for: keys(&["http_x_forwarded_for", "x_forwarded_for", "forwarded_for"]),
            client_ip: keys(&["remote_addr", "client_ip", "remote_ip", "realip_remote_addr", "remote", "client", "ip"]),
            user: keys(&["remote_user", "user"]),
            request: keys(&["request"]),
            method: keys(&["request_method", "method"]),
            target: keys(&["request_uri", "uri", "path"]),
            args: keys(&["args", "query_string"]),
            status: keys(&["status", "response_code", "status_code"]),
            bytes: keys(&["body_bytes_sent", "bytes_sent", "bytes", "body_bytes", "size", "response_size"]),
            request_time: keys(&["request_time"]),
            duration_ms: keys(&["duration_ms"]),
            user_agent: keys(&["http_user_agent", "user_agent", "ua", "agent"]),
            depth: keys(&["http_depth", "depth"]),
            destination: keys(&["http_destination", "destination"]),
            host: keys(&["host", "http_host", "server_name", "vhost"]),
            api_key: keys(&["api_key"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_given_replaces_only_its_list() {
        let k: JsonKeys = toml::from_str("client_ip = [\"peer\"]\n").unwrap();
        assert_eq!(k.client_ip, ["peer"]);
        assert_eq!(k.time, JsonKeys::default().time);
        assert!(toml::from_str::<JsonKeys>("clientip = [\"peer\"]\n").is_err(), "unknown fields are refused");
        let text = toml::to_string(&JsonKeys::default()).unwrap();
        assert_eq!(toml::from_str::<JsonKeys>(&text).unwrap(), JsonKeys::default());
    }

    #[test]
    fn the_example_config_shows_the_shipped_lists() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/callmeter.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("# [import.nginx_json]").unwrap();
        let block = &text[start..];
        let end = block.find("\n\n").unwrap_or(block.len());
        let uncommented: String = block[..end]
            .lines()
            .skip(1)
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.to_owned() + "\n")
            .collect();
        assert_eq!(toml::from_str::<JsonKeys>(&uncommented).unwrap(), JsonKeys::default());
    }
}
