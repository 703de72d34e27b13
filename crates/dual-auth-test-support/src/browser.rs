//! A real browser for tests: Debian's headless Chromium driven through its ChromeDriver by
//! the W3C WebDriver protocol (<https://www.w3.org/TR/webdriver2/>), over the workspace's
//! reqwest. Both come from Debian's packages `chromium` and `chromium-driver`, which
//! `cargo xtask` installs; nothing downloads a browser of its own.
//!
//! A small client rather than a WebDriver crate: fantoccini 0.22 would bring http 0.2,
//! two versions of `cookie` and ICU 1.5 beside the 2.x the workspace builds (twelve
//! duplicate crates that `deny.toml` refuses), for the dozen commands these tests send.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::https::closed_port;
use crate::process::ServerProcess;

/// The W3C WebDriver element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a find waits for its element (the WebDriver implicit wait).
const IMPLICIT_WAIT: Duration = Duration::from_secs(10);

/// The Chromium binary: `DUAL_AUTH_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("DUAL_AUTH_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The ChromeDriver binary: `DUAL_AUTH_CHROMEDRIVER`, else Debian's `/usr/bin/chromedriver`.
pub fn chromedriver_path() -> PathBuf {
    std::env::var_os("DUAL_AUTH_CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from)
}

/// A running ChromeDriver on loopback; stopped (with its browsers) when dropped.
pub struct ChromeDriver {
    _process: ServerProcess,
    url: String,
    http: reqwest::Client,
}

impl ChromeDriver {
    /// Starts ChromeDriver on a free port.
    ///
    /// # Panics
    /// With instructions when Chromium or ChromeDriver is missing, or it does not start.
    pub fn start() -> Self {
        for (path, package) in [(chromium_path(), "chromium"), (chromedriver_path(), "chromium-driver")] {
            assert!(
                path.exists(),
                "{} is missing: `cargo xtask setup` installs Debian's {package} (or: sudo apt-get install chromium chromium-driver)",
                path.display()
            );
        }
        let port = closed_port();
        let mut command = Command::new(chromedriver_path());
        command.arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1");
        let process = ServerProcess::start(command, "started successfully", Duration::from_secs(30));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(90)).build().expect("HTTP client");
        Self { _process: process, url: format!("http://127.0.0.1:{port}"), http }
    }

    /// A new browser: headless, a fresh profile of its own, trusting any certificate (the
    /// tests' servers use throw-away CAs), its window `width` × `height`.
    ///
    /// # Panics
    /// When ChromeDriver cannot start Chromium.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("browser profile folder");
        // As the machine notes say: without the background-networking flags Chromium keeps
        // trying hosts this closed network refuses.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {"binary": chromium_path(), "args": args},
        }}});
        let answer = command(&self.http, reqwest::Method::POST, &format!("{}/session", self.url), Some(capabilities)).await;
        let id = answer["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {answer}")).to_owned();
        let browser = Browser { http: self.http.clone(), session: format!("{}/session/{id}", self.url), _profile: profile };
        let waits = json!({"implicit": IMPLICIT_WAIT.as_millis(), "pageLoad": 60_000, "script": 30_000});
        browser.send(reqwest::Method::POST, "/timeouts", Some(waits)).await;
        browser
    }
}

/// One WebDriver command; its `value`, or a panic with the driver's error.
async fn command(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
    try_command(http, method, url, body).await.unwrap_or_else(|e| panic!("WebDriver {url}: {e}"))
}

