//! Just enough of the Chrome DevTools Protocol to load a page and judge it.
//!
//! Chromium is started with `--remote-debugging-port=0`; it writes the port it chose to
//! `DevToolsActivePort` in its profile directory, and we speak JSON over one WebSocket to the
//! browser. Each page gets a fresh tab (`Target.createTarget`), attached in "flat" mode so that
//! its events carry a `sessionId`: events of a tab we have closed can then never be blamed on the
//! next page. Every wait has a deadline; a hung page is a reported failure, not a hung CI job.
//!
//! A hand-written client rather than a CDP crate: we need a dozen methods, and the full generated
//! protocol bindings take minutes to compile on a 2-core machine.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The flags this machine needs: without the network-related ones, a Chromium with no network
/// hangs on start-up or floods its log with connection errors.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The viewport every page is rendered at; screenshots are at least this tall.
pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 2000;
/// Full-page screenshots stop here, so a very long page cannot make a huge PNG.
const MAX_SHOT_HEIGHT: f64 = 20_000.0;

/// Waits for images to settle (forcing lazy ones), then lists the ones that did not load.
const IMAGES_JS: &str = r"(async () => {
  const imgs = Array.from(document.images);
  for (const i of imgs) if (i.loading === 'lazy') i.loading = 'eager';
  const settled = Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  await Promise.race([settled, new Promise(r => setTimeout(r, 10000))]);
  return { total: imgs.length,
           broken: imgs.filter(i => i.naturalWidth === 0)
                       .map(i => i.getAttribute('src') || i.outerHTML.slice(0, 120)) };
})()";

/// Finds the solution spoilers (`<details>` whose summary starts with "Solution:"), counts those
/// without a code block (a fence that did not render), and opens the first one, returning where
/// the listing above it starts so that a screenshot can show both.
const SPOILERS_JS: &str = r"(() => {
  const all = Array.from(document.querySelectorAll('main details'))
    .filter(d => (d.querySelector('summary')?.textContent || '').startsWith('Solution:'));
  const without_code = all.filter(d => d.querySelector('pre code') === null).length;
  if (all.length === 0) return { total: 0, without_code, y: null };
  all[0].open = true;
  const top = (all[0].previousElementSibling || all[0]).getBoundingClientRect().top;
  return { total: all.length, without_code, y: Math.max(0, top + window.scrollY - 16) };
})()";

/// What one page did wrong, and how many images it had.
#[derive(Debug, Default)]
pub struct PageReport {
    pub failures: Vec<String>,
    pub images: usize,
}

