//! A headless Chromium driven over the DevTools protocol, for the dashboard's
//! browser tests: one browser process with a fresh profile, one tab, and
//! everything the page reports (console messages, uncaught exceptions,
//! browser log entries such as a refused resource or a CSP violation, failed
//! and 4xx/5xx requests) gathered so that a test can assert there was none.
//!
//! The protocol is JSON over one websocket (`tungstenite`, blocking): a
//! command carries an id and is answered with it; events come in between
//! and are kept until asked for.

use base64::Engine;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Chromium, or a failure that says how to get it.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("the dashboard's browser tests need a headless Chromium and none is on PATH: apt-get install -y chromium");
}

/// Something the page reported that a clean page never does.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The page's URL when it was reported.
    pub url: String,
    /// What it was.
    pub what: String,
}

/// One browser with one tab.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    events: VecDeque<Value>,
    /// Problems reported since the last [`Browser::take_problems`].
    problems: Vec<Problem>,
    current_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and opens a tab.
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().expect("profile folder");
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes the port it took, and the browser's websocket path, into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.trim().to_owned(), path.trim().to_owned());
                }
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect to chromium");
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream).expect("devtools websocket");
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: VecDeque::new(),
            problems: Vec::new(),
            current_url: String::new(),
            _profile: profile,
        };
        let target = browser.command_on(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached =
            browser.command_on(None, "Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("session id").to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Network.enable", "Log.enable"] {
            browser.command(domain, json!({}));
        }
        browser.viewport(1280, 800, false);
        browser
    }

    fn command_on(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(msg.to_string())).expect("send to chromium");
        loop {
            let v = self.read();
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
            self.keep(v);
        }
    }

    /// A command to the tab; its result.
    pub fn command(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.command_on(Some(&session), method, params)
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read from chromium") {
                Message::Text(t) => return serde_json::from_str(&t).expect("devtools json"),
                Message::Close(_) => panic!("chromium closed the connection"),
                _ => continue,
            }
        }
    }

    /// Keeps an event, noting the problems it reports.
    fn keep(&mut self, v: Value) {
        let p = &v["params"];
        let problem = match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") if matches!(p["type"].as_str(), Some("error" | "warning" | "assert")) => {
                Some(format!("console {}: {}", p["type"], p["args"]))
            }
            Some("Runtime.exceptionThrown") => Some(format!("exception: {}", p["exceptionDetails"])),
            Some("Log.entryAdded") if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) => {
                Some(format!("log: {}", p["entry"]["text"]))
            }
            Some("Network.loadingFailed") if p["canceled"] != json!(true) => {
                Some(format!("request failed: {} ({})", p["requestId"], p["errorText"]))
            }
            Some("Network.responseReceived") if p["response"]["status"].as_u64().unwrap_or(0) >= 400 => {
                Some(format!("{} answered {}", p["response"]["url"], p["response"]["status"]))
            }
            _ => None,
        };
        if let Some(what) = problem {
            self.problems.push(Problem { url: self.current_url.clone(), what });
        }
        self.events.push_back(v);
    }

    /// Waits for an event of the tab by name; its parameters.
    pub fn wait_event(&mut self, method: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(i).expect("present")["params"].clone();
            }
            assert!(Instant::now() < deadline, "no {method} within {limit:?}");
            let v = self.read();
            self.keep(v);
        }
    }

    /// Sets the viewport: 1280×800 for desktop, 390×844 (mobile) for a phone.
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.command(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Opens a URL and waits for its load event.
    pub fn open(&mut self, url: &str) {
        self.events.clear();
        self.current_url = url.to_owned();
        self.command("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired", Duration::from_secs(60));
    }

    /// Runs a script in the page (awaiting a promise); its value.
    pub fn eval(&mut self, script: &str) -> Value {
        let r = self
            .command("Runtime.evaluate", json!({"expression": script, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "script failed: {script}: {r}");
        r["result"]["value"].clone()
    }

    /// Runs a script that makes the page navigate (a form's submit, a link's click), and waits for the new page.
    pub fn navigate_by(&mut self, script: &str) {
        self.events.clear();
        self.eval(&format!("setTimeout(() => {{ {script} }}, 0); true"));
        self.wait_event("Page.loadEventFired", Duration::from_secs(60));
        self.current_url = self.eval("location.href").as_str().unwrap_or("").to_owned();
    }

    /// The text of the element a selector finds (empty when none).
    pub fn text(&mut self, selector: &str) -> String {
        let script = format!("(document.querySelector({}) || {{}}).innerText || ''", json!(selector));
        self.eval(&script).as_str().unwrap_or("").to_owned()
    }

    /// The page's URL.
    pub fn url(&mut self) -> String {
        self.eval("location.href").as_str().unwrap_or("").to_owned()
    }

    /// Writes a PNG of the viewport into `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.command("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": false}));
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("png data")).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// The problems reported since the last call, emptied.
    pub fn take_problems(&mut self) -> Vec<Problem> {
        // Events that arrived after the last command are still on the socket: one round trip takes them in.
        self.eval("1");
        std::mem::take(&mut self.problems)
    }

    /// A navigation-timing figure (for `benches/dashboard.rs`, which shares this file): the Largest Contentful Paint of the page, in ms.
    #[allow(dead_code)]
    pub fn largest_contentful_paint_ms(&mut self) -> f64 {
        let script = "new Promise(resolve => { new PerformanceObserver(list => { const e = list.getEntries(); \
                      resolve(e[e.length - 1].startTime); }).observe({type: 'largest-contentful-paint', buffered: true}); \
                      setTimeout(() => resolve(-1), 3000); })";
        self.eval(script).as_f64().unwrap_or(-1.0)
    }

    /// Bytes the page and its resources took on the wire (compressed), from the resource timings
    /// (for `benches/dashboard.rs`).
    #[allow(dead_code)]
    pub fn transferred_bytes(&mut self) -> u64 {
        let script = "(() => { const nav = performance.getEntriesByType('navigation')[0]; \
                      let n = nav ? nav.transferSize : 0; \
                      for (const r of performance.getEntriesByType('resource')) n += r.transferSize || r.encodedBodySize || 0; \
                      return n; })()";
        self.eval(script).as_u64().unwrap_or(0)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
