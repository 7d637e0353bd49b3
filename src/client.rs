//! A small blocking client of the server's API, for the CLI commands.

use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use std::path::PathBuf;

/// Where the server is and which token to use.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "CALLMETER_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The token [default: the admin token in ./callmeter-data/admin-token, when present].
    #[arg(long, env = "CALLMETER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data folder whose admin-token file to use when no token is given.
    #[arg(long, default_value = "callmeter-data")]
    pub data: PathBuf,
}

/// A connection to one server.
pub struct Api {
    base: String,
    token: String,
    http: Client,
}

impl ServerArgs {
    /// Settles the token and builds the client.
    pub fn connect(self) -> Result<Api> {
        let (base, token) = self.url_and_token()?;
        let http = Client::builder().timeout(std::time::Duration::from_secs(300)).build()?;
        Ok(Api { base, token, http })
    }

    /// The base URL and the token: the one given, else the admin token in the data folder.
    pub fn url_and_token(self) -> Result<(String, String)> {
        let token = match self.token {
            Some(t) => t,
            None => Self::admin_token_in(&self.data)?,
        };
        Ok((self.server.trim_end_matches('/').to_owned(), token))
    }

    /// The admin token a server keeps in its data folder.
    pub fn admin_token_in(data: &std::path::Path) -> Result<String> {
        std::fs::read_to_string(data.join("admin-token")).map(|t| t.trim().to_owned()).map_err(|_| {
            anyhow!(
                "no token: give --token or CALLMETER_TOKEN ({} holds the admin token only while the server \
                     uses one it made, not a configured one)",
                data.join("admin-token").display()
            )
        })
    }
}

impl Api {
    /// A connection for long streams (the request log of a long range): no
    /// overall timeout, so it streams for as long as it takes; a server that
    /// cannot be reached still fails after 30 s.
    pub fn streaming(base: &str, token: String) -> Result<Api> {
        let http = Client::builder().timeout(None).connect_timeout(std::time::Duration::from_secs(30)).build()?;
        Ok(Api { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to a path of the API, with the token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// Sends a request; a non-2xx answer becomes an error carrying the server's message.
    pub fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().with_context(|| format!("cannot reach the server at {}", self.base))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            bail!("server answered {status}: {message}");
        }
        Ok(resp)
    }

    /// GET a JSON document.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<serde_json::Value> {
        Ok(self.send(self.request(reqwest::Method::GET, path).query(query))?.json()?)
    }
}

/// A value from the command line (an account, a webhook's or a token's id)
/// made one segment of an API path: every byte but letters, digits and
/// `-._~` percent-encoded, so that a `/`, `?`, `#` or `%` in it reaches no
/// other route. `.` and `..` are refused: a URL resolves them (encoded or
/// not) against the path before it (`webhooks delete acme
/// ../../../tokens/ID` would have deleted a token).
pub fn segment(value: &str) -> Result<String> {
    if value.is_empty() || value == "." || value == ".." {
        bail!("{value:?} names nothing the server has");
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod segment_tests {
    use super::segment;

    #[test]
    fn a_value_stays_one_segment() {
        assert_eq!(segment("acme-co.eu_1~").unwrap(), "acme-co.eu_1~");
        assert_eq!(segment("../../tokens/ab").unwrap(), "..%2F..%2Ftokens%2Fab");
        assert_eq!(segment("wh_1?x=1#f").unwrap(), "wh_1%3Fx%3D1%23f");
        assert_eq!(segment("%2e%2e").unwrap(), "%252e%252e");
        assert_eq!(segment("é").unwrap(), "%C3%A9");
        for nothing in ["", ".", ".."] {
            assert!(segment(nothing).is_err(), "{nothing:?}");
        }
    }
}
