//! Headless Chromium over WebDriver (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/install-peers`): one chromedriver per test on a free port, a fresh profile, axe-core
//! injected to check each page, and a PNG of each page under the test output directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_testkit::{TempDir, peer, unavailable};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where screenshots go: `target/tmp/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// axe-core's browser build, from the npm cache `scripts/install-peers` fills
/// (`$BERTH_PEERS_NPM`, default `~/.cache/berth-peers/npm`).
fn axe_script() -> Option<String> {
    let dir = std::env::var_os("BERTH_PEERS_NPM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/berth-peers/npm"))
        })?;
    std::fs::read_to_string(dir.join("node_modules/axe-core/axe.min.js")).ok()
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    axe: String,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A browser at 1280×800, or `None` (skipped loudly outside CI) when Chromium, its driver
    /// or axe-core is missing.
    pub async fn start() -> Option<Browser> {
        let driver_bin = peer("chromedriver")?;
        let chromium = peer("chromium")?;
        let Some(axe) = axe_script() else {
            unavailable("axe-core (npm)", "scripts/install-peers installs it");
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = TempDir::new("chromium");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver,
                        axe,
                        _profile: profile,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not accept a session: {last:?}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap(),
            Err(e) => {
                let main = match self.client.find(Locator::Css("main")).await {
                    Ok(m) => m.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!("{css} on {}: {e}; the page says: {main}", self.path().await)
            }
        }
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits until `css` matches an element whose text contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..150 {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                last = el.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never contained {needle:?}; last text: {last:?}");
    }

    /// Waits until the current path and query contain `needle`.
    pub async fn wait_for_path(&self, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..150 {
            last = self.path().await;
            if last.contains(needle) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the URL never contained {needle:?}; last: {last:?}");
    }

    /// Runs axe-core on the page; fails on any serious or critical violation.
    pub async fn check_accessibility(&self, page: &str) {
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, { resultTypes: ['violations'] })\
                    .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                        .map(v => ({ id: v.id, impact: v.impact, help: v.help,\
                                     nodes: v.nodes.map(n => n.target.join(' ')) }))))\
                    .catch(e => done([{ id: 'axe-error', help: String(e) }]));",
                vec![],
            )
            .await
            .unwrap();
        let violations = result.as_array().cloned().unwrap_or_default();
        assert!(
            violations.is_empty(),
            "axe-core finds serious or critical violations on {page}: {}",
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }

    /// Saves a PNG of the window as `<name>.png`, checked to be one.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Scrolls `css` into view (for a screenshot of it).
    pub async fn scroll_to(&self, css: &str) {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'end'});",
                vec![json!(css)],
            )
            .await
            .unwrap();
    }

    /// Whether the page scrolls sideways at the current window width.
    pub async fn scrolls_sideways(&self) -> bool {
        let v = self
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        v.as_bool().unwrap()
    }

    /// Ends the WebDriver session (the driver process ends on drop).
    pub async fn close(&self) {
        let _ = self.client.clone().close().await;
    }

    /// Presses Tab on the focused element.
    pub async fn tab(&self) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys("\u{E004}").await.unwrap();
    }

    /// Whether the focused element is inside `css`.
    pub async fn focus_is_inside(&self, css: &str) -> bool {
        let v = self
            .client
            .execute(
                "return document.querySelector(arguments[0]).contains(document.activeElement);",
                vec![json!(css)],
            )
            .await
            .unwrap();
        v.as_bool().unwrap()
    }
}
