//! A headless Chromium driven over WebDriver: chromedriver and the browser both run inside a
//! test's namespace, so the browser reaches nothing outside it. Skipped, loudly and counted,
//! where Chromium or chromedriver is not installed.

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::agent::Agent;
use super::skip::skip;
use super::timings::POLL_SLACK;
use super::wait_for;

/// Set by `.ci/run` once it has installed Chromium: then a missing browser is a failure.
pub const REQUIRE_BROWSER: &str = "PEERD_REQUIRE_BROWSER";

/// chromedriver's port inside the namespace.
const DRIVER: &str = "http://127.0.0.1:9515";

pub struct Browser {
    netns: String,
    session: String,
    driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium in `agent`'s namespace, or skips the test.
    pub fn start(agent: &Agent) -> Option<Browser> {
        let installed = |program: &str| {
            Command::new(program)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !installed("chromium") || !installed("chromedriver") {
            let why = "no chromium or chromedriver (apt-get install chromium chromium-driver)";
            return skip(why, REQUIRE_BROWSER);
        }
        let driver = agent
            .command("chromedriver")
            .arg("--port=9515")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut browser = Browser {
            netns: agent.netns().to_owned(),
            session: String::new(),
            driver,
        };
        let ready = wait_for(POLL_SLACK, || {
            let status = browser.call("GET", "/status", None)?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        });
        assert!(ready.is_some(), "chromedriver did not come up");
        // No sandbox: the namespace is the boundary, and the sandbox needs setuid as root.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,460",
        ];
        let capabilities =
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": args}}}});
        let session = browser.call("POST", "/session", Some(capabilities));
        browser.session = session
            .and_then(|s| s["value"]["sessionId"].as_str().map(String::from))
            .expect("a WebDriver session");
        Some(browser)
    }

    /// One WebDriver call through curl in the namespace; `None` if chromedriver did not answer.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let mut curl = Command::new("ip");
        curl.args(["netns", "exec", &self.netns, "curl", "-s", "-X", method]);
        if let Some(body) = body {
            curl.args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ]);
        }
        let out = curl
            .arg(format!("{DRIVER}{path}"))
            .output()
            .expect("run curl");
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn session_call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let answer = self
            .call(method, &path, Some(body))
            .expect("chromedriver answers");
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body that returns a value) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// Saves the page as a PNG at `path` (decoded by coreutils' base64: no crate for one test).
    pub fn screenshot(&self, path: &std::path::Path) {
        let at = format!("/session/{}/screenshot", self.session);
        let answer = self.call("GET", &at, None).expect("chromedriver answers");
        let png = answer["value"].as_str().expect("a base64 PNG");
        let mut decode = Command::new("base64")
            .arg("--decode")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(path).expect("create the screenshot"))
            .spawn()
            .expect("run base64");
        use std::io::Write;
        let stdin = decode.stdin.as_mut().expect("piped");
        stdin.write_all(png.as_bytes()).expect("write to base64");
        assert!(decode.wait().expect("base64 ran").success());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = self.call("DELETE", &path, None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