async fn try_command(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value, String> {
    let mut request = http.request(method, url);
    // W3C WebDriver: commands without parameters still send an empty JSON object.
    request = request.json(&body.unwrap_or_else(|| json!({})));
    let response = request.send().await.map_err(|e| format!("cannot reach ChromeDriver: {e}"))?;
    let status = response.status();
    let answer: Value = response.json().await.map_err(|e| format!("not JSON: {e}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    Err(format!(
        "{status}: {} ({})",
        value["error"].as_str().unwrap_or("?"),
        value["message"].as_str().unwrap_or("").lines().next().unwrap_or("")
    ))
}

/// A browser (one WebDriver session).
pub struct Browser {
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

/// An element found on the page.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Browser {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        command(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.send(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The address bar's URL.
    pub async fn current_url(&self) -> String {
        self.send(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Back one page in the history.
    pub async fn back(&self) {
        self.send(reqwest::Method::POST, "/back", None).await;
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.send(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// The element `css` selects, waiting up to the implicit wait.
    ///
    /// # Panics
    /// When none appears, with the page's URL and text.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(element) => element,
            None => panic!("no element {css:?} on {}:\n{}", self.current_url().await, self.body_text().await),
        }
    }

    /// As [`Browser::find`], `None` when there is none.
    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let url = format!("{}/element", self.session);
        let found =
            try_command(&self.http, reqwest::Method::POST, &url, Some(json!({"using": "css selector", "value": css}))).await.ok()?;
        let id = found[ELEMENT_KEY].as_str()?.to_owned();
        Some(Element { browser: self, id })
    }

    /// The visible text of `css`. Found again when the page changed between finding it and
    /// reading it (a navigation still landing), a few times.
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..5 {
            let element = self.find(css).await;
            let url = format!("{}/element/{}/text", self.session, element.id);
            match try_command(&self.http, reqwest::Method::GET, &url, None).await {
                Ok(text) => return text.as_str().unwrap_or_default().to_owned(),
                Err(e) if e.contains("stale element") => tokio::time::sleep(Duration::from_millis(300)).await,
                Err(e) => panic!("WebDriver {url}: {e}"),
            }
        }
        panic!("{css:?} kept changing on {}", self.current_url().await)
    }

    /// The visible text of the whole page; empty while a page is being replaced.
    pub async fn body_text(&self) -> String {
        let Some(body) = self.try_find("body").await else { return String::new() };
        let url = format!("{}/element/{}/text", self.session, body.id);
        try_command(&self.http, reqwest::Method::GET, &url, None).await.ok().and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Types `text` into the field `css` selects, after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.browser.send(reqwest::Method::POST, &format!("/element/{}/clear", element.id), None).await;
        element.browser.send(reqwest::Method::POST, &format!("/element/{}/value", element.id), Some(json!({"text": text}))).await;
    }

    /// Clicks `css` (and waits for the navigation it starts, as WebDriver does).
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.send(reqwest::Method::POST, &format!("/element/{}/click", element.id), None).await;
    }

    /// The value of cookie `name` for the current page, if set.
    pub async fn cookie(&self, name: &str) -> Option<Value> {
        try_command(&self.http, reqwest::Method::GET, &format!("{}/cookie/{name}", self.session), None).await.ok()
    }

    /// Every cookie of the current page.
    pub async fn cookies(&self) -> Vec<Value> {
        self.send(reqwest::Method::GET, "/cookie", None).await.as_array().cloned().unwrap_or_default()
    }

    /// Sets a cookie for the current page (as another user's browser holds it: `cookie` is
    /// one object of [`Browser::cookies`]).
    pub async fn add_cookie(&self, cookie: &Value) {
        let mut cookie = cookie.clone();
        if let Some(map) = cookie.as_object_mut() {
            // The driver sets the host itself; a host-only cookie must not name a domain.
            map.remove("domain");
        }
        self.send(reqwest::Method::POST, "/cookie", Some(json!({"cookie": cookie}))).await;
    }

    /// Deletes cookie `name` of the current page.
    pub async fn delete_cookie(&self, name: &str) {
        self.send(reqwest::Method::DELETE, &format!("/cookie/{name}"), None).await;
    }

    /// Waits until the page's text contains `text`.
    ///
    /// # Panics
    /// When it does not within `timeout`, with the page's text.
    pub async fn wait_for_text(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let body = self.body_text().await;
            if body.contains(text) {
                return;
            }
            assert!(Instant::now() < deadline, "{text:?} did not appear on {} within {timeout:?}:\n{body}", self.current_url().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a PNG screenshot of the viewport at `path` (folders created); its size in bytes.
    pub async fn screenshot(&self, path: &Path) -> usize {
        let data = self.send(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default()).expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot folder");
        }
        std::fs::write(path, &png).expect("write the screenshot");
        png.len()
    }

    /// Ends the session (closes the browser).
    pub async fn quit(self) {
        let _ = try_command(&self.http, reqwest::Method::DELETE, &self.session, None).await;
    }
}

impl Element<'_> {
    /// Its visible text.
    pub async fn text(&self) -> String {
        self.browser.send(reqwest::Method::GET, &format!("/element/{}/text", self.id), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Its attribute `name`, if set.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.browser.send(reqwest::Method::GET, &format!("/element/{}/attribute/{name}", self.id), None).await.as_str().map(str::to_owned)
    }
}