/// A running headless Chromium and the DevTools connection to it. Dropping it closes the
/// browser and deletes its temporary profile.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Events read while waiting for a command's answer, in arrival order.
    events: VecDeque<Value>,
    profile: PathBuf,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Browser {
    /// Starts `chromium` with a fresh profile and connects to it.
    ///
    /// # Errors
    /// If it does not start or does not open its DevTools port within `timeout`; the message
    /// includes the end of Chromium's own output.
    pub fn launch(chromium: &Path, timeout: Duration) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let profile =
            std::env::temp_dir().join(format!("book-check-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating {}", profile.display()))?;
        let mut child = Command::new(chromium)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", chromium.display()))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::clone(&stderr_tail);
        // Drained for the whole run: a full pipe would block Chromium.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = tail
                    .lock()
                    .expect("stderr reader never panics holding the lock");
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let connected = connect(&mut child, &profile, timeout);
        let ws = match connected {
            Ok(ws) => ws,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                let tail = last_lines(&stderr_tail);
                bail!("{e:#}; Chromium's last output:\n{tail}");
            }
        };
        Ok(Self {
            child,
            ws,
            next_id: 1,
            events: VecDeque::new(),
            profile,
            stderr_tail,
        })
    }

    /// Loads `url` in a fresh tab and reports console errors, uncaught exceptions, failed
    /// requests, images that did not load and solution spoilers that show no code. If
    /// `screenshot` is given, saves a full-page PNG there, and if the page has a solution
    /// spoiler, a second one beside it (`NAME-spoiler.png`) of the first listing with its
    /// solution opened.
    ///
    /// # Errors
    /// If the browser connection breaks or Chromium crashes; a page that merely misbehaves or
    /// does not finish loading within `timeout` is reported in the [`PageReport`] instead.
    pub fn check_page(
        &mut self,
        url: &str,
        timeout: Duration,
        screenshot: Option<&Path>,
    ) -> Result<PageReport> {
        let deadline = Instant::now() + timeout;
        let target = self.call(
            None,
            "Target.createTarget",
            json!({"url": "about:blank"}),
            deadline,
        )?;
        let target_id = target["targetId"]
            .as_str()
            .context("createTarget gave no targetId")?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
            deadline,
        )?;
        let session = attached["sessionId"]
            .as_str()
            .context("attachToTarget gave no sessionId")?
            .to_string();
        let result = self.check_in_tab(&session, url, deadline, screenshot);
        // Close the tab even if the page failed; a tab left open would keep running its scripts.
        let closed = self.call(
            None,
            "Target.closeTarget",
            json!({"targetId": target_id}),
            Instant::now() + Duration::from_secs(5),
        );
        let report = result?;
        closed?;
        Ok(report)
    }

    fn check_in_tab(
        &mut self,
        session: &str,
        url: &str,
        deadline: Instant,
        screenshot: Option<&Path>,
    ) -> Result<PageReport> {
        let s = Some(session);
        for domain in ["Runtime", "Log", "Network", "Page"] {
            self.call(s, &format!("{domain}.enable"), json!({}), deadline)?;
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
            deadline,
        )?;
        let mut watch = Watch::default();
        let nav = self.call(s, "Page.navigate", json!({"url": url}), deadline)?;
        if let Some(err) = nav["errorText"].as_str() {
            watch.failures.push(format!("navigation failed: {err}"));
            return Ok(PageReport {
                failures: watch.failures,
                images: 0,
            });
        }
        // The load event comes after every image, stylesheet and script of the page.
        while !watch.loaded {
            match self.next_event(session, deadline)? {
                Some(event) => watch.record(&event),
                None => {
                    watch.failures.push(
                        "did not fire its load event within the per-page time limit".to_string(),
                    );
                    return Ok(PageReport {
                        failures: watch.failures,
                        images: 0,
                    });
                }
            }
        }
        // Scripts may still fetch things after load (mdBook's search index): wait for quiet.
        self.drain(session, &mut watch, Duration::from_millis(300), deadline)?;
        let images = self.call(
            s,
            "Runtime.evaluate",
            json!({"expression": IMAGES_JS, "awaitPromise": true, "returnByValue": true}),
            deadline,
        )?;
        if let Some(exception) = images.get("exceptionDetails") {
            watch
                .failures
                .push(format!("image check script failed: {exception}"));
        }
        let value = &images["result"]["value"];
        for src in value["broken"].as_array().into_iter().flatten() {
            watch.push(format!(
                "image did not load: {}",
                src.as_str().unwrap_or("?")
            ));
        }
        let total = value["total"].as_u64().unwrap_or(0) as usize;
        self.drain(session, &mut watch, Duration::from_millis(100), deadline)?;
        if let Some(path) = screenshot {
            self.screenshot(session, path, None, deadline)?;
        }
        let spoilers = self.call(
            s,
            "Runtime.evaluate",
            json!({"expression": SPOILERS_JS, "returnByValue": true}),
            deadline,
        )?;
        if let Some(exception) = spoilers.get("exceptionDetails") {
            watch
                .failures
                .push(format!("spoiler check script failed: {exception}"));
        }
        let value = &spoilers["result"]["value"];
        let without_code = value["without_code"].as_u64().unwrap_or(0);
        if without_code > 0 {
            watch.push(format!(
                "{without_code} solution spoiler(s) show no code block: a fence inside <details> needs a blank line before and after it"
            ));
        }
        // A second shot, of the first listing with its solution opened below it.
        if let Some(path) = screenshot {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            let spoiler_path = path.with_file_name(format!("{stem}-spoiler.png"));
            let _ = std::fs::remove_file(&spoiler_path); // a page that lost its spoilers
            if let Some(y) = value["y"].as_f64() {
                self.screenshot(session, &spoiler_path, Some(y), deadline)?;
            }
        }
        Ok(PageReport {
            failures: watch.failures,
            images: total,
        })
    }

    /// Records events until none has come for `quiet` (or the deadline).
    fn drain(
        &mut self,
        session: &str,
        watch: &mut Watch,
        quiet: Duration,
        deadline: Instant,
    ) -> Result<()> {
        while let Some(event) = self.next_event(session, deadline.min(Instant::now() + quiet))? {
            watch.record(&event);
        }
        Ok(())
    }

    /// Saves the whole page as a PNG, or with `from`, one viewport's height of it from that y.
    fn screenshot(
        &mut self,
        session: &str,
        path: &Path,
        from: Option<f64>,
        deadline: Instant,
    ) -> Result<()> {
        let s = Some(session);
        let (y, height) = match from {
            Some(y) => (y.floor(), f64::from(HEIGHT)),
            None => {
                let metrics = self.call(s, "Page.getLayoutMetrics", json!({}), deadline)?;
                let content = metrics["cssContentSize"]["height"]
                    .as_f64()
                    .unwrap_or(f64::from(HEIGHT));
                (
                    0.0,
                    content.clamp(f64::from(HEIGHT), MAX_SHOT_HEIGHT).ceil(),
                )
            }
        };
        let shot = self.call(
            s,
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": y, "width": WIDTH, "height": height, "scale": 1}}),
            deadline,
        )?;
        let data = shot["data"]
            .as_str()
            .context("captureScreenshot gave no data")?;
        let png = data_encoding::BASE64
            .decode(data.as_bytes())
            .context("decoding the screenshot")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Sends a command (to a tab if `session` is given) and waits for its answer, keeping the
    /// events that arrive meanwhile.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        self.ws
            .send(Message::text(message.to_string()))
            .context("sending to Chromium")?;
        loop {
            let Some(reply) = self.read(deadline)? else {
                bail!("Chromium did not answer {method} in time");
            };
            if reply["id"].as_u64() == Some(id) {
                if let Some(error) = reply.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(reply["result"].clone());
            }
            if reply.get("method").is_some() {
                self.events.push_back(reply);
            }
        }
    }

    /// The next event of `session`, or `None` at the deadline. Events of other sessions (tabs
    /// already closed, the browser itself) are dropped.
    fn next_event(&mut self, session: &str, deadline: Instant) -> Result<Option<Value>> {
        loop {
            let event = match self.events.pop_front() {
                Some(event) => event,
                None => match self.read(deadline)? {
                    Some(event) => event,
                    None => return Ok(None),
                },
            };
            if event["method"] == "Inspector.targetCrashed" && event["sessionId"] == session {
                bail!("the page crashed Chromium's renderer");
            }
            if event["sessionId"] == session && event.get("method").is_some() {
                return Ok(Some(event));
            }
        }
    }

    /// The next message from Chromium, or `None` at the deadline.
    fn read(&mut self, deadline: Instant) -> Result<Option<Value>> {
        loop {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(Some(serde_json::from_str(&text)?)),
                Ok(_) => {}
                // The socket's short read timeout: check the deadline and read again.
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    let tail = last_lines(&self.stderr_tail);
                    return Err(anyhow!(e)).context(format!(
                        "lost the connection to Chromium; its last output:\n{tail}"
                    ));
                }
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(Message::text(
            json!({"id": 0, "method": "Browser.close"}).to_string(),
        ));
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium's helper processes may still be writing into the profile for a moment after
        // the browser exits; a removal that races with them fails, so try again briefly.
        for _ in 0..10 {
            if std::fs::remove_dir_all(&self.profile).is_ok() || !self.profile.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The last lines Chromium wrote to stderr, for error messages.
fn last_lines(tail: &Mutex<VecDeque<String>>) -> String {
    let lines = tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>());
    match lines {
        Ok(lines) if !lines.is_empty() => lines.join("\n"),
        _ => "(nothing)".to_string(),
    }
}

/// Waits for Chromium to write its DevTools port, then opens the browser's WebSocket.
fn connect(child: &mut Child, profile: &Path, timeout: Duration) -> Result<WebSocket<TcpStream>> {
    let deadline = Instant::now() + timeout;
    let port_file = profile.join("DevToolsActivePort");
    let (port, path) = loop {
        if let Some(status) = child.try_wait()? {
            bail!("Chromium exited at start-up ({status})");
        }
        // The file is written whole on one line each, but may be seen before its second line.
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                break (
                    port.trim()
                        .parse::<u16>()
                        .context("DevToolsActivePort has no port")?,
                    path.trim().to_string(),
                );
            }
        }
        if Instant::now() >= deadline {
            bail!("Chromium did not open its DevTools port within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stream = TcpStream::connect(("127.0.0.1", port))
        .context("connecting to Chromium's DevTools port")?;
    stream.set_read_timeout(Some(timeout))?;
    // Screenshots arrive as one base64 message of several MB.
    let config = WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    let (ws, _) = tungstenite::client::client_with_config(
        format!("ws://127.0.0.1:{port}{path}"),
        stream,
        Some(config),
    )
    .map_err(|e| anyhow!("DevTools WebSocket handshake failed: {e}"))?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(ws)
}

/// What a page has done so far, from its DevTools events.
#[derive(Default)]
struct Watch {
    loaded: bool,
    failures: Vec<String>,
    /// Request id to URL, to name the URL of a request that failed.
    requests: HashMap<String, String>,
}

impl Watch {
    fn record(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str().unwrap_or("") {
            "Page.loadEventFired" => self.loaded = true,
            "Runtime.consoleAPICalled"
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                let text: Vec<String> = p["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(remote_object_text)
                    .collect();
                let at = frame_location(&p["stackTrace"]["callFrames"][0]);
                self.push(format!(
                    "console.{}: {}{at}",
                    p["type"].as_str().unwrap_or("error"),
                    text.join(" ")
                ));
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let text = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?");
                // A description with a stack already says where.
                let at = if text.contains('\n') {
                    String::new()
                } else {
                    frame_location(d)
                };
                self.push(format!("uncaught exception: {text}{at}"));
            }
            // Network-sourced log entries repeat the Network events below, which say more.
            "Log.entryAdded"
                if p["entry"]["level"] == "error" && p["entry"]["source"] != "network" =>
            {
                let e = &p["entry"];
                self.push(format!(
                    "console error ({}): {}",
                    e["source"].as_str().unwrap_or("?"),
                    e["text"].as_str().unwrap_or("?")
                ));
            }
            "Network.requestWillBeSent" => {
                if let (Some(id), Some(url)) =
                    (p["requestId"].as_str(), p["request"]["url"].as_str())
                {
                    self.requests.insert(id.to_string(), url.to_string());
                }
            }
            // Chromium asks for /favicon.ico by itself for a page that names no icon (mdBook's
            // toc.html); icons that a page does link are covered by the static link check.
            "Network.responseReceived" if p["response"]["url"].as_str().is_some_and(is_favicon) => {
            }
            "Network.responseReceived"
                if p["response"]["status"].as_u64().is_some_and(|s| s >= 400) =>
            {
                self.push(format!(
                    "HTTP {} for {} ({})",
                    p["response"]["status"],
                    p["response"]["url"].as_str().unwrap_or("?"),
                    p["type"].as_str().unwrap_or("resource")
                ));
            }
            "Network.loadingFailed" if p["canceled"] != true => {
                let url = p["requestId"]
                    .as_str()
                    .and_then(|id| self.requests.get(id))
                    .map_or("?", String::as_str);
                // An HTTP error status was reported above already; this adds only real failures.
                let error = p["errorText"].as_str().unwrap_or("?");
                if !url.starts_with("data:")
                    && !is_favicon(url)
                    && !self
                        .failures
                        .iter()
                        .any(|f| f.contains(url) && f.starts_with("HTTP "))
                {
                    self.push(format!("request failed ({error}) for {url}"));
                }
            }
            _ => {}
        }
    }

    /// Adds a failure once: a script may retry a request, and one cause is enough to read.
    fn push(&mut self, failure: String) {
        if !self.failures.contains(&failure) {
            self.failures.push(failure);
        }
    }
}

fn is_favicon(url: &str) -> bool {
    url.split(['?', '#'])
        .next()
        .is_some_and(|u| u.ends_with("/favicon.ico"))
}

fn remote_object_text(arg: &Value) -> String {
    arg["value"]
        .as_str()
        .map(str::to_string)
        .or_else(|| arg["description"].as_str().map(str::to_string))
        .or_else(|| arg.get("value").map(Value::to_string))
        .or_else(|| arg["unserializableValue"].as_str().map(str::to_string))
        .unwrap_or_else(|| arg["type"].as_str().unwrap_or("?").to_string())
}

/// " at URL:LINE" from a call frame or exception details (CDP lines are 0-based).
fn frame_location(frame: &Value) -> String {
    match (frame["url"].as_str(), frame["lineNumber"].as_u64()) {
        (Some(url), Some(line)) if !url.is_empty() => format!(" at {url}:{}", line + 1),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Console errors, exceptions, HTTP errors and failed requests each become one failure;
    /// console.log, a cancelled request and Chromium's own favicon probe do not.
    #[test]
    fn events_become_failures() {
        let mut w = Watch::default();
        let events = [
            json!({"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": [{"value": "hi"}]}}),
            json!({"method": "Runtime.consoleAPICalled", "params": {"type": "error", "args": [{"type": "string", "value": "boom"}]}}),
            json!({"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {"text": "Uncaught", "url": "http://x/a.js", "lineNumber": 4}}}),
            json!({"method": "Network.requestWillBeSent", "params": {"requestId": "1", "request": {"url": "http://x/gone.png"}}}),
            json!({"method": "Network.responseReceived", "params": {"type": "Image", "response": {"status": 404, "url": "http://x/gone.png"}}}),
            json!({"method": "Network.loadingFailed", "params": {"requestId": "1", "errorText": "net::ERR_FAILED"}}),
            json!({"method": "Network.requestWillBeSent", "params": {"requestId": "2", "request": {"url": "https://cdn/x.js"}}}),
            json!({"method": "Network.loadingFailed", "params": {"requestId": "2", "errorText": "net::ERR_NAME_NOT_RESOLVED"}}),
            json!({"method": "Network.loadingFailed", "params": {"requestId": "2", "errorText": "net::ERR_NAME_NOT_RESOLVED"}}),
            json!({"method": "Network.responseReceived", "params": {"type": "Other", "response": {"status": 404, "url": "http://x/favicon.ico"}}}),
            json!({"method": "Network.loadingFailed", "params": {"requestId": "3", "canceled": true, "errorText": "net::ERR_ABORTED"}}),
        ];
        for e in &events {
            w.record(e);
        }
        assert_eq!(
            w.failures,
            [
                "console.error: boom",
                "uncaught exception: Uncaught at http://x/a.js:5",
                "HTTP 404 for http://x/gone.png (Image)",
                "request failed (net::ERR_NAME_NOT_RESOLVED) for https://cdn/x.js",
            ]
        );
    }
}
